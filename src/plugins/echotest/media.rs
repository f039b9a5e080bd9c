//! The EchoTest hot path: what comes in goes back out, as the settings allow.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use std::sync::RwLock;

use crate::media::{Codec, DataMessage, MediaKind, RtcpFeedback, RtpPacket, StreamInfo};
use crate::plugins::HandleCtx;
use crate::services::recording::{OpusRecorder, RecorderSink};

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
    /// Where the browser's Opus audio goes while recording (read per packet; this handle's
    /// own lock, never shared).
    recorder: RwLock<Option<RecorderSink>>,
    /// The open recording, to finish it.
    recording: tokio::sync::Mutex<Option<OpusRecorder>>,
}

impl Default for EchoState {
    fn default() -> Self {
        Self {
            audio: AtomicBool::new(true),
            video: AtomicBool::new(true),
            data: AtomicBool::new(true),
            bitrate: AtomicU64::new(0),
            video_packets: AtomicU32::new(0),
            recorder: RwLock::new(None),
            recording: tokio::sync::Mutex::new(None),
        }
    }
}

impl EchoState {
    /// Records the packet if it is Opus audio and a recording is open, then echoes it.
    pub fn on_rtp(&self, ctx: &HandleCtx, stream: &StreamInfo, packet: RtpPacket) {
        if stream.kind == MediaKind::Audio && stream.codec == Some(Codec::Opus) {
            if let Some(sink) = &*self.recorder.read().unwrap_or_else(|e| e.into_inner()) {
                if packet.payload_type == stream.pt.0 {
                    sink.push(packet.payload.clone(), packet.timestamp);
                }
            }
        }
        self.echo_rtp(ctx, stream.kind, packet);
    }

    /// Starts feeding `recording`; the previous one, if any, is handed back to be finished.
    pub async fn start_recording(&self, recording: OpusRecorder) -> Option<OpusRecorder> {
        let mut open = self.recording.lock().await;
        *self.recorder.write().unwrap_or_else(|e| e.into_inner()) = Some(recording.sink());
        open.replace(recording)
    }

    /// Whether a recording is open.
    pub async fn is_recording(&self) -> bool {
        self.recording.lock().await.is_some()
    }

    /// Whether packets are being fed to a recording (for `handle_info`).
    pub fn recorder_open(&self) -> bool {
        self.recorder
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }

    /// Like [`EchoState::stop_recording`] from a synchronous callback: `None` also when a
    /// request is starting or stopping a recording at this moment (it owns the outcome).
    pub fn take_recording_now(&self) -> Option<OpusRecorder> {
        let mut open = self.recording.try_lock().ok()?;
        *self.recorder.write().unwrap_or_else(|e| e.into_inner()) = None;
        open.take()
    }

    /// Stops feeding the open recording and hands it back to be finished.
    pub async fn stop_recording(&self) -> Option<OpusRecorder> {
        let mut open = self.recording.lock().await;
        *self.recorder.write().unwrap_or_else(|e| e.into_inner()) = None;
        open.take()
    }

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
