//! `janus.plugin.voicemail` (removed from Janus in 1.1.3): a browser leaves a message. `record`
//! with the browser's offer answers `starting` + the answer, `started` once WebRTC is up; the
//! Opus packets go without decoding to an Ogg file of the recording service (pages flushed as
//! written) with a `recordings` row (kind `voicemail`); `stop`, or the `[voicemail]`
//! `max_seconds` / `max_bytes` limit, closes it: `done` with the row id and the URL, then the
//! handle ends (the client gets `detached`), as Janus does.
//!
//! Bifrons adds the mailbox owner's side ([`owner`], [`playback`]): `list`, `play` (gateway
//! offer, `start` with the answer, the stored Opus streamed, `done`), `delete` and `mark`, each
//! with the account's extension (`mailbox`) and web secret (`secret`); `list` gives per-message
//! download URLs of `GET /voicemail/{id}.ogg|.wav?token=` ([`crate::web::voicemail`]).

mod owner;
mod playback;
mod requests;
mod state;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use rand::Rng;
use serde_json::{json, Value};

use self::requests::{
    MailboxAuth, VoicemailError, VoicemailRequest, ERROR_ALREADY_RECORDING, ERROR_INVALID_STATE,
    ERROR_IO_ERROR, ERROR_UNKNOWN,
};
use self::state::{Limits, VoicemailState};
use super::host::RegisteredPlugin;
use super::{
    AttachError, HandleCtx, Plugin, PluginDescriptor, PluginHost, PluginMessage, PluginResult,
};
use crate::config::VoicemailConfig;
use crate::media::{
    AnswerPlan, Codec, Direction, JsepType, OfferPlan, RtpPacket, StreamInfo, StreamPlan,
};
use crate::services::recording::{OpusRecorder, RecordingService};
use crate::storage::{RecordingKind, Storage};

/// Owner of a browser message that names no mailbox.
const DEFAULT_OWNER: &str = "voicemail";

/// Wall-clock slack past `max_seconds` before the watchdog closes a message whose media
/// stopped flowing (the packet clock normally ends it first).
const WALL_CLOCK_SLACK: Duration = Duration::from_secs(10);

/// The voicemail plugin.
pub struct Voicemail {
    descriptor: PluginDescriptor,
    shared: Arc<Shared>,
}

/// What every handle's requests use.
struct Shared {
    recording: RecordingService,
    storage: Storage,
    config: VoicemailConfig,
    /// Failed web secrets per mailbox.
    guard: owner::Guard,
    /// Message waiting, told when an owner marks or deletes a message.
    waiting: Arc<crate::services::voicemail::waiting::MessageWaiting>,
}

/// Starts the plugin with `[voicemail]` and the host's recording service, after the recovery
/// pass has filled in the rows of messages a crash cut short.
pub fn factory(host: &PluginHost) -> BoxFuture<'_, anyhow::Result<RegisteredPlugin>> {
    Box::pin(async {
        let fixed = crate::services::voicemail::recover_interrupted(
            &host.storage,
            host.services.recording.dir(),
        )
        .await?;
        if fixed > 0 {
            tracing::info!(messages = fixed, "voicemail recovery pass done");
        }
        let waiting = crate::services::voicemail::SipMailboxes {
            storage: host.storage.clone(),
            sip: host.services.sip.clone(),
            recordings_dir: host.services.recording.dir().to_path_buf(),
            workers: host.services.workers.clone(),
            sip_config: host.config.sip.clone(),
            config: host.config.voicemail.clone(),
        }
        .start(host.shutdown.clone());
        let machine = Arc::new(
            crate::services::voicemail::AnsweringMachine::new(
                host.storage.clone(),
                host.services.sip.router.clone(),
                host.services.recording.clone(),
                host.services.workers.clone(),
                host.config.voicemail.clone(),
            )
            .with_waiting(waiting.clone()),
        );
        host.services
            .sip
            .router
            .set_unanswered_hook(Arc::new(machine));
        Ok(RegisteredPlugin::new(Voicemail::new(
            host.services.recording.clone(),
            host.storage.clone(),
            host.config.voicemail.clone(),
            waiting,
        )))
    })
}

fn error_event(error: &VoicemailError) -> Value {
    json!({ "voicemail": "event", "error_code": error.code, "error": error.message })
}

fn status(status: &str) -> Value {
    json!({ "voicemail": "event", "status": status })
}

/// The answer plan: audio only, received, Opus only.
fn plan() -> AnswerPlan {
    AnswerPlan {
        audio: Some(StreamPlan::new(Direction::RecvOnly, vec![Codec::Opus])),
        video: None,
    }
}

impl Voicemail {
    /// The plugin, as registered under `janus.plugin.voicemail`.
    pub fn new(
        recording: RecordingService,
        storage: Storage,
        config: VoicemailConfig,
        waiting: Arc<crate::services::voicemail::waiting::MessageWaiting>,
    ) -> Self {
        Self {
            descriptor: PluginDescriptor {
                package: "janus.plugin.voicemail",
                name: "Bifrons VoiceMail plugin",
                author: "Bifrons",
                description: "Records a browser's Opus audio as a voicemail message (Ogg/Opus)",
                version: 7,
                version_string: "0.0.7",
            },
            shared: Arc::new(Shared {
                recording,
                storage,
                config,
                guard: owner::Guard::default(),
                waiting,
            }),
        }
    }
}

impl Shared {
    /// `<folder>/janus-voicemail-<random>.opus`, as Janus names its files.
    fn new_file_name(&self) -> String {
        let id: u64 = rand::thread_rng().gen_range(1..(1u64 << 53));
        format!("{}/janus-voicemail-{id}.opus", self.config.folder)
    }

    async fn open(
        &self,
        mailbox: Option<&str>,
        caller: Option<&str>,
    ) -> Result<OpusRecorder, VoicemailError> {
        let owner = mailbox.unwrap_or(DEFAULT_OWNER);
        let name = self.new_file_name();
        let recorder = self
            .recording
            .start_opus(RecordingKind::Voicemail, owner, &name)
            .await
            .map_err(|e| {
                VoicemailError::new(ERROR_IO_ERROR, format!("Error creating file: {e}"))
            })?;
        if let Some(caller) = caller {
            let id = recorder.row().id;
            if let Err(e) = self
                .storage
                .recordings()
                .set_parties(id, Some(caller), None)
                .await
            {
                tracing::warn!(recording = %id, error = %e, "voicemail message without its caller id");
            }
        }
        Ok(recorder)
    }

    /// Closes the handle's message (if still open), pushes `done` (or the error) and ends the
    /// handle. `transaction`: the `stop` request's, when one asked.
    async fn finish(&self, state: &VoicemailState, ctx: &HandleCtx, transaction: Option<&str>) {
        let Some(recorder) = state.take().await else {
            return;
        };
        let name = recorder
            .row()
            .meta
            .file_path
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_owned();
        match recorder.finish().await {
            Ok(row) => {
                tracing::info!(
                    recording = %row.id,
                    file = %row.meta.file_path,
                    duration_ms = row.meta.duration_ms,
                    size = row.meta.size_bytes,
                    "voicemail message saved"
                );
                ctx.push_event(
                    transaction,
                    json!({
                        "voicemail": "event",
                        "status": "done",
                        "recording": format!("{}{name}", self.config.base_url),
                        "id": row.id.0,
                        "duration": row.meta.duration_ms,
                        "size": row.meta.size_bytes,
                    }),
                    None,
                );
            }
            Err(e) => {
                tracing::warn!(error = %e, "voicemail message not saved");
                let error = VoicemailError::new(ERROR_IO_ERROR, format!("Error closing file: {e}"));
                ctx.push_event(transaction, error_event(&error), None);
            }
        }
        ctx.end();
    }

    /// Waits for a limit (packet clock or size), the media going away, or the wall-clock
    /// backstop, then finishes the message.
    async fn watchdog(self: Arc<Self>, state: Arc<VoicemailState>, ctx: Arc<HandleCtx>) {
        let backstop = Duration::from_secs(u64::from(self.config.max_seconds)) + WALL_CLOCK_SLACK;
        tokio::select! {
            _ = state.wake.notified() => {}
            _ = tokio::time::sleep(backstop) => {
                tracing::info!("voicemail message closed by the wall-clock limit");
            }
        }
        self.finish(&state, &ctx, None).await;
    }

    async fn process(
        self: Arc<Self>,
        state: Arc<VoicemailState>,
        ctx: Arc<HandleCtx>,
        message: PluginMessage,
    ) {
        let transaction = message.transaction.as_str();
        let offer = message.jsep.as_ref().filter(|j| j.kind == JsepType::Offer);
        let request = match VoicemailRequest::parse(&message.body, offer.is_some()) {
            Ok(r) => r,
            Err(e) => {
                tracing::info!(code = e.code, error = %e.message, "voicemail request refused");
                return ctx.push_event(Some(transaction), error_event(&e), None);
            }
        };
        let result = match request {
            VoicemailRequest::Record { mailbox, caller } => {
                self.record(&state, &ctx, offer, mailbox.as_deref(), caller.as_deref())
                    .await
            }
            VoicemailRequest::Update => {
                if !state.started.load(Ordering::Relaxed) || !state.recording_now() {
                    Err(VoicemailError::new(
                        ERROR_INVALID_STATE,
                        "Invalid state (not recording)",
                    ))
                } else {
                    Self::negotiate(&ctx, offer)
                        .await
                        .map(|a| (status("updating"), Some(a)))
                }
            }
            VoicemailRequest::Stop => {
                if state.recording_now() {
                    return self.finish(&state, &ctx, Some(transaction)).await;
                }
                if state.playback.stop() {
                    Ok((status("stopping"), None))
                } else {
                    Err(VoicemailError::new(
                        ERROR_INVALID_STATE,
                        "Invalid state (not recording)",
                    ))
                }
            }
            VoicemailRequest::Start => {
                let answered = message.jsep.as_ref().map(|j| j.kind) == Some(JsepType::Answer);
                if answered {
                    state.playback.start(&ctx).map(|id| {
                        (
                            json!({"voicemail": "event", "status": "playing", "id": id}),
                            None,
                        )
                    })
                } else {
                    Err(VoicemailError::new(
                        requests::ERROR_MISSING_ELEMENT,
                        "Missing SDP answer",
                    ))
                }
            }
            VoicemailRequest::List(auth) => self.owner_list(&auth).await.map(|v| (v, None)),
            VoicemailRequest::Play(auth, id) => self.play(&state, &ctx, &auth, id).await,
            VoicemailRequest::Delete(auth, id) => match self.owned(&auth, id).await {
                Ok(m) => {
                    let done = owner::delete(&self.storage, self.recording.dir(), &m).await;
                    self.waiting.changed(&m.meta.owner).await;
                    done.map(|v| (v, None))
                }
                Err(e) => Err(e),
            },
            VoicemailRequest::Mark(auth, id, heard) => match self.owned(&auth, id).await {
                Ok(m) => {
                    let done = owner::mark(&self.storage, &m, heard).await;
                    self.waiting.changed(&m.meta.owner).await;
                    done.map(|v| (v, None))
                }
                Err(e) => Err(e),
            },
        };
        match result {
            Ok((data, jsep)) => ctx.push_event(Some(transaction), data, jsep),
            Err(e) => {
                tracing::info!(code = e.code, error = %e.message, "voicemail request failed");
                ctx.push_event(Some(transaction), error_event(&e), None);
            }
        }
    }

    async fn owner_list(&self, auth: &MailboxAuth) -> Result<Value, VoicemailError> {
        owner::authenticate(&self.storage, &self.guard, auth).await?;
        owner::list(&self.storage, &auth.mailbox, &self.config.base_url).await
    }

    /// Message `id` of the authenticated owner's mailbox.
    async fn owned(
        &self,
        auth: &MailboxAuth,
        id: i64,
    ) -> Result<crate::storage::Recording, VoicemailError> {
        owner::authenticate(&self.storage, &self.guard, auth).await?;
        owner::message(&self.storage, &auth.mailbox, id).await
    }

    /// `play`: the message's packets are read, and a gateway offer (audio send-only, Opus)
    /// goes back with status `preparing`.
    async fn play(
        &self,
        state: &VoicemailState,
        ctx: &HandleCtx,
        auth: &MailboxAuth,
        id: i64,
    ) -> Result<(Value, Option<crate::media::Jsep>), VoicemailError> {
        if state.started.load(Ordering::Relaxed) || state.playback.busy() {
            return Err(VoicemailError::new(
                ERROR_INVALID_STATE,
                "Invalid state (already recording or playing)",
            ));
        }
        let message = self.owned(auth, id).await?;
        let packets = owner::packets(self.recording.dir(), &message).await?;
        let plan = OfferPlan {
            audio: Some(StreamPlan::new(Direction::SendOnly, vec![Codec::Opus])),
            ..OfferPlan::default()
        };
        let offer = ctx.create_offer(&plan).await.map_err(|e| {
            VoicemailError::new(ERROR_UNKNOWN, format!("Error creating the offer: {e}"))
        })?;
        tracing::info!(
            recording = id,
            packets = packets.packets.len(),
            "voicemail message offered"
        );
        state.playback.offer(id, packets);
        Ok((
            json!({
                "voicemail": "event",
                "status": "preparing",
                "id": id,
                "duration": message.meta.duration_ms,
            }),
            Some(offer),
        ))
    }

    async fn negotiate(
        ctx: &HandleCtx,
        offer: Option<&crate::media::Jsep>,
    ) -> Result<crate::media::Jsep, VoicemailError> {
        let offer = offer.ok_or_else(|| VoicemailError::new(ERROR_UNKNOWN, "Missing SDP offer"))?;
        ctx.answer_offer(offer, &plan())
            .await
            .map(|(answer, _)| answer)
            .map_err(|e| VoicemailError::new(ERROR_UNKNOWN, format!("Error negotiating: {e}")))
    }

    async fn record(
        self: &Arc<Self>,
        state: &Arc<VoicemailState>,
        ctx: &Arc<HandleCtx>,
        offer: Option<&crate::media::Jsep>,
        mailbox: Option<&str>,
        caller: Option<&str>,
    ) -> Result<(Value, Option<crate::media::Jsep>), VoicemailError> {
        if state.started.swap(true, Ordering::AcqRel) {
            return Err(VoicemailError::new(
                ERROR_ALREADY_RECORDING,
                "Already recording",
            ));
        }
        let answer = match Self::negotiate(ctx, offer).await {
            Ok(a) => a,
            Err(e) => {
                state.started.store(false, Ordering::Release);
                return Err(e);
            }
        };
        let recorder = match self.open(mailbox, caller).await {
            Ok(r) => r,
            Err(e) => {
                state.started.store(false, Ordering::Release);
                return Err(e);
            }
        };
        tracing::info!(file = %recorder.row().meta.file_path, "voicemail recording");
        state.start(recorder).await;
        ctx.spawn(self.clone().watchdog(state.clone(), ctx.clone()));
        Ok((status("starting"), Some(answer)))
    }
}

#[async_trait::async_trait]
impl Plugin for Voicemail {
    type Handle = VoicemailState;

    fn descriptor(&self) -> &PluginDescriptor {
        &self.descriptor
    }

    fn create_handle(&self, _ctx: &HandleCtx) -> Result<VoicemailState, AttachError> {
        let c = &self.shared.config;
        Ok(VoicemailState::new(Limits::new(c.max_seconds, c.max_bytes)))
    }

    async fn handle_message(
        &self,
        state: &Arc<VoicemailState>,
        ctx: &Arc<HandleCtx>,
        message: PluginMessage,
    ) -> PluginResult {
        PluginResult::Async {
            hint: None,
            work: Box::pin(
                self.shared
                    .clone()
                    .process(state.clone(), ctx.clone(), message),
            ),
        }
    }

    fn setup_media(&self, state: &VoicemailState, ctx: &HandleCtx) {
        state.playback.media_up();
        if state.started.load(Ordering::Relaxed) {
            ctx.push_event(None, status("started"), None);
        }
    }

    fn incoming_rtp(
        &self,
        state: &VoicemailState,
        _ctx: &HandleCtx,
        stream: &StreamInfo,
        packet: RtpPacket,
    ) {
        state.on_rtp(stream, &packet);
    }

    fn hangup_media(&self, state: &VoicemailState, _ctx: &HandleCtx) {
        state.playback.media_gone();
        state.media_gone();
    }

    async fn destroy_handle(&self, state: &Arc<VoicemailState>, _ctx: &HandleCtx) {
        state.playback.stop();
        if let Some(open) = state.take().await {
            match open.finish().await {
                Ok(row) => {
                    tracing::info!(recording = %row.id, duration_ms = row.meta.duration_ms, "voicemail message saved at detach")
                }
                Err(e) => tracing::warn!(error = %e, "voicemail message not saved"),
            }
        }
    }

    fn query_handle(&self, state: &VoicemailState) -> Value {
        let limits = state.limits();
        json!({
            "started": state.started.load(Ordering::Relaxed),
            "recording": state.recording_now(),
            "bytes": state.bytes(),
            "max_ticks": limits.max_ticks,
            "max_bytes": limits.max_bytes,
        })
    }
}
