//! Where media goes, whatever is at the other end: a WebRTC handle ([`MediaSender`]), a SIP
//! leg, a plain-RTP forwarder, RTMP egress. Mixers and the mountpoint hub write to these
//! traits, so a room or a mountpoint never cares which kind of participant it feeds.
//!
//! Every implementation is synchronous and never blocks: it queues (dropping and counting
//! when full) and returns, so it can be called from a worker thread or a fan-out task.

use std::sync::Mutex;
use std::time::Instant;

use crate::ids::Ssrc;
use crate::media::{MediaKind, MediaSender, RtpPacket};
use crate::rtp::{RtpHeader, RtpRewriter};

/// Takes audio RTP packets (payload type, sequence number, timestamp in the codec's clock and
/// SSRC as the sink's session expects them: rewriting is the caller's job).
pub trait AudioSink: Send + Sync {
    /// Queues one packet; `false` when it was dropped (full queue or closed sink).
    fn send_audio(&self, packet: RtpPacket) -> bool;
}

/// Takes audio and video RTP, and can ask its source for a keyframe.
pub trait MediaSink: AudioSink {
    /// Queues one video packet; `false` when it was dropped.
    fn send_video(&self, packet: RtpPacket) -> bool;
    /// Whether the sink is gone for good (its owner can then forget it).
    fn is_closed(&self) -> bool;
}

impl AudioSink for MediaSender {
    fn send_audio(&self, packet: RtpPacket) -> bool {
        self.send_rtp(MediaKind::Audio, packet)
    }
}

impl MediaSink for MediaSender {
    fn send_video(&self, packet: RtpPacket) -> bool {
        self.send_rtp(MediaKind::Video, packet)
    }

    fn is_closed(&self) -> bool {
        MediaSender::is_closed(self)
    }
}

/// An [`AudioSink`] that keeps one continuous RTP stream towards its destination while the
/// packets come from sources that change (a room participant moving to another room, whose
/// new mix has its own SSRC, sequence numbers and timestamps): one SSRC, sequence numbers +1,
/// timestamps that follow real time across the switch ([`RtpRewriter`], RFC 3550 §5.1). A
/// receiver's jitter buffer would otherwise take the new source's packets for old ones and
/// drop them. The lock is this sink's own, taken by the one thread that feeds it.
pub struct ContinuousAudio<S> {
    inner: S,
    rewriter: Mutex<RtpRewriter>,
    origin: Instant,
}

impl<S: AudioSink> ContinuousAudio<S> {
    /// Wraps `inner` for a codec whose RTP clock is `clock_rate` Hz (48 000 for Opus, 8 000
    /// for G.711); the stream's SSRC is random.
    pub fn new(inner: S, clock_rate: u32) -> Self {
        Self {
            inner,
            rewriter: Mutex::new(RtpRewriter::new(Ssrc(rand::random()), clock_rate)),
            origin: Instant::now(),
        }
    }

    /// The wrapped sink.
    pub fn inner(&self) -> &S {
        &self.inner
    }
}

impl<S: AudioSink> AudioSink for ContinuousAudio<S> {
    fn send_audio(&self, mut packet: RtpPacket) -> bool {
        let header = RtpHeader {
            ssrc: Ssrc(packet.ssrc),
            sequence_number: packet.sequence_number,
            timestamp: packet.timestamp,
        };
        let out = self
            .rewriter
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .rewrite(header, self.origin.elapsed());
        packet.ssrc = out.ssrc.0;
        packet.sequence_number = out.sequence_number;
        packet.timestamp = out.timestamp;
        self.inner.send_audio(packet)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[derive(Default)]
    struct Collect(Mutex<Vec<RtpPacket>>);

    impl AudioSink for &Collect {
        fn send_audio(&self, packet: RtpPacket) -> bool {
            self.0.lock().unwrap().push(packet);
            true
        }
    }

    fn packet(ssrc: u32, seq: u16, ts: u32) -> RtpPacket {
        RtpPacket {
            payload_type: 111,
            sequence_number: seq,
            timestamp: ts,
            ssrc,
            marker: false,
            payload: Bytes::new(),
        }
    }

    #[test]
    fn a_second_source_continues_the_first_ones_stream() {
        let seen = Collect::default();
        let sink = ContinuousAudio::new(&seen, 48_000);
        assert!(sink.send_audio(packet(1, 65_000, 4_000_000_000)));
        assert!(sink.send_audio(packet(1, 65_001, 4_000_000_960)));
        // The new room's mix: unrelated, "older" counters.
        assert!(sink.send_audio(packet(2, 10, 5)));
        assert!(sink.send_audio(packet(2, 11, 965)));
        let out = seen.0.lock().unwrap();
        assert!(out.iter().all(|p| p.ssrc == out[0].ssrc), "one SSRC");
        for pair in out.windows(2) {
            assert_eq!(
                pair[1].sequence_number,
                pair[0].sequence_number.wrapping_add(1)
            );
            assert!(
                pair[1].timestamp.wrapping_sub(pair[0].timestamp) as i32 > 0,
                "timestamps go forward"
            );
        }
    }
}
