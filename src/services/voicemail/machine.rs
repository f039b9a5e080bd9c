//! The answering machine: an inbound call nobody takes, for an account whose mailbox is on
//! (`voicemail_enabled`), is answered, hears the greeting and a beep, and is recorded until
//! `#` (RFC 4733 or SIP INFO), `silence_seconds` of silence, `max_seconds`, or the caller's
//! hang-up; then it is hung up. The call speaks what the caller offered among PCMU, PCMA and
//! Opus (the line's codecs): the greeting goes out in that codec, a caller's G.711 is encoded
//! to Opus on the codec workers ([`super::encoder`]) and an Opus caller's packets are stored
//! as they come, into a `recordings` row of kind `voicemail`, owner the extension, caller the
//! SIP `From`.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bifrons_sip::rtp::{RtpEndpoint, RtpEvent};
use bifrons_sip::CallEvent;
use tokio::sync::{broadcast, oneshot};

use super::encoder::{EncoderInput, MessageEncoder};
use super::tones::{play, Prompt, OPUS_RATE};
use super::waiting::MessageWaiting;
use crate::config::VoicemailConfig;
use crate::services::recording::RecordingService;
use crate::services::sip::{InboundRouter, UnansweredCall, UnansweredHook};
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

/// The answering machine, shared by every mailbox call.
pub struct AnsweringMachine {
    storage: Storage,
    recording: RecordingService,
    workers: Arc<WorkerPool>,
    config: VoicemailConfig,
    greeting: Prompt,
    beep: Prompt,
    waiting: Arc<MessageWaiting>,
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
            waiting: Arc::new(MessageWaiting::browsers_only(storage.clone(), router)),
            storage,
            recording,
            workers,
            config,
            greeting: Prompt::tone(GREETING_HZ, GREETING_SECONDS),
            beep: Prompt::tone(BEEP_HZ, BEEP_SECONDS),
        }
    }

    /// Tells `waiting` (browsers and SIP phones) of new messages instead of browsers only.
    pub fn with_waiting(mut self, waiting: Arc<MessageWaiting>) -> Self {
        self.waiting = waiting;
        self
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
        let mut greeting = self.greeting_of(&settings).await;
        let mut beep = self.beep.clone();
        let max_seconds = settings.max_length_s.unwrap_or(self.config.max_seconds);
        if rtp.params().clock_rate == OPUS_RATE {
            (greeting, beep) = opus_prompts(greeting, beep).await;
        }
        // In the codec the call negotiated (PCMU, PCMA or Opus).
        if play(&rtp, &greeting, &mut call.events, &[]).await.is_err()
            || play(&rtp, &beep, &mut call.events, &[]).await.is_err()
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
                self.waiting.landed(&call.callee, row.id.0, &caller).await;
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

    /// The greeting of a mailbox: its uploaded file (decoded on the blocking pool), or the
    /// default tone when none is set or it cannot be read (logged).
    async fn greeting_of(&self, settings: &MailboxSettings) -> Prompt {
        let Some(file) = &settings.greeting_file else {
            return self.greeting.clone();
        };
        let Some(path) = crate::storage::message_file(self.recording.dir(), file) else {
            return self.greeting.clone();
        };
        match tokio::task::spawn_blocking(move || crate::audio_file::load_pcm_8k(&path)).await {
            Ok(Ok(pcm)) => Prompt::from_pcm(&pcm),
            Ok(Err(e)) => {
                tracing::warn!(file = %file, error = %e, "mailbox greeting unreadable, default tone");
                self.greeting.clone()
            }
            Err(_) => self.greeting.clone(),
        }
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
        let params = rtp.params();
        let opus_pt = (params.clock_rate == OPUS_RATE).then_some(params.pt);
        let silence_frames = self.config.silence_seconds.saturating_mul(50);
        let mut last_packet = tokio::time::Instant::now();
        let mut check = tokio::time::interval(Duration::from_millis(200));
        loop {
            tokio::select! {
                ev = rtp.recv() => match ev {
                    Some(RtpEvent::Audio { pt, payload, .. }) if Some(pt) == opus_pt => {
                        last_packet = tokio::time::Instant::now();
                        // A full queue drops the packet (counted by the job's handle).
                        let _ = tx.try_push(EncoderInput::Opus { payload });
                    }
                    Some(RtpEvent::Audio { pt, payload, .. }) if pt == 0 || pt == 8 => {
                        last_packet = tokio::time::Instant::now();
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

/// The greeting and beep with their Opus packets, encoded on the blocking pool; a prompt that
/// cannot be encoded is logged and stays without them (the Opus caller hears silence instead).
async fn opus_prompts(greeting: Prompt, beep: Prompt) -> (Prompt, Prompt) {
    let (g, b) = (greeting.clone(), beep.clone());
    match tokio::task::spawn_blocking(move || {
        Ok::<_, bifrons_transcoding::TranscodeError>((g.with_opus()?, b.with_opus()?))
    })
    .await
    {
        Ok(Ok(both)) => both,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "mailbox prompts not encoded to Opus");
            (greeting, beep)
        }
        Err(_) => (greeting, beep),
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
