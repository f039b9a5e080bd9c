//! The EchoTest hot path: what comes in goes back out, as the settings allow.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use crate::media::{DataMessage, MediaKind, RtcpFeedback, RtpPacket};
use crate::plugins::Gateway;

/// Video packets between two REMB caps (about a second of video at 500 kbit/s).
const REMB_EVERY_PACKETS: u32 = 50;

/// Per-handle echo settings, read on every packet.
pub struct EchoState {
    pub audio: AtomicBool,
    pub video: AtomicBool,
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
    pub fn echo_rtp(&self, gateway: &Gateway, kind: MediaKind, packet: RtpPacket) {
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
                gateway.send_remb(cap);
            }
        }
        gateway.send_rtp(kind, packet);
    }

    pub fn echo_rtcp(&self, gateway: &Gateway, kind: MediaKind, feedback: RtcpFeedback) {
        match feedback {
            // The browser wants a keyframe of the video we echo: only its own encoder can make one.
            RtcpFeedback::KeyframeRequest if kind == MediaKind::Video => gateway.request_keyframe(),
            RtcpFeedback::KeyframeRequest => {}
            RtcpFeedback::Remb(estimate) => {
                let cap = self.bitrate.load(Ordering::Relaxed);
                gateway.send_remb(if cap > 0 { estimate.min(cap) } else { estimate });
            }
        }
    }

    pub fn echo_data(&self, gateway: &Gateway, label: &str, message: DataMessage) {
        if self.data.load(Ordering::Relaxed) {
            gateway.send_data(label, message);
        }
    }
}
