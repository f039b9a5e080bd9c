//! [`MediaSender`]: the sending side of one PeerConnection, for any thread.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::mpsc;

use super::types::{DataMessage, MediaKind, RtpPacket};

/// What a [`MediaSender`] queues for the PeerConnection's writer task.
pub(super) enum Outbound {
    Rtp(MediaKind, RtpPacket),
    KeyframeRequest,
    Remb(u64),
    Data(String, DataMessage),
}

/// Packets queued per PeerConnection before new ones are dropped: about 1 s of 720p video.
pub(super) const OUTBOUND_QUEUE: usize = 1024;

/// Sends media to one PeerConnection: `Clone + Send + Sync`, never blocks, takes no lock
/// (a bounded lock-free queue to the connection's writer task), so it can be called from
/// `incoming_rtp` of another handle (fan-out), from worker threads (codec output), or from
/// a service's task.
///
/// A full queue drops the packet and counts it ([`MediaSender::dropped`]): the receiver's
/// NACK/PLI recovers, and one slow peer must never stall its sources. After the
/// PeerConnection closes, sends are dropped silently.
#[derive(Clone)]
pub struct MediaSender {
    tx: mpsc::Sender<Outbound>,
    dropped: Arc<AtomicU64>,
    /// Tells the queue's reader that something was queued (the loop engine's reader is an
    /// event-loop thread, not a task awaiting the queue).
    wake: Option<Arc<dyn Fn() + Send + Sync>>,
}

impl MediaSender {
    pub(super) fn new(tx: mpsc::Sender<Outbound>) -> Self {
        Self {
            tx,
            dropped: Arc::new(AtomicU64::new(0)),
            wake: None,
        }
    }

    /// A sender that calls `wake` after each item it queues.
    pub(super) fn waking(tx: mpsc::Sender<Outbound>, wake: Arc<dyn Fn() + Send + Sync>) -> Self {
        Self {
            wake: Some(wake),
            ..Self::new(tx)
        }
    }

    /// A sender whose queue is read by the caller, for benchmarks and tests of code that
    /// sends: no PeerConnection behind it.
    pub fn detached(capacity: usize) -> (Self, DetachedReceiver) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        (Self::new(tx), DetachedReceiver(rx))
    }

    fn push(&self, item: Outbound) -> bool {
        match self.tx.try_send(item) {
            Ok(()) => {
                if let Some(wake) = &self.wake {
                    wake();
                }
                true
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// Queues an RTP packet for the outgoing stream of `kind`, whose payload type, sequence
    /// number, timestamp (codec clock) and SSRC are sent as given. Returns whether it was queued.
    pub fn send_rtp(&self, kind: MediaKind, packet: RtpPacket) -> bool {
        self.push(Outbound::Rtp(kind, packet))
    }

    /// Asks the peer for a video keyframe (RTCP PLI, RFC 4585 §6.3.1).
    pub fn request_keyframe(&self) -> bool {
        self.push(Outbound::KeyframeRequest)
    }

    /// Caps the peer's sending bitrate with REMB (draft-alvestrand-rmcat-remb), bit/s.
    pub fn send_remb(&self, bitrate: u64) -> bool {
        self.push(Outbound::Remb(bitrate))
    }

    /// Sends a message on the data channel `label` (dropped if no such channel is open).
    pub fn send_data(&self, label: &str, message: DataMessage) -> bool {
        self.push(Outbound::Data(label.to_string(), message))
    }

    /// Items dropped because the queue was full, since this sender's PeerConnection started.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Whether the PeerConnection behind it has gone.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// Whether `other` feeds the same PeerConnection (a clone of this sender).
    pub fn same_peer(&self, other: &MediaSender) -> bool {
        self.tx.same_channel(&other.tx)
    }
}

/// The reading end of a [`MediaSender::detached`] sender.
pub struct DetachedReceiver(mpsc::Receiver<Outbound>);

impl DetachedReceiver {
    /// Takes what was queued, if anything: the RTP packets (kind and packet); other items
    /// (keyframe requests, REMB, data) are counted in the second value.
    pub fn drain(&mut self) -> (Vec<(MediaKind, RtpPacket)>, usize) {
        let mut rtp = Vec::new();
        let mut other = 0;
        while let Ok(item) = self.0.try_recv() {
            match item {
                Outbound::Rtp(kind, packet) => rtp.push((kind, packet)),
                _ => other += 1,
            }
        }
        (rtp, other)
    }

    /// Discards what was queued; returns how many items there were.
    pub fn discard(&mut self) -> usize {
        let mut n = 0;
        while self.0.try_recv().is_ok() {
            n += 1;
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn packet(seq: u16) -> RtpPacket {
        RtpPacket {
            payload_type: 111,
            sequence_number: seq,
            timestamp: 0,
            ssrc: 1,
            marker: false,
            payload: Bytes::from_static(b"x"),
        }
    }

    #[test]
    fn full_queue_drops_and_counts_from_any_thread() {
        let (sender, mut rx) = MediaSender::detached(4);
        let s = sender.clone();
        let queued = std::thread::spawn(move || {
            (0..10)
                .filter(|i| s.send_rtp(MediaKind::Audio, packet(*i)))
                .count()
        })
        .join()
        .unwrap();
        assert_eq!(queued, 4);
        assert_eq!(sender.dropped(), 6);
        let (rtp, other) = rx.drain();
        assert_eq!(
            rtp.iter()
                .map(|(_, p)| p.sequence_number)
                .collect::<Vec<_>>(),
            vec![0, 1, 2, 3]
        );
        assert_eq!(other, 0);
        drop(rx);
        assert!(!sender.send_rtp(MediaKind::Audio, packet(9)));
        assert!(sender.is_closed());
        assert_eq!(sender.dropped(), 6, "a closed connection is not a drop");
    }
}
