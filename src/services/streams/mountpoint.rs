//! One mountpoint: a bounded queue from its sources and a task that owns the sink list and
//! fans every packet out. Sources never touch the sinks, so no lock is shared between a
//! source and the viewers, nor between viewers.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use crate::media::{MediaKind, RtpPacket};
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
}

enum Control {
    Add(SinkId, Arc<dyn MediaSink>),
    Remove(SinkId),
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
}

impl Mountpoint {
    pub(super) fn start(name: &str) -> Self {
        let (media, media_rx) = mpsc::channel(SOURCE_QUEUE);
        let (control, control_rx) = mpsc::unbounded_channel();
        let stats = Arc::new(MountpointStats::default());
        tokio::spawn(fan_out(media_rx, control_rx, stats.clone()));
        Self {
            name: name.into(),
            media,
            control,
            stats,
            next_sink: Arc::new(AtomicU64::new(1)),
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

    /// Adds a sink; it receives packets published from now on.
    pub fn add_sink(&self, sink: Arc<dyn MediaSink>) -> SinkId {
        let id = SinkId(self.next_sink.fetch_add(1, Ordering::Relaxed));
        let _ = self.control.send(Control::Add(id, sink));
        id
    }

    /// Removes a sink (closed sinks are also dropped by the fan-out on their own).
    pub fn remove_sink(&self, id: SinkId) {
        let _ = self.control.send(Control::Remove(id));
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

async fn fan_out(
    mut media: mpsc::Receiver<(MediaKind, RtpPacket)>,
    mut control: mpsc::UnboundedReceiver<Control>,
    stats: Arc<MountpointStats>,
) {
    let mut sinks: HashMap<SinkId, Arc<dyn MediaSink>> = HashMap::new();
    loop {
        // Control first, so a sink added before a packet was published receives it.
        tokio::select! {
            biased;
            command = control.recv() => match command {
                Some(Control::Add(id, sink)) => { sinks.insert(id, sink); }
                Some(Control::Remove(id)) => { sinks.remove(&id); }
                Some(Control::Count(reply)) => {
                    sinks.retain(|_, s| !s.is_closed());
                    let _ = reply.send(sinks.len());
                }
                Some(Control::Close) | None => break,
            },
            item = media.recv() => {
                let Some((kind, packet)) = item else { break };
                let mut closed = false;
                for sink in sinks.values() {
                    let sent = match kind {
                        MediaKind::Audio => sink.send_audio(packet.clone()),
                        MediaKind::Video => sink.send_video(packet.clone()),
                    };
                    if !sent {
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
        // Control is served before media, so the count may come before the packets are fanned
        // out: let the fan-out task run until both sinks have all three.
        let mut got_a = Vec::new();
        let mut got_b = Vec::new();
        for _ in 0..100 {
            got_a.extend(a_rx.drain().0);
            got_b.extend(b_rx.drain().0);
            if got_a.len() == 3 && got_b.len() == 3 {
                break;
            }
            tokio::task::yield_now().await;
        }
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
}
