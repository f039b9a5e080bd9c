//! Playing a message to its owner's browser (Bifrons; modelled on Record&Play's `play` /
//! `start` / `done`): `play` reads the message's Ogg Opus packets (blocking pool) and sends a
//! gateway offer, audio send-only, Opus; `start` carries the browser's answer; once WebRTC is
//! up the stored packets go out as they are (no decoding), paced by their own durations
//! (RFC 6716 §3.1 TOC), 48 kHz RTP timestamps; at the end the handle gets `done`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use serde_json::json;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::requests::{VoicemailError, ERROR_INVALID_STATE, ERROR_UNKNOWN};
use crate::audio_file::{opus_packet_samples, OpusPackets};
use crate::media::{Codec, MediaKind, RtpPacket};
use crate::plugins::HandleCtx;

/// How long `start` waits for the PeerConnection to come up before giving up.
const MEDIA_UP_TIMEOUT: Duration = Duration::from_secs(30);

/// A message offered and waiting for the browser's answer.
struct Pending {
    id: i64,
    packets: Arc<OpusPackets>,
}

/// The playback side of one handle: at most one message offered or playing at a time.
#[derive(Default)]
pub struct Playback {
    pending: Mutex<Option<Pending>>,
    /// Cancels the message playing now.
    playing: Mutex<Option<CancellationToken>>,
    media_up: AtomicBool,
    up: Notify,
}

impl Playback {
    /// Whether a message is offered or playing.
    pub fn busy(&self) -> bool {
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
            || self
                .playing
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .is_some()
    }

    /// Keeps message `id`'s packets until the browser answers the offer.
    pub fn offer(&self, id: i64, packets: OpusPackets) {
        *self.pending.lock().unwrap_or_else(|e| e.into_inner()) = Some(Pending {
            id,
            packets: Arc::new(packets),
        });
    }

    /// WebRTC is up on the handle.
    pub fn media_up(&self) {
        self.media_up.store(true, Ordering::Release);
        self.up.notify_waiters();
    }

    /// The PeerConnection went away: stops what plays and forgets the offer.
    pub fn media_gone(&self) {
        self.media_up.store(false, Ordering::Release);
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        self.stop();
    }

    /// Stops the message playing now (its task sends `done`); `false` when none was.
    pub fn stop(&self) -> bool {
        match self
            .playing
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            Some(token) => {
                token.cancel();
                true
            }
            None => false,
        }
    }

    /// Starts the offered message (the browser's answer has been applied); returns its id.
    /// 468 when nothing was offered.
    pub fn start(self: &Arc<Self>, ctx: &Arc<HandleCtx>) -> Result<i64, VoicemailError> {
        let Some(pending) = self
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        else {
            return Err(VoicemailError::new(
                ERROR_INVALID_STATE,
                "Invalid state (no message offered)",
            ));
        };
        let token = CancellationToken::new();
        *self.playing.lock().unwrap_or_else(|e| e.into_inner()) = Some(token.clone());
        let id = pending.id;
        ctx.spawn(self.clone().run(ctx.clone(), pending, token));
        Ok(id)
    }

    async fn wait_media_up(&self) -> bool {
        let deadline = tokio::time::Instant::now() + MEDIA_UP_TIMEOUT;
        loop {
            let notified = self.up.notified();
            if self.media_up.load(Ordering::Acquire) {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.media_up.load(Ordering::Acquire);
            }
        }
    }

    async fn run(self: Arc<Self>, ctx: Arc<HandleCtx>, pending: Pending, token: CancellationToken) {
        let id = pending.id;
        let outcome = tokio::select! {
            r = self.send(&ctx, &pending) => r,
            _ = token.cancelled() => Ok(false),
        };
        self.playing
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        match outcome {
            Ok(complete) => {
                tracing::info!(recording = id, complete, "voicemail message played");
                ctx.push_event(
                    None,
                    json!({"voicemail": "event", "status": "done", "id": id, "complete": complete}),
                    None,
                );
            }
            Err(e) => {
                tracing::info!(recording = id, error = %e.message, "voicemail playback failed");
                ctx.push_event(
                    None,
                    json!({"voicemail": "event", "error_code": e.code, "error": e.message}),
                    None,
                );
            }
        }
    }

    /// Sends every packet in real time; `Ok(true)` once all went out.
    async fn send(&self, ctx: &HandleCtx, pending: &Pending) -> Result<bool, VoicemailError> {
        if !self.wait_media_up().await {
            return Err(VoicemailError::new(ERROR_UNKNOWN, "WebRTC did not come up"));
        }
        let stream = ctx
            .negotiated()
            .and_then(|n| n.first(MediaKind::Audio).cloned())
            .filter(|s| s.codec == Some(Codec::Opus))
            .ok_or_else(|| VoicemailError::new(ERROR_UNKNOWN, "No Opus audio negotiated"))?;
        let sender = ctx
            .media_sender()
            .ok_or_else(|| VoicemailError::new(ERROR_UNKNOWN, "No PeerConnection"))?;
        let (ssrc, mut seq, mut ts) = {
            let mut rng = rand::thread_rng();
            (rng.gen::<u32>(), rng.gen::<u16>(), rng.gen::<u32>())
        };
        let started = tokio::time::Instant::now();
        let mut elapsed_samples: u64 = 0;
        for (i, payload) in pending.packets.packets.iter().enumerate() {
            let samples = opus_packet_samples(payload).unwrap_or(960);
            let due = started + Duration::from_micros(elapsed_samples * 1_000_000 / 48_000);
            tokio::time::sleep_until(due).await;
            if sender.is_closed() {
                return Ok(false);
            }
            sender.send_rtp(
                MediaKind::Audio,
                RtpPacket {
                    payload_type: stream.pt.0,
                    sequence_number: seq,
                    timestamp: ts,
                    ssrc,
                    marker: i == 0,
                    payload: payload.clone(),
                },
            );
            seq = seq.wrapping_add(1);
            ts = ts.wrapping_add(samples);
            elapsed_samples += u64::from(samples);
        }
        Ok(true)
    }
}
