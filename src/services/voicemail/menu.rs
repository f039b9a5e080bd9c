//! The mailbox menu: what a call to the mailbox extension (`[voicemail] extension`, the line
//! of a registry account kept open by [`super::lines`]) hears.
//!
//! A caller calling from an account's own address of record is asked for that mailbox's PIN
//! at once; anyone else first keys the mailbox number, then the PIN (each ended by `#`). Three
//! wrong tries hang up, each one answered later than the one before. Then: one beep per new
//! message, and every message, new ones first, oldest first: `#` skips to the next (the
//! message counts as heard), `7` deletes it (row and file), one played to its end is heard.
//! After the last one a goodbye tone, and the gateway hangs up. Message waiting follows each
//! change ([`super::waiting`]).
//!
//! Tones, not speech: [`PROMPT_HZ`] asks for digits, [`COUNT_HZ`] counts, [`ERROR_HZ`] says
//! no, [`DELETED_HZ`] confirms a deletion, [`GOODBYE_HZ`] ends. A G.711 call hears them and
//! the messages (decoded) in its law; an Opus call hears them encoded to Opus once, and the
//! messages in the Opus they were recorded in.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bifrons_sip::rtp::{RtpEndpoint, RtpEvent};
use bifrons_sip::CallEvent;
use tokio::sync::{broadcast, oneshot};

use super::digits::{pin_shaped, same_address, Entry, Step};
use super::player::{opus_packets, DecodeJob};
use super::tones::{play, Interrupted, Prompt, OPUS_RATE};
use super::waiting::MessageWaiting;
use crate::services::sip::{CallTarget, InboundCall, RingingCall, TargetKind, MAILBOX_TARGET};
use crate::services::workers::WorkerPool;
use crate::storage::{Account, Page, Recording, RecordingFilter, RecordingKind, Storage};

/// "Key in digits, then #", Hz.
pub const PROMPT_HZ: f64 = 700.0;
/// One beep per new message, Hz.
pub const COUNT_HZ: f64 = 1_000.0;
/// Wrong PIN or unknown mailbox, Hz.
pub const ERROR_HZ: f64 = 300.0;
/// A message was deleted, Hz.
pub const DELETED_HZ: f64 = 500.0;
/// The menu ends, Hz.
pub const GOODBYE_HZ: f64 = 350.0;
/// Wrong PINs (or unknown mailboxes) before the menu hangs up.
pub const MAX_TRIES: u32 = 3;
/// Longest wait for the next key of an entry; an entry without `#` ends with it.
const KEY_TIMEOUT: Duration = Duration::from_secs(10);
/// After a message played to its end, how long `7` still deletes it.
const AFTER_MESSAGE: Duration = Duration::from_millis(1500);
/// Every DTMF key.
const KEYS: [char; 16] = [
    '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '*', '#', 'A', 'B', 'C', 'D',
];
/// Longest a message may take to decode before it is skipped.
const DECODE_TIMEOUT: Duration = Duration::from_secs(30);

/// The tones of the menu, made once (their Opus packets once too, on the first Opus call).
#[derive(Clone)]
struct Prompts {
    ask: Prompt,
    error: Prompt,
    deleted: Prompt,
    goodbye: Prompt,
    gap: Prompt,
    /// `count[n - 1]`: n beeps, for n new messages (at most [`MAX_COUNT_BEEPS`]).
    count: Vec<Prompt>,
}

/// Most beeps counting new messages.
const MAX_COUNT_BEEPS: usize = 20;

/// What every menu call shares.
pub struct Menu {
    storage: Storage,
    recordings_dir: PathBuf,
    workers: Arc<WorkerPool>,
    waiting: Arc<MessageWaiting>,
    prompts: Arc<Prompts>,
    /// The same tones with their Opus packets, for Opus calls.
    opus_prompts: tokio::sync::OnceCell<Option<Arc<Prompts>>>,
}

/// The mailbox extension's call target (kind [`TargetKind::Mailbox`]).
pub struct MenuTarget(Arc<Menu>);

impl MenuTarget {
    /// A menu reading messages from `recordings_dir`, decoding on `workers`.
    pub fn new(
        storage: Storage,
        recordings_dir: PathBuf,
        workers: Arc<WorkerPool>,
        waiting: Arc<MessageWaiting>,
    ) -> Self {
        Self(Arc::new(Menu {
            storage,
            recordings_dir,
            workers,
            waiting,
            opus_prompts: tokio::sync::OnceCell::new(),
            prompts: Arc::new(Prompts {
                ask: Prompt::beeps(2, PROMPT_HZ, 0.15, 0.1),
                error: Prompt::tone(ERROR_HZ, 0.6),
                deleted: Prompt::beeps(2, DELETED_HZ, 0.1, 0.1),
                goodbye: Prompt::tone(GOODBYE_HZ, 0.5),
                gap: Prompt::from_pcm(&[0; 4000]),
                count: (1..=MAX_COUNT_BEEPS)
                    .map(|n| Prompt::beeps(n, COUNT_HZ, 0.15, 0.25))
                    .collect(),
            }),
        }))
    }
}

impl CallTarget for MenuTarget {
    fn kind(&self) -> TargetKind {
        TargetKind::Mailbox
    }

    fn offer(&self, call: &InboundCall) {
        tracing::debug!(call_id = %call.call_id, "mailbox menu offered a call without dialog: ignored");
    }

    fn ring(&self, _call: &InboundCall, ringing: &Arc<RingingCall>) {
        let (_, events) = ringing.subscribe();
        tokio::spawn(self.0.clone().session(ringing.clone(), events));
    }
}

/// How a menu call left off.
#[derive(Debug)]
enum Gone {
    /// The caller hung up.
    HungUp,
    /// The menu is over (goodbye played, or too many wrong tries).
    Done,
}

/// One menu call's media, events and tones (in its codec).
struct Leg {
    rtp: Arc<RtpEndpoint>,
    events: broadcast::Receiver<CallEvent>,
    prompts: Arc<Prompts>,
}

impl Leg {
    fn is_opus(&self) -> bool {
        self.rtp.params().clock_rate == OPUS_RATE
    }
}

impl Leg {
    async fn play(&mut self, prompt: &Prompt, keys: &[char]) -> Result<Option<char>, Gone> {
        match play(&self.rtp, prompt, &mut self.events, keys).await {
            Ok(()) => Ok(None),
            Err(Interrupted::Key(k)) => Ok(Some(k)),
            Err(Interrupted::HungUp) => Err(Gone::HungUp),
        }
    }

    /// The next key within `wait`, `None` after it.
    async fn key(&mut self, wait: Duration) -> Result<Option<char>, Gone> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            tokio::select! {
                ev = self.rtp.recv() => match ev {
                    None => return Err(Gone::HungUp),
                    Some(RtpEvent::Dtmf(d)) => return Ok(Some(d)),
                    Some(_) => {}
                },
                ev = self.events.recv() => match ev {
                    Ok(CallEvent::Ended(_)) | Err(broadcast::error::RecvError::Closed) => return Err(Gone::HungUp),
                    Ok(CallEvent::Dtmf { digit, .. }) => return Ok(Some(digit)),
                    _ => {}
                },
                _ = tokio::time::sleep_until(deadline) => return Ok(None),
            }
        }
    }

    /// Plays `prompt`, then takes digits up to `#` (or a pause of [`KEY_TIMEOUT`]); a key
    /// pressed during the prompt stops it and starts the entry. `None` when too many digits
    /// were keyed, or none.
    async fn ask(&mut self, prompt: &Prompt) -> Result<Option<String>, Gone> {
        let mut entry = Entry::default();
        let mut next = match self.play(prompt, &KEYS).await? {
            Some(k) => Some(k),
            // Played to its end: the first key may come up to a pause later.
            None => self.key(KEY_TIMEOUT).await?,
        };
        loop {
            let Some(k) = next else {
                return Ok(entry_end(entry));
            };
            match entry.push(k) {
                Step::More => {}
                Step::Done(d) => return Ok(Some(d).filter(|d| !d.is_empty())),
                Step::TooLong => return Ok(None),
            }
            next = self.key(KEY_TIMEOUT).await?;
        }
    }
}

/// What an entry left unfinished by a pause holds.
fn entry_end(mut entry: Entry) -> Option<String> {
    match entry.push('#') {
        Step::Done(d) if !d.is_empty() => Some(d),
        _ => None,
    }
}

impl Menu {
    async fn session(
        self: Arc<Self>,
        ringing: Arc<RingingCall>,
        events: broadcast::Receiver<CallEvent>,
    ) {
        let call_id = ringing.id().to_string();
        if !ringing.claim(MAILBOX_TARGET) {
            return;
        }
        if let Err(e) = ringing.call.answer().await {
            tracing::warn!(%call_id, error = %e, "mailbox menu cannot answer");
            return;
        }
        let Some(rtp) = ringing.call.rtp().cloned() else {
            tracing::warn!(%call_id, "mailbox menu call without RTP");
            let _ = ringing.call.hangup().await;
            return;
        };
        let opus = rtp.params().clock_rate == OPUS_RATE;
        tracing::info!(%call_id, caller = %ringing.caller, opus, "mailbox menu answered");
        let prompts = match opus {
            true => self.opus_prompts().await,
            false => self.prompts.clone(),
        };
        let mut leg = Leg {
            rtp,
            events,
            prompts,
        };
        let outcome = self.serve(&mut leg, &ringing.caller).await;
        tracing::info!(%call_id, ?outcome, "mailbox menu over");
        if !matches!(outcome, Err(Gone::HungUp)) {
            let _ = ringing.call.hangup().await;
        }
    }

    /// The mailbox whose own address `caller` is, if any.
    async fn own_mailbox(&self, caller: &str) -> Option<Account> {
        let accounts = self
            .storage
            .accounts()
            .list(Page::first(Page::MAX_LIMIT))
            .await
            .ok()?;
        accounts
            .into_iter()
            .find(|a| a.spec.voicemail_enabled && same_address(caller, &a.spec.sip_uri))
    }

    /// Asks for the mailbox (unless the caller's address names it) and its PIN; the account
    /// once the PIN matches.
    async fn log_in(&self, leg: &mut Leg, caller: &str) -> Result<Account, Gone> {
        let prompts = leg.prompts.clone();
        let own = self.own_mailbox(caller).await;
        for attempt in 1..=MAX_TRIES {
            let account = match &own {
                Some(a) => Some(a.clone()),
                None => match leg.ask(&prompts.ask).await? {
                    Some(n) => self.storage.accounts().get_by_extension(&n).await.ok(),
                    None => None,
                },
            };
            let pin = leg.ask(&prompts.ask).await?.filter(|p| pin_shaped(p));
            let opened = match (&account, pin) {
                (Some(a), Some(pin)) if a.spec.voicemail_enabled => self
                    .storage
                    .mailboxes()
                    .verify_pin(a.id, &pin)
                    .await
                    .unwrap_or(false),
                _ => false,
            };
            if opened {
                return account.ok_or(Gone::Done);
            }
            tracing::info!(caller, attempt, mailbox = ?account.as_ref().map(|a| a.spec.extension.as_str()), "mailbox menu: wrong PIN or mailbox");
            // Each wrong try waits longer before the next (a brute force is slowed down).
            tokio::time::sleep(Duration::from_secs(u64::from(attempt))).await;
            leg.play(&prompts.error, &[]).await?;
        }
        Err(Gone::Done)
    }

    async fn serve(&self, leg: &mut Leg, caller: &str) -> Result<(), Gone> {
        let prompts = leg.prompts.clone();
        let account = self.log_in(leg, caller).await?;
        let extension = account.spec.extension.clone();
        let mut messages = self
            .storage
            .recordings()
            .list(
                &RecordingFilter {
                    kind: Some(RecordingKind::Voicemail),
                    owner: Some(extension.clone()),
                    heard: None,
                },
                Page::first(Page::MAX_LIMIT),
            )
            .await
            .unwrap_or_default();
        messages.sort_by_key(|m| (m.heard, m.id.0));
        let new = messages.iter().filter(|m| !m.heard).count();
        tracing::info!(mailbox = %extension, new, total = messages.len(), "mailbox menu: logged in");
        leg.play(&prompts.gap, &[]).await?;
        if let Some(beeps) = new.checked_sub(1).map(|i| i.min(MAX_COUNT_BEEPS - 1)) {
            leg.play(&prompts.count[beeps], &[]).await?;
        }
        for message in &messages {
            leg.play(&prompts.gap, &[]).await?;
            self.message(leg, &extension, message).await?;
        }
        leg.play(&prompts.goodbye, &[]).await?;
        Ok(())
    }

    /// Plays one message and does what the caller keys.
    async fn message(&self, leg: &mut Leg, extension: &str, m: &Recording) -> Result<(), Gone> {
        let prompts = leg.prompts.clone();
        let Some(audio) = self.decode(m, leg.is_opus()).await else {
            tracing::warn!(
                recording = m.id.0,
                "mailbox menu: message unreadable, skipped"
            );
            return Ok(());
        };
        tracing::info!(mailbox = %extension, recording = m.id.0, samples = audio.len(), "mailbox menu: playing message");
        let key = match leg.play(&audio, &['#', '7']).await? {
            Some(k) => Some(k),
            None => leg.key(AFTER_MESSAGE).await?,
        };
        let recordings = self.storage.recordings();
        if key == Some('7') {
            match recordings.delete(m.id).await {
                Ok(row) => {
                    let file = self.recordings_dir.join(&row.meta.file_path);
                    if let Err(e) = tokio::fs::remove_file(&file).await {
                        tracing::warn!(error = %e, recording = m.id.0, "deleted message's file not removed");
                    }
                    tracing::info!(mailbox = %extension, recording = m.id.0, "mailbox menu: message deleted");
                    leg.play(&prompts.deleted, &[]).await?;
                }
                Err(e) => tracing::warn!(error = %e, recording = m.id.0, "message not deleted"),
            }
        } else {
            tracing::info!(mailbox = %extension, recording = m.id.0, skipped = key == Some('#'), "mailbox menu: message heard");
            if !m.heard {
                if let Err(e) = recordings.set_heard(m.id, true).await {
                    tracing::warn!(error = %e, recording = m.id.0, "message not marked heard");
                }
            }
        }
        self.waiting.changed(extension).await;
        Ok(())
    }

    /// The menu's tones with their Opus packets, encoded once on the blocking pool; the G.711
    /// tones (heard as silence) when they cannot be encoded, with a log line.
    async fn opus_prompts(&self) -> Arc<Prompts> {
        let encoded = self
            .opus_prompts
            .get_or_init(|| async {
                let prompts = (*self.prompts).clone();
                let encoded = tokio::task::spawn_blocking(move || {
                    let opus = |p: Prompt| p.with_opus();
                    Ok::<_, bifrons_transcoding::TranscodeError>(Prompts {
                        ask: opus(prompts.ask)?,
                        error: opus(prompts.error)?,
                        deleted: opus(prompts.deleted)?,
                        goodbye: opus(prompts.goodbye)?,
                        gap: opus(prompts.gap)?,
                        count: prompts
                            .count
                            .into_iter()
                            .map(opus)
                            .collect::<Result<_, _>>()?,
                    })
                })
                .await;
                let encoded = encoded
                    .map_err(|e| e.to_string())
                    .and_then(|r| r.map_err(|e| e.to_string()));
                encoded
                    .inspect_err(
                        |e| tracing::warn!(error = %e, "mailbox menu tones not encoded to Opus"),
                    )
                    .ok()
                    .map(Arc::new)
            })
            .await;
        encoded.clone().unwrap_or_else(|| self.prompts.clone())
    }

    /// The message's audio as a prompt: its own Opus packets for an Opus call (sent one per
    /// 20 ms, the packet length browsers and the answering machine record), else decoded to
    /// 8 kHz on the workers.
    async fn decode(&self, m: &Recording, opus: bool) -> Option<Prompt> {
        let file = self.recordings_dir.join(&m.meta.file_path);
        let data = tokio::fs::read(&file).await.ok()?;
        if opus {
            return Some(Prompt::from_opus(opus_packets(&data))).filter(|p| !p.is_empty());
        }
        let (tx, rx) = oneshot::channel();
        let job = DecodeJob::new(opus_packets(&data), tx).ok()?;
        // Held until the prompt arrives: dropping it would stop the job.
        let _job = self.workers.submit(job).ok()?;
        tokio::time::timeout(DECODE_TIMEOUT, rx).await.ok()?.ok()
    }
}
