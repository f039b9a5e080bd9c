//! Where media goes, whatever is at the other end: a WebRTC handle ([`MediaSender`]), a SIP
//! leg, a plain-RTP forwarder, RTMP egress. Mixers and the mountpoint hub write to these
//! traits, so a room or a mountpoint never cares which kind of participant it feeds.
//!
//! Every implementation is synchronous and never blocks: it queues (dropping and counting
//! when full) and returns, so it can be called from a worker thread or a fan-out task.

use crate::media::{MediaKind, MediaSender, RtpPacket};

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
