//! The answering machine: an inbound call nobody takes, for an account whose mailbox is on
//! (`voicemail_enabled`), is answered, hears the greeting and a beep, and is recorded until
//! `#` (RFC 4733 or SIP INFO), `silence_seconds` of silence, `max_seconds`, or the caller's
//! hang-up; then it is hung up. The caller's G.711 is encoded to Opus on the codec workers
//! ([`super::encoder`]) into a `recordings` row of kind `voicemail`, owner the extension,
//! caller the SIP `From`.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bifrons_sip::rtp::{RtpEndpoint, RtpEvent};
use bifrons_sip::CallEvent;
use tokio::sync::{broadcast, oneshot};

use super::encoder::{EncoderInput, MessageEncoder};
use crate::config::VoicemailConfig;
use crate::services::recording::RecordingService;
use crate::services::sip::{InboundRouter, UnansweredCall, UnansweredHook, VoicemailNotice};
use crate::services::workers::{input_queue, InputSender, PushError, WorkerPool};
use crate::storage::{Mailbox, MailboxSettings, RecordingFilter, RecordingKind, Storage};

/// Frequency of the default greeting tone, Hz.
pub const GREETING_HZ: f64 = 600.0;
/// Length of the default greeting, seconds.
pub const GREETING_SECONDS: f64 = 2.0;
/// Frequency of the beep before recording, Hz.
pub const BEEP_HZ: f64 = 1_000.0;
/// Length of the beep, seconds.
pub const BEEP_SECONDS: f64 = 0.3;
/// G.711 samples per 20 ms packet.
const PACKET_SAMPLES: usize = 160;
/// Input queue of the encoder job: 1.28 s of 20 ms packets.
const ENCODER_QUEUE: usize = 64;

/// Why a message ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageEnd {
    /// The caller pressed `#`.
    Hash,
    /// `silence_seconds` without voice.
    Silence,
    /// `max_seconds` reached.
    MaxLength,
    /// The caller hung up.
    HungUp,
}

/// μ-law samples of a tone (8 kHz), made once.
fn ulaw_tone(hz: f64, seconds: f64) -> Vec<u8> {
    let n = (8_000.0 * seconds) as usize;
    (0..n)
        .map(|i| {
            let v = 0.3 * 32767.0 * (2.0 * std::f64::consts::PI * hz * i as f64 / 8_000.0).sin();
            bifrons_sip::g711::ulaw_encode(v as i16)
        })
        .collect()
}

/// The answering machine, shared by every mailbox call.
pub struct AnsweringMachine {
    storage: Storage,
    router: Arc<InboundRouter>,
    recording: RecordingService,
    workers: Arc<WorkerPool>,
    config: VoicemailConfig,
    greeting: Vec<u8>,
    beep: Vec<u8>,
}

impl AnsweringMachine {
    /// A machine recording into `recording` (folder `[voicemail] folder`), encoding on
    /// `workers`, telling the extension's targets on `router` when a message lands, with the default greeting (a [`GREETING_HZ`] tone) and beep.
    pub fn new(
        storage: Storage,
        router: Arc<InboundRouter>,
        recording: RecordingService,
        workers: Arc<WorkerPool>,
        config: VoicemailConfig,
    ) -> Self {
        Self {
            storage,
            router,
            recording,
            workers,
            config,
            greeting: ulaw_tone(GREETING_HZ, GREETING_SECONDS),
            beep: ulaw_tone(BEEP_HZ, BEEP_SECONDS),
        }
    }

    /// Sends `ulaw` as 20 ms PCMU packets in real time, discarding what the caller sends
    /// meanwhile (the message starts after the beep); `false` when the caller hung up.
    async fn play(
        rtp: &RtpEndpoint,
        ulaw: &[u8],
        events: &mut broadcast::Receiver<CallEvent>,
    ) -> bool {
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        let mut chunks = ulaw.chunks(PACKET_SAMPLES);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    let Some(chunk) = chunks.next() else { return true };
                    let _ = rtp.send_audio(chunk, chunk.len() as u32);
                }
                ev = rtp.recv() => if ev.is_none() { return false },
                ev = events.recv() => {
                    if matches!(ev, Ok(CallEvent::Ended(_)) | Err(broadcast::error::RecvError::Closed)) {
                        return false;
                    }
                }
            }
        }
    }

    async fn run(self: Arc<Self>, mut call: UnansweredCall) {
        if let Err(e) = call.call.answer().await {
            tracing::warn!(error = %e, callee = %call.callee, "mailbox cannot answer");
            return;
        }
        let Some(rtp) = call.call.rtp().cloned() else {
            tracing::warn!(callee = %call.callee, "mailbox call without RTP");
            let _ = call.call.hangup().await;
            return;
        };
        let mailbox = self
            .storage
            .mailboxes()
            .get_by_extension(&call.callee)
            .await
            .ok();
        let settings = mailbox.map(|m| m.settings).unwrap_or_default();
        let greeting = self.greeting_of(&settings).await;
        let max_seconds = settings.max_length_s.unwrap_or(self.config.max_seconds);
        if !Self::play(&rtp, &greeting, &mut call.events).await
            || !Self::play(&rtp, &self.beep, &mut call.events).await
        {
            tracing::info!(callee = %call.callee, "caller hung up during the greeting");
            return;
        }
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let name = format!(
            "{}/{}/{ms}-{}.opus",
            self.config.folder,
            call.callee,
            rand::random::<u32>()
        );
        let recorder = match self
            .recording
            .start_opus(RecordingKind::Voicemail, &call.callee, &name)
            .await
        {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "mailbox message not started");
                let _ = call.call.hangup().await;
                return;
            }
        };
        let caller: String = call
            .caller
            .chars()
            .take(crate::storage::validate::MAX_TEXT_LEN)
            .collect();
        if let Err(e) = self
            .storage
            .recordings()
            .set_parties(recorder.row().id, Some(&caller), None)
            .await
        {
            tracing::warn!(error = %e, "mailbox message without its caller id");
        }
        let silent = Arc::new(AtomicU32::new(0));
        let (tx, rx) = input_queue(ENCODER_QUEUE);
        let job = match MessageEncoder::new(rx, recorder.sink(), silent.clone()) {
            Ok(j) => j,
            Err(e) => {
                tracing::warn!(error = %e, "mailbox encoder");
                let _ = call.call.hangup().await;
                return;
            }
        };
        // Held until the message is closed: dropping it stops the job.
        let _job = match self.workers.submit(job) {
            Ok(handle) => handle,
            Err(e) => {
                tracing::warn!(error = %e, "mailbox encoder not started");
                let _ = call.call.hangup().await;
                return;
            }
        };
        tracing::info!(file = %name, "mailbox recording");
        let end = self
            .record(&rtp, &mut call.events, &tx, &silent, max_seconds)
            .await;
        tracing::info!(?end, "mailbox recording ended");
        if end != MessageEnd::HungUp {
            let _ = call.call.hangup().await;
        }
        // Whatever the caller sent is encoded before the file is closed.
        let mut done = None;
        for _ in 0..250 {
            let (done_tx, done_rx) = oneshot::channel();
            match tx.try_push(EncoderInput::End(done_tx)) {
                Ok(()) => {
                    done = Some(done_rx);
                    break;
                }
                Err(PushError::Full) => tokio::time::sleep(Duration::from_millis(20)).await,
                Err(PushError::Closed) => break,
            }
        }
        if let Some(done) = done {
            let _ = tokio::time::timeout(Duration::from_secs(5), done).await;
        }
        match recorder.finish().await {
            Ok(row) => {
                tracing::info!(
                    recording = %row.id,
                    mailbox = %call.callee,
                    caller = %caller,
                    duration_ms = row.meta.duration_ms,
                    ?end,
                    "mailbox message saved"
                );
                self.notify(&call.callee, row.id.0, &caller).await;
            }
            Err(e) => {
                tracing::warn!(error = %e, mailbox = %call.callee, "mailbox message not saved")
            }
        }
    }

    /// Whether the mailbox holds its `max_messages` already (a full mailbox takes no call).
    async fn full(&self, mailbox: &Mailbox) -> bool {
        let Some(max) = mailbox.settings.max_messages else {
            return false;
        };
        let filter = RecordingFilter {
            kind: Some(RecordingKind::Voicemail),
            owner: Some(mailbox.extension.clone()),
            heard: None,
        };
        let held = self.storage.recordings().count(&filter).await.unwrap_or(0);
        if held >= i64::from(max) {
            tracing::info!(mailbox = %mailbox.extension, held, max, "mailbox full");
            return true;
        }
        false
    }

    /// The μ-law greeting of a mailbox: its uploaded file (decoded on the blocking pool), or
    /// the default tone when none is set or it cannot be read (logged).
    async fn greeting_of(&self, settings: &MailboxSettings) -> Vec<u8> {
        let Some(file) = &settings.greeting_file else {
            return self.greeting.clone();
        };
        let Some(path) = super::message_file(self.recording.dir(), file) else {
            return self.greeting.clone();
        };
        match tokio::task::spawn_blocking(move || super::audio_file::load_ulaw(&path)).await {
            Ok(Ok(ulaw)) => ulaw,
            Ok(Err(e)) => {
                tracing::warn!(file = %file, error = %e, "mailbox greeting unreadable, default tone");
                self.greeting.clone()
            }
            Err(_) => self.greeting.clone(),
        }
    }

    /// Message waiting: tells the extension's registered targets (browsers) how many
    /// messages its mailbox holds now.
    async fn notify(&self, extension: &str, recording_id: i64, caller: &str) {
        let recordings = self.storage.recordings();
        let mut filter = RecordingFilter {
            kind: Some(RecordingKind::Voicemail),
            owner: Some(extension.to_owned()),
            heard: None,
        };
        let total = recordings.count(&filter).await.unwrap_or(0);
        filter.heard = Some(false);
        let new = recordings.count(&filter).await.unwrap_or(0);
        let told = self.router.dispatch_voicemail(&VoicemailNotice {
            extension: extension.to_owned(),
            recording_id,
            caller: caller.to_owned(),
            new,
            total,
        });
        tracing::info!(mailbox = %extension, new, total, told, "message waiting");
    }

    /// Feeds the caller's audio to the encoder until the message ends.
    async fn record(
        &self,
        rtp: &RtpEndpoint,
        events: &mut broadcast::Receiver<CallEvent>,
        tx: &InputSender<EncoderInput>,
        silent: &AtomicU32,
        max_seconds: u32,
    ) -> MessageEnd {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(u64::from(max_seconds));
        let silence_frames = self.config.silence_seconds.saturating_mul(50);
        let mut last_packet = tokio::time::Instant::now();
        let mut check = tokio::time::interval(Duration::from_millis(200));
        loop {
            tokio::select! {
                ev = rtp.recv() => match ev {
                    Some(RtpEvent::Audio { pt, payload, .. }) if pt == 0 || pt == 8 => {
                        last_packet = tokio::time::Instant::now();
                        // A full queue drops the packet (counted by the job's handle).
                        let _ = tx.try_push(EncoderInput::G711 { pt, payload });
                    }
                    Some(RtpEvent::Dtmf('#')) => return MessageEnd::Hash,
                    Some(_) => {}
                    None => return MessageEnd::HungUp,
                },
                ev = events.recv() => match ev {
                    Ok(CallEvent::Ended(_)) | Err(broadcast::error::RecvError::Closed) => return MessageEnd::HungUp,
                    Ok(CallEvent::Dtmf { digit: '#', .. }) => return MessageEnd::Hash,
                    _ => {}
                },
                _ = tokio::time::sleep_until(deadline) => return MessageEnd::MaxLength,
                _ = check.tick() => {
                    let quiet_for = last_packet.elapsed();
                    if silence_frames > 0
                        && (silent.load(Ordering::Relaxed) >= silence_frames
                            || quiet_for >= Duration::from_secs(u64::from(self.config.silence_seconds)))
                    {
                        return MessageEnd::Silence;
                    }
                }
            }
        }
    }
}

#[async_trait::async_trait]
impl UnansweredHook for Arc<AnsweringMachine> {
    async fn wants(&self, extension: &str) -> bool {
        match self.storage.mailboxes().get_by_extension(extension).await {
            Ok(mailbox) => mailbox.settings.enabled && !self.full(&mailbox).await,
            Err(_) => false,
        }
    }

    fn take(&self, call: UnansweredCall) {
        tokio::spawn(self.clone().run(call));
    }
}
