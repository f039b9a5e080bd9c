//! The EchoTest hot path: what comes in goes back out, as the settings allow.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use crate::media::{DataMessage, MediaKind, RtcpFeedback, RtpPacket};
use crate::plugins::HandleCtx;

/// Video packets between two REMB caps (about a second of video at 500 kbit/s).
const REMB_EVERY_PACKETS: u32 = 50;

/// Per-handle echo settings, read on every packet.
pub struct EchoState {
    /// Whether audio is echoed.
    pub audio: AtomicBool,
    /// Whether video is echoed.
    pub video: AtomicBool,
    /// Whether data-channel messages are echoed.
    pub data: AtomicBool,
    /// REMB cap in bit/s; 0 = none.
    pub bitrate: AtomicU64,
    video_packets: AtomicU32,
}

impl Default for EchoState {
    fn default() -> Self {
        Self {
            audio: AtomicBool::new(true),
            video: AtomicBool::new(true),
            data: AtomicBool::new(true),
            bitrate: AtomicU64::new(0),
            video_packets: AtomicU32::new(0),
        }
    }
}

impl EchoState {
    /// Sends a packet back on the stream of its kind, if that kind is enabled.
    pub fn echo_rtp(&self, ctx: &HandleCtx, kind: MediaKind, packet: RtpPacket) {
        let enabled = match kind {
            MediaKind::Audio => &self.audio,
            MediaKind::Video => &self.video,
        };
        if !enabled.load(Ordering::Relaxed) {
            return;
        }
        if kind == MediaKind::Video {
            // Re-assert the cap regularly: browsers treat REMB as a standing limit only while fresh.
            let n = self.video_packets.fetch_add(1, Ordering::Relaxed);
            let cap = self.bitrate.load(Ordering::Relaxed);
            if cap > 0 && n % REMB_EVERY_PACKETS == 0 {
                ctx.send_remb(cap);
            }
        }
        ctx.send_rtp(kind, packet);
    }

    /// Passes the browser's feedback on the echoed media back to its own sender.
    pub fn echo_rtcp(&self, ctx: &HandleCtx, kind: MediaKind, feedback: RtcpFeedback) {
        match feedback {
            // The browser wants a keyframe of the video we echo: only its own encoder can make one.
            RtcpFeedback::KeyframeRequest if kind == MediaKind::Video => ctx.request_keyframe(),
            RtcpFeedback::KeyframeRequest => {}
            RtcpFeedback::Remb(estimate) => {
                let cap = self.bitrate.load(Ordering::Relaxed);
                ctx.send_remb(if cap > 0 { estimate.min(cap) } else { estimate });
            }
        }
    }

    /// Sends a data-channel message back, if data is enabled.
    pub fn echo_data(&self, ctx: &HandleCtx, label: &str, message: DataMessage) {
        if self.data.load(Ordering::Relaxed) {
            ctx.send_data(label, message);
        }
    }
}
