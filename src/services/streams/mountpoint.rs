//! One mountpoint: a bounded queue from its sources and a task that owns the sink list, the
//! keyframe cache, and fans every packet out. Sources never touch the sinks, so no lock is
//! shared between a source and the viewers, nor between viewers.
//!
//! The keyframe cache holds the video packets since the last keyframe: a new sink gets them
//! first (it starts decoding at once instead of waiting for the next keyframe), and a sink
//! that asks for a keyframe (a viewer's PLI/FIR) gets them again, flagged as a restart of its
//! video so that it can re-base its sequence numbers and timestamps.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use tokio::sync::{mpsc, oneshot};

use super::keyframe::VideoFormat;
use crate::media::{Codec, MediaKind, RtpPacket};
use crate::services::sinks::MediaSink;

/// Packets queued from sources before new ones are dropped (about 1 s of 4 Mbit/s video).
const SOURCE_QUEUE: usize = 512;

/// Identifies a sink of one mountpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SinkId(u64);

/// Counters of a mountpoint.
#[derive(Debug, Default)]
pub struct MountpointStats {
    /// Packets sources handed in.
    pub packets_in: AtomicU64,
    /// Packets dropped because the source queue was full.
    pub dropped_in: AtomicU64,
    /// Packet deliveries to sinks that were dropped (a sink's own queue full).
    pub dropped_out: AtomicU64,
    /// Keyframe replays served from the cache (new sinks and keyframe requests).
    pub keyframes_from_cache: AtomicU64,
}

/// Where a mountpoint's packets go: a viewer (which rewrites SSRC, sequence numbers and
/// timestamps for its PeerConnection), an egress, a recorder. Called from the mountpoint's
/// fan-out task only; must not block.
pub trait StreamSink: Send + Sync {
    /// Queues one packet of `kind`; `false` when it was dropped.
    fn deliver(&self, kind: MediaKind, packet: &RtpPacket) -> bool;
    /// The packets that follow replay the stream of `kind` from a keyframe that was sent
    /// before: re-base them after the last packet sent.
    fn restart(&self, _kind: MediaKind) {}
    /// Whether the sink is gone for good.
    fn is_closed(&self) -> bool;
}

/// A [`MediaSink`] as a [`StreamSink`]: packets passed on as they are.
struct Plain(Arc<dyn MediaSink>);

impl StreamSink for Plain {
    fn deliver(&self, kind: MediaKind, packet: &RtpPacket) -> bool {
        match kind {
            MediaKind::Audio => self.0.send_audio(packet.clone()),
            MediaKind::Video => self.0.send_video(packet.clone()),
        }
    }

    fn is_closed(&self) -> bool {
        self.0.is_closed()
    }
}

enum Control {
    Add(SinkId, Arc<dyn StreamSink>),
    Remove(SinkId),
    Keyframe(SinkId),
    Format(Option<VideoFormat>),
    SourceGone,
    Count(oneshot::Sender<usize>),
    Close,
}

/// A handle on a mountpoint: cheap to clone, usable from any task or thread to publish.
#[derive(Clone)]
pub struct Mountpoint {
    name: Arc<str>,
    media: mpsc::Sender<(MediaKind, RtpPacket)>,
    control: mpsc::UnboundedSender<Control>,
    stats: Arc<MountpointStats>,
    next_sink: Arc<AtomicU64>,
    /// The codec of the audio its sources publish (read when a sink is set up, never per
    /// packet).
    audio_codec: Arc<RwLock<Option<Codec>>>,
}

impl Mountpoint {
    pub(super) fn start(name: &str, cache_packets: usize) -> Self {
        let (media, media_rx) = mpsc::channel(SOURCE_QUEUE);
        let (control, control_rx) = mpsc::unbounded_channel();
        let stats = Arc::new(MountpointStats::default());
        tokio::spawn(fan_out(media_rx, control_rx, stats.clone(), cache_packets));
        Self {
            name: name.into(),
            media,
            control,
            stats,
            next_sink: Arc::new(AtomicU64::new(1)),
            audio_codec: Arc::default(),
        }
    }

    /// The mountpoint's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Hands a packet from a source to every sink; never blocks. `false` when dropped
    /// (queue full: counted in `dropped_in`) or the mountpoint is gone.
    pub fn publish(&self, kind: MediaKind, packet: RtpPacket) -> bool {
        self.stats.packets_in.fetch_add(1, Ordering::Relaxed);
        match self.media.try_send((kind, packet)) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.stats.dropped_in.fetch_add(1, Ordering::Relaxed);
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// Adds a sink taking packets as published; it receives packets published from now on.
    pub fn add_sink(&self, sink: Arc<dyn MediaSink>) -> SinkId {
        self.add_stream_sink(Arc::new(Plain(sink)))
    }

    /// Adds a sink: it gets the keyframe cache first, then every packet published from now on.
    pub fn add_stream_sink(&self, sink: Arc<dyn StreamSink>) -> SinkId {
        let id = SinkId(self.next_sink.fetch_add(1, Ordering::Relaxed));
        let _ = self.control.send(Control::Add(id, sink));
        id
    }

    /// Removes a sink (closed sinks are also dropped by the fan-out on their own).
    pub fn remove_sink(&self, id: SinkId) {
        let _ = self.control.send(Control::Remove(id));
    }

    /// Replays the keyframe cache to sink `id` (its viewer asked for a keyframe), after
    /// [`StreamSink::restart`]. Nothing happens while the cache is empty.
    pub fn request_keyframe(&self, id: SinkId) {
        let _ = self.control.send(Control::Keyframe(id));
    }

    /// Sets the video format whose keyframes are cached (`None`: no cache).
    pub fn set_video_format(&self, format: Option<VideoFormat>) {
        let _ = self.control.send(Control::Format(format));
    }

    /// Records the codec of the audio the sources publish (Opus, PCMU, PCMA...), for sinks
    /// that must decode it (a SIP listen line).
    pub fn set_audio_codec(&self, codec: Option<Codec>) {
        *self.audio_codec.write().unwrap_or_else(|e| e.into_inner()) = codec;
    }

    /// The codec of the published audio; `None` when the mountpoint has no audio or nobody
    /// said.
    pub fn audio_codec(&self) -> Option<Codec> {
        self.audio_codec
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The source went away: the keyframe cache is emptied, so that a sink joining before the
    /// next source starts gets nothing stale.
    pub fn source_gone(&self) {
        let _ = self.control.send(Control::SourceGone);
    }

    /// How many sinks the fan-out holds, once it has handled every earlier call.
    pub async fn sink_count(&self) -> usize {
        let (tx, rx) = oneshot::channel();
        let _ = self.control.send(Control::Count(tx));
        rx.await.unwrap_or(0)
    }

    /// The mountpoint's counters.
    pub fn stats(&self) -> &MountpointStats {
        &self.stats
    }

    pub(super) fn close(&self) {
        let _ = self.control.send(Control::Close);
    }
}

/// The video packets since the last keyframe, at most `limit` of them.
struct KeyframeCache {
    format: Option<VideoFormat>,
    packets: Vec<RtpPacket>,
    limit: usize,
}

impl KeyframeCache {
    fn push(&mut self, packet: &RtpPacket) {
        let Some(format) = self.format else { return };
        if format.starts_keyframe(&packet.payload) {
            // A keyframe spans several packets that each may look like a start (SPS, then the
            // IDR): only a new timestamp opens a new one.
            let same_frame = self
                .packets
                .first()
                .is_some_and(|p| p.timestamp == packet.timestamp && p.ssrc == packet.ssrc);
            if !same_frame {
                self.packets.clear();
            }
        } else if self.packets.is_empty() {
            return;
        }
        if self.packets.len() >= self.limit {
            self.packets.clear();
            return;
        }
        self.packets.push(packet.clone());
    }

    fn replay(&self, sink: &dyn StreamSink, stats: &MountpointStats) {
        if self.packets.is_empty() {
            return;
        }
        stats.keyframes_from_cache.fetch_add(1, Ordering::Relaxed);
        for p in &self.packets {
            if !sink.deliver(MediaKind::Video, p) {
                stats.dropped_out.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

async fn fan_out(
    mut media: mpsc::Receiver<(MediaKind, RtpPacket)>,
    mut control: mpsc::UnboundedReceiver<Control>,
    stats: Arc<MountpointStats>,
    cache_packets: usize,
) {
    let mut sinks: HashMap<SinkId, Arc<dyn StreamSink>> = HashMap::new();
    let mut cache = KeyframeCache {
        format: None,
        packets: Vec::new(),
        limit: cache_packets,
    };
    loop {
        // Control first, so a sink added before a packet was published receives it.
        tokio::select! {
            biased;
            command = control.recv() => match command {
                Some(Control::Add(id, sink)) => {
                    cache.replay(&*sink, &stats);
                    sinks.insert(id, sink);
                }
                Some(Control::Remove(id)) => { sinks.remove(&id); }
                Some(Control::Keyframe(id)) => {
                    if let Some(sink) = sinks.get(&id) {
                        if !cache.packets.is_empty() {
                            sink.restart(MediaKind::Video);
                            cache.replay(&**sink, &stats);
                        }
                    }
                }
                Some(Control::Format(format)) => {
                    cache.format = format;
                    cache.packets = Vec::new();
                }
                Some(Control::SourceGone) => cache.packets.clear(),
                Some(Control::Count(reply)) => {
                    sinks.retain(|_, s| !s.is_closed());
                    let _ = reply.send(sinks.len());
                }
                Some(Control::Close) | None => break,
            },
            item = media.recv() => {
                let Some((kind, packet)) = item else { break };
                if kind == MediaKind::Video {
                    cache.push(&packet);
                }
                let mut closed = false;
                for sink in sinks.values() {
                    if !sink.deliver(kind, &packet) {
                        stats.dropped_out.fetch_add(1, Ordering::Relaxed);
                        closed |= sink.is_closed();
                    }
                }
                if closed {
                    sinks.retain(|_, s| !s.is_closed());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::MountpointHub;
    use super::*;
    use crate::media::MediaSender;
    use bytes::Bytes;

    fn packet(seq: u16) -> RtpPacket {
        RtpPacket {
            payload_type: 96,
            sequence_number: seq,
            timestamp: u32::from(seq) * 3000,
            ssrc: 7,
            marker: true,
            payload: Bytes::from_static(b"frame"),
        }
    }

    fn h264(seq: u16, ts: u32, nal: u8) -> RtpPacket {
        RtpPacket {
            payload: Bytes::from(vec![nal, 1, 2, 3]),
            timestamp: ts,
            ..packet(seq)
        }
    }

    async fn drain_until(
        rx: &mut crate::media::DetachedReceiver,
        n: usize,
    ) -> Vec<(MediaKind, RtpPacket)> {
        let mut got = Vec::new();
        for _ in 0..200 {
            got.extend(rx.drain().0);
            if got.len() >= n {
                break;
            }
            tokio::task::yield_now().await;
        }
        got
    }

    #[tokio::test]
    async fn every_sink_gets_every_packet_and_leaves_cleanly() {
        let hub = MountpointHub::new();
        let m = hub.create("cam").unwrap();
        assert!(hub.create("cam").is_err());
        let (a, mut a_rx) = MediaSender::detached(16);
        let (b, mut b_rx) = MediaSender::detached(16);
        let a_id = m.add_sink(Arc::new(a));
        m.add_sink(Arc::new(b));
        for seq in 0..3 {
            assert!(m.publish(MediaKind::Video, packet(seq)));
        }
        assert_eq!(m.sink_count().await, 2);
        let got_a = drain_until(&mut a_rx, 3).await;
        let got_b = drain_until(&mut b_rx, 3).await;
        assert_eq!(got_a.len(), 3);
        assert_eq!(
            got_b
                .iter()
                .map(|(k, p)| (*k, p.sequence_number))
                .collect::<Vec<_>>(),
            vec![
                (MediaKind::Video, 0),
                (MediaKind::Video, 1),
                (MediaKind::Video, 2)
            ]
        );
        m.remove_sink(a_id);
        drop(b_rx);
        assert_eq!(m.sink_count().await, 0, "removed and closed sinks are gone");
        assert_eq!(m.stats().packets_in.load(Ordering::Relaxed), 3);
        assert!(hub.remove("cam"));
        assert!(hub.names().is_empty());
    }

    #[tokio::test]
    async fn a_new_sink_starts_at_the_last_keyframe_and_a_request_replays_it() {
        let hub = MountpointHub::new();
        let m = hub.create("cam").unwrap();
        m.set_video_format(Some(VideoFormat::H264));
        // P frame before any keyframe, then keyframe (SPS + IDR at one timestamp), P, keyframe, P.
        let stream = [
            h264(1, 100, 0x41),
            h264(2, 200, 0x67),
            h264(3, 200, 0x65),
            h264(4, 300, 0x41),
            h264(5, 400, 0x65),
            h264(6, 500, 0x41),
        ];
        for p in &stream {
            m.publish(MediaKind::Video, p.clone());
        }
        // Let the fan-out see the packets before the sink joins.
        assert_eq!(m.sink_count().await, 0);
        for _ in 0..50 {
            tokio::task::yield_now().await;
        }
        let (viewer, mut rx) = MediaSender::detached(64);
        let id = m.add_sink(Arc::new(viewer));
        let got = drain_until(&mut rx, 2).await;
        assert_eq!(
            got.iter()
                .map(|(_, p)| p.sequence_number)
                .collect::<Vec<_>>(),
            vec![5, 6],
            "the cache holds the last keyframe and what followed"
        );
        m.publish(MediaKind::Video, h264(7, 600, 0x41));
        let got = drain_until(&mut rx, 1).await;
        assert_eq!(got[0].1.sequence_number, 7);
        m.request_keyframe(id);
        let got = drain_until(&mut rx, 3).await;
        assert_eq!(
            got.iter()
                .map(|(_, p)| p.sequence_number)
                .collect::<Vec<_>>(),
            vec![5, 6, 7],
            "the keyframe and what followed, again"
        );
        assert_eq!(m.stats().keyframes_from_cache.load(Ordering::Relaxed), 2);
        m.source_gone();
        let (late, mut late_rx) = MediaSender::detached(64);
        m.add_sink(Arc::new(late));
        assert_eq!(m.sink_count().await, 2);
        assert!(
            late_rx.drain().0.is_empty(),
            "nothing stale after the source left"
        );
    }

    #[tokio::test]
    async fn a_gop_longer_than_the_hubs_cache_limit_is_not_cached() {
        let hub = MountpointHub::with_keyframe_cache(3);
        let m = hub.create("cam").unwrap();
        m.set_video_format(Some(VideoFormat::H264));
        // A keyframe and two P frames fit; a third P frame overflows the limit.
        for p in [h264(1, 100, 0x65), h264(2, 200, 0x41), h264(3, 300, 0x41)] {
            m.publish(MediaKind::Video, p);
        }
        assert_eq!(m.sink_count().await, 0);
        for _ in 0..50 {
            tokio::task::yield_now().await;
        }
        let (first, mut first_rx) = MediaSender::detached(64);
        m.add_sink(Arc::new(first));
        assert_eq!(drain_until(&mut first_rx, 3).await.len(), 3, "three fit");
        m.publish(MediaKind::Video, h264(4, 400, 0x41));
        assert_eq!(drain_until(&mut first_rx, 1).await.len(), 1);
        let (late, mut late_rx) = MediaSender::detached(64);
        m.add_sink(Arc::new(late));
        assert_eq!(m.sink_count().await, 2);
        assert!(
            late_rx.drain().0.is_empty(),
            "the fourth packet emptied the cache: a viewer now waits for a keyframe"
        );
    }
}
