//! One voicemail handle: the message being recorded and the limits checked on every packet.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::RwLock;

use tokio::sync::Notify;

use crate::media::{Codec, MediaKind, RtpPacket, StreamInfo};
use crate::services::recording::{OpusRecorder, RecorderSink};

/// Opus RTP clock, Hz (RFC 7587).
const OPUS_CLOCK_HZ: u64 = 48_000;

/// Limits of one message, from `[voicemail]`.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Longest message, in 48 kHz RTP ticks.
    pub max_ticks: u64,
    /// Largest message, bytes of Opus payload; 0 = none.
    pub max_bytes: u64,
}

impl Limits {
    /// Limits of `max_seconds` seconds and `max_bytes` bytes (0 = no size limit).
    pub fn new(max_seconds: u32, max_bytes: u64) -> Self {
        Self {
            max_ticks: u64::from(max_seconds) * OPUS_CLOCK_HZ,
            max_bytes,
        }
    }
}

/// Per-handle state. The packet path reads `sink` (this handle's own lock, never shared) and
/// updates atomics; everything else happens in requests and the handle's watchdog task.
pub struct VoicemailState {
    limits: Limits,
    /// Where the browser's Opus goes while recording.
    sink: RwLock<Option<RecorderSink>>,
    /// The open message, to finish it.
    pub(super) recording: tokio::sync::Mutex<Option<OpusRecorder>>,
    /// A message was started on this handle (Janus allows one per handle).
    pub(super) started: AtomicBool,
    /// RTP timestamp of the first recorded packet, +1 (0 = none yet).
    first_ts: AtomicU64,
    /// Opus payload bytes recorded.
    bytes: AtomicU64,
    /// Set once a limit is reached or the PeerConnection went away.
    limit_hit: AtomicBool,
    /// Wakes the watchdog: a limit was reached, or the media is gone.
    pub(super) wake: Notify,
    /// A mailbox owner's message offered or playing on this handle.
    pub(super) playback: std::sync::Arc<super::playback::Playback>,
}

impl VoicemailState {
    /// A handle recording nothing yet, with these limits.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            sink: RwLock::new(None),
            recording: tokio::sync::Mutex::new(None),
            started: AtomicBool::new(false),
            first_ts: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            limit_hit: AtomicBool::new(false),
            wake: Notify::new(),
            playback: Default::default(),
        }
    }

    /// The limits of this handle's message.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Starts feeding `recording`.
    pub async fn start(&self, recording: OpusRecorder) {
        let mut open = self.recording.lock().await;
        *self.sink.write().unwrap_or_else(|e| e.into_inner()) = Some(recording.sink());
        *open = Some(recording);
    }

    /// Stops feeding and hands back the open message (once).
    pub async fn take(&self) -> Option<OpusRecorder> {
        let mut open = self.recording.lock().await;
        *self.sink.write().unwrap_or_else(|e| e.into_inner()) = None;
        open.take()
    }

    /// Whether packets are being recorded now.
    pub fn recording_now(&self) -> bool {
        self.sink
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }

    /// Opus payload bytes recorded so far.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Records an Opus packet of the audio stream. The packet that would reach a limit (its
    /// timestamp `max_ticks` after the first one, or its bytes past `max_bytes`) is not
    /// recorded: it wakes the watchdog, which finishes the message.
    pub fn on_rtp(&self, stream: &StreamInfo, packet: &RtpPacket) {
        if stream.kind != MediaKind::Audio
            || stream.codec != Some(Codec::Opus)
            || packet.payload_type != stream.pt.0
            || self.limit_hit.load(Ordering::Relaxed)
        {
            return;
        }
        let guard = self.sink.read().unwrap_or_else(|e| e.into_inner());
        let Some(sink) = &*guard else {
            return;
        };
        let ts = u64::from(packet.timestamp);
        let first = match self.first_ts.load(Ordering::Relaxed) {
            0 => {
                self.first_ts.store(ts + 1, Ordering::Relaxed);
                ts
            }
            f => f - 1,
        };
        // Wrapping difference on the 32-bit RTP clock.
        let elapsed = u64::from((ts as u32).wrapping_sub(first as u32));
        let bytes = self
            .bytes
            .fetch_add(packet.payload.len() as u64, Ordering::Relaxed)
            + packet.payload.len() as u64;
        let over_size = self.limits.max_bytes > 0 && bytes > self.limits.max_bytes;
        if elapsed >= self.limits.max_ticks || over_size {
            self.limit_hit.store(true, Ordering::Relaxed);
            self.wake.notify_one();
            return;
        }
        sink.push(packet.payload.clone(), packet.timestamp);
    }

    /// The PeerConnection went away: the watchdog closes the message.
    pub fn media_gone(&self) {
        self.limit_hit.store(true, Ordering::Relaxed);
        self.wake.notify_one();
    }
}
