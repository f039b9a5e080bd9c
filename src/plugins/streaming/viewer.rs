//! One viewer: the handle's state (which mountpoint, paused, per-kind switches) and its sink,
//! which turns the mountpoint's packets into one continuous RTP stream per kind for the
//! viewer's PeerConnection (SSRC, sequence numbers and timestamps rewritten, see
//! [`crate::rtp::RtpRewriter`]), so that a publisher that drops and comes back, a keyframe
//! replay or a `switch` never restarts the browser's decoder.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::mountpoints::{Attached, MountpointEntry};
use crate::ids::Ssrc;
use crate::media::{MediaKind, MediaSender, RtpPacket};
use crate::rtp::{RtpHeader, RtpRewriter};
use crate::services::streams::StreamSink;

/// Keyframe requests from one viewer closer together than this are served once.
const KEYFRAME_REQUEST_GAP: Duration = Duration::from_millis(500);

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// The sending side of one viewer, called by the fan-out of the mountpoint it watches.
pub struct ViewerSink {
    sender: MediaSender,
    /// Per kind: whether `configure` lets it through.
    enabled: [AtomicBool; 2],
    /// `pause`d: nothing is sent.
    paused: AtomicBool,
    /// Per kind: the payload type negotiated with the viewer.
    pt: [AtomicU8; 2],
    /// Per kind: the rewriter (this viewer's own; only the fan-out that feeds it locks it).
    rewriters: [Mutex<RtpRewriter>; 2],
    /// Packets sent, per kind.
    pub sent: [AtomicU64; 2],
    /// When the last keyframe request was served, ms since the epoch.
    last_keyframe_request_ms: AtomicU64,
}

impl ViewerSink {
    /// A sink sending through `sender`, with payload types `audio_pt`/`video_pt`.
    pub fn new(sender: MediaSender, audio_pt: u8, video_pt: u8) -> Self {
        let ssrc = |k: u32| Ssrc(rand::random::<u32>() | k);
        Self {
            sender,
            enabled: [AtomicBool::new(true), AtomicBool::new(true)],
            paused: AtomicBool::new(false),
            pt: [AtomicU8::new(audio_pt), AtomicU8::new(video_pt)],
            rewriters: [
                Mutex::new(RtpRewriter::new(ssrc(1), 48_000)),
                Mutex::new(RtpRewriter::new(ssrc(2), 90_000)),
            ],
            sent: [AtomicU64::new(0), AtomicU64::new(0)],
            last_keyframe_request_ms: AtomicU64::new(0),
        }
    }

    /// Sets the RTP clock of `kind` (an `rtp` mountpoint's audio may be 8 kHz G.711).
    pub fn set_clock(&self, kind: MediaKind, clock_rate: u32) {
        let mut r = self.rewriters[kind.index()]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        *r = RtpRewriter::new(Ssrc(rand::random::<u32>() | 1), clock_rate);
    }

    /// Sets the payload type negotiated with the viewer for `kind`.
    pub fn set_pt(&self, kind: MediaKind, pt: u8) {
        self.pt[kind.index()].store(pt, Ordering::Relaxed);
    }

    /// Lets `kind` through or not (`configure`).
    pub fn set_enabled(&self, kind: MediaKind, on: bool) {
        self.enabled[kind.index()].store(on, Ordering::Relaxed);
    }

    /// Whether `kind` goes through.
    pub fn enabled(&self, kind: MediaKind) -> bool {
        self.enabled[kind.index()].load(Ordering::Relaxed)
    }

    /// Pauses or resumes everything (`pause`/`start`).
    pub fn set_paused(&self, paused: bool) {
        self.paused.store(paused, Ordering::Relaxed);
    }

    /// Whether paused.
    pub fn paused(&self) -> bool {
        self.paused.load(Ordering::Relaxed)
    }

    /// Whether a keyframe request now should be served (at most one per
    /// [`KEYFRAME_REQUEST_GAP`]).
    pub fn keyframe_request_due(&self) -> bool {
        let now = epoch().elapsed().as_millis() as u64 + 1;
        let last = self.last_keyframe_request_ms.load(Ordering::Relaxed);
        if last != 0 && now.saturating_sub(last) < KEYFRAME_REQUEST_GAP.as_millis() as u64 {
            return false;
        }
        self.last_keyframe_request_ms
            .compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    }

    /// Whether the viewer's PeerConnection is gone.
    pub fn closed(&self) -> bool {
        self.sender.is_closed()
    }
}

impl StreamSink for ViewerSink {
    fn deliver(&self, kind: MediaKind, packet: &RtpPacket) -> bool {
        if self.paused() || !self.enabled(kind) {
            return true;
        }
        let header = {
            let mut r = self.rewriters[kind.index()]
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            r.rewrite(
                RtpHeader {
                    ssrc: Ssrc(packet.ssrc),
                    sequence_number: packet.sequence_number,
                    timestamp: packet.timestamp,
                },
                epoch().elapsed(),
            )
        };
        let out = RtpPacket {
            payload_type: self.pt[kind.index()].load(Ordering::Relaxed),
            sequence_number: header.sequence_number,
            timestamp: header.timestamp,
            ssrc: header.ssrc.0,
            marker: packet.marker,
            payload: packet.payload.clone(),
        };
        let sent = self.sender.send_rtp(kind, out);
        if sent {
            self.sent[kind.index()].fetch_add(1, Ordering::Relaxed);
        }
        sent
    }

    fn restart(&self, kind: MediaKind) {
        self.rewriters[kind.index()]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .switch();
    }

    fn is_closed(&self) -> bool {
        self.closed()
    }
}

/// Where a viewer is in Janus' flow.
#[derive(Default)]
pub struct Watching {
    /// The mountpoint watched.
    pub mountpoint: Option<Arc<MountpointEntry>>,
    /// The sink, once the PeerConnection exists.
    pub sink: Option<Arc<ViewerSink>>,
    /// Where the sink sits in the mountpoint's fan-out, once media flows.
    pub attached: Option<Attached>,
    /// `start` was received (the answer applied).
    pub started: bool,
}

/// The per-handle state of the streaming plugin.
#[derive(Default)]
pub struct Viewer {
    /// The handle's own lock: requests and media setup of this handle only.
    pub state: Mutex<Watching>,
    /// What the handle publishes (the `publish` request), if anything; locked by this
    /// handle's packets only.
    pub publisher: Mutex<Option<Arc<super::publish::PublishFeed>>>,
}

impl Viewer {
    /// Locks the state.
    pub fn lock(&self) -> std::sync::MutexGuard<'_, Watching> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stops feeding the viewer and forgets the mountpoint; returns it, if there was one.
    pub fn leave(&self, handle: crate::ids::HandleId) -> Option<Arc<MountpointEntry>> {
        let mut st = self.lock();
        let mp = st.mountpoint.take()?;
        if let Some(a) = st.attached.take() {
            mp.detach_sink(a);
        }
        st.sink = None;
        st.started = false;
        mp.remove_viewer(handle);
        Some(mp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn p(ssrc: u32, seq: u16, ts: u32) -> RtpPacket {
        RtpPacket {
            payload_type: 96,
            sequence_number: seq,
            timestamp: ts,
            ssrc,
            marker: false,
            payload: Bytes::from_static(b"x"),
        }
    }

    #[test]
    fn a_new_publisher_continues_the_viewers_stream() {
        let (sender, mut rx) = MediaSender::detached(16);
        let sink = ViewerSink::new(sender, 111, 102);
        assert!(sink.deliver(MediaKind::Video, &p(1, 100, 9000)));
        assert!(sink.deliver(MediaKind::Video, &p(1, 101, 12000)));
        // The publisher came back with new counters.
        assert!(sink.deliver(MediaKind::Video, &p(2, 7, 50)));
        sink.set_paused(true);
        assert!(sink.deliver(MediaKind::Video, &p(2, 8, 3050)));
        let (got, _) = rx.drain();
        let seqs: Vec<u16> = got.iter().map(|(_, p)| p.sequence_number).collect();
        assert_eq!(
            seqs,
            vec![100, 101, 102],
            "continuous, nothing while paused"
        );
        assert!(got
            .iter()
            .all(|(_, q)| q.ssrc == got[0].1.ssrc && q.payload_type == 102));
        assert!(got[2].1.timestamp.wrapping_sub(got[1].1.timestamp) as i32 > 0);
    }

    #[test]
    fn keyframe_requests_are_spaced() {
        let (sender, _rx) = MediaSender::detached(1);
        let sink = ViewerSink::new(sender, 111, 102);
        assert!(sink.keyframe_request_due());
        assert!(!sink.keyframe_request_due());
    }
}
