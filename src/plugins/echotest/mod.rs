//! `janus.plugin.echotest`: sends back to the browser its own audio, video and data, and
//! records the browser's audio on request (`record`, `filename`), as Janus' EchoTest does.

mod media;
mod requests;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use futures::future::BoxFuture;
use serde_json::{json, Value};

use self::media::EchoState;
use self::requests::{EchoError, EchoRequest, ERROR_INVALID_SDP, ERROR_UNKNOWN};
use super::host::RegisteredPlugin;
use super::{
    AttachError, HandleCtx, Plugin, PluginDescriptor, PluginHost, PluginMessage, PluginResult,
};
use crate::media::{
    AnswerPlan, DataMessage, JsepType, MediaKind, RtcpFeedback, RtpPacket, StreamInfo,
};
use crate::services::recording::{OpusRecorder, RecordingService};
use crate::storage::RecordingKind;

/// Owner of echo-test recordings in the registry.
const RECORDING_OWNER: &str = "echotest";

/// The echo test plugin.
pub struct EchoTest {
    descriptor: PluginDescriptor,
    recording: RecordingService,
}

/// Starts the echo test with the host's recording service (for `record`).
pub fn factory(host: &PluginHost) -> BoxFuture<'_, anyhow::Result<RegisteredPlugin>> {
    Box::pin(async {
        Ok(RegisteredPlugin::new(EchoTest::new(
            host.services.recording.clone(),
        )))
    })
}

fn error_event(error: &EchoError) -> Value {
    json!({ "echotest": "event", "error_code": error.code, "error": error.message })
}

/// Closes a recording (its last page, its registry row), logging the outcome.
async fn finish(recording: OpusRecorder) {
    match recording.finish().await {
        Ok(row) => tracing::info!(
            file = %row.meta.file_path,
            duration_ms = row.meta.duration_ms,
            "echotest recording saved"
        ),
        Err(e) => tracing::warn!(error = %e, "echotest recording not saved"),
    }
}

/// Opens `echotest/<filename>.opus`, or with no filename one named after the handle and the
/// time (milliseconds since 1970).
async fn open_recording(
    recording: &RecordingService,
    ctx: &HandleCtx,
    filename: Option<&str>,
) -> Result<OpusRecorder, EchoError> {
    let name = match filename {
        Some(f) => format!("echotest/{f}.opus"),
        None => {
            let ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis());
            format!("echotest/{}-{ms}.opus", ctx.handle_id())
        }
    };
    recording
        .start_opus(RecordingKind::Echotest, RECORDING_OWNER, &name)
        .await
        .map_err(|e| EchoError {
            code: ERROR_UNKNOWN,
            message: format!("Error starting recorder: {e}"),
        })
}

impl EchoTest {
    /// The plugin, as registered under `janus.plugin.echotest`; recordings go to `recording`.
    pub fn new(recording: RecordingService) -> Self {
        Self {
            descriptor: PluginDescriptor {
                package: "janus.plugin.echotest",
                name: "Bifrons EchoTest plugin",
                author: "Bifrons",
                description: "Sends back to the browser its own audio, video and data",
                version: 1,
                version_string: "0.0.1",
            },
            recording,
        }
    }

    async fn process(
        recording: RecordingService,
        state: Arc<EchoState>,
        ctx: Arc<HandleCtx>,
        message: PluginMessage,
    ) {
        let transaction = message.transaction.as_str();
        let request = match EchoRequest::parse(&message.body, message.jsep.is_some()) {
            Ok(r) => r,
            Err(e) => return ctx.push_event(Some(transaction), error_event(&e), None),
        };
        let set = |flag: &AtomicBool, value: Option<bool>| {
            if let Some(v) = value {
                flag.store(v, Ordering::Relaxed);
            }
        };
        set(&state.audio, request.audio);
        set(&state.video, request.video);
        set(&state.data, request.data);
        if let Some(bitrate) = request.bitrate {
            state.bitrate.store(bitrate, Ordering::Relaxed);
            if bitrate > 0 {
                ctx.send_remb(bitrate);
            }
        }
        match request.record {
            Some(true) if !state.is_recording().await => {
                match open_recording(&recording, &ctx, request.filename.as_deref()).await {
                    Ok(opened) => {
                        tracing::info!(file = %opened.row().meta.file_path, "echotest recording");
                        if let Some(previous) = state.start_recording(opened).await {
                            finish(previous).await;
                        }
                    }
                    Err(e) => return ctx.push_event(Some(transaction), error_event(&e), None),
                }
            }
            Some(false) => {
                if let Some(open) = state.stop_recording().await {
                    finish(open).await;
                }
            }
            _ => {}
        }
        let mut answer = None;
        if let Some(jsep) = message.jsep.as_ref().filter(|j| j.kind == JsepType::Offer) {
            match ctx.answer_offer(jsep, &AnswerPlan::echo()).await {
                Ok((a, _)) => answer = Some(a),
                Err(e) => {
                    let error = EchoError {
                        code: ERROR_INVALID_SDP,
                        message: format!("Error negotiating: {e}"),
                    };
                    tracing::warn!(error = %e, "echotest negotiation failed");
                    return ctx.push_event(Some(transaction), error_event(&error), None);
                }
            }
        }
        ctx.push_event(
            Some(transaction),
            json!({ "echotest": "event", "result": "ok" }),
            answer,
        );
    }
}

#[async_trait::async_trait]
impl Plugin for EchoTest {
    type Handle = EchoState;

    fn descriptor(&self) -> &PluginDescriptor {
        &self.descriptor
    }

    fn create_handle(&self, _ctx: &HandleCtx) -> Result<EchoState, AttachError> {
        Ok(EchoState::default())
    }

    async fn handle_message(
        &self,
        state: &Arc<EchoState>,
        ctx: &Arc<HandleCtx>,
        message: PluginMessage,
    ) -> PluginResult {
        PluginResult::Async {
            hint: Some("I'm taking my time!".into()),
            work: Box::pin(Self::process(
                self.recording.clone(),
                state.clone(),
                ctx.clone(),
                message,
            )),
        }
    }

    fn setup_media(&self, state: &EchoState, ctx: &HandleCtx) {
        let cap = state.bitrate.load(Ordering::Relaxed);
        if cap > 0 {
            ctx.send_remb(cap);
        }
    }

    fn incoming_rtp(
        &self,
        state: &EchoState,
        ctx: &HandleCtx,
        stream: &StreamInfo,
        packet: RtpPacket,
    ) {
        state.on_rtp(ctx, stream, packet);
    }

    fn incoming_rtcp(
        &self,
        state: &EchoState,
        ctx: &HandleCtx,
        kind: MediaKind,
        feedback: RtcpFeedback,
    ) {
        state.echo_rtcp(ctx, kind, feedback);
    }

    fn incoming_data(&self, state: &EchoState, ctx: &HandleCtx, label: &str, message: DataMessage) {
        state.echo_data(ctx, label, message);
    }

    fn hangup_media(&self, state: &EchoState, ctx: &HandleCtx) {
        // Like Janus, a hangup closes the recording; closing writes to disk, so on a task.
        if let Some(open) = state.take_recording_now() {
            tokio::spawn(finish(open));
        }
        ctx.push_event(None, json!({ "echotest": "event", "result": "done" }), None);
    }

    async fn destroy_handle(&self, state: &Arc<EchoState>, _ctx: &HandleCtx) {
        if let Some(open) = state.stop_recording().await {
            finish(open).await;
        }
    }

    /// As Janus' echo test does (its `handle_admin_message` is a proof of concept with nothing
    /// to configure): the request comes back as the response.
    async fn handle_admin_message(&self, request: Value) -> Option<Value> {
        Some(request)
    }

    fn query_handle(&self, state: &EchoState) -> Value {
        json!({
            "audio_active": state.audio.load(Ordering::Relaxed),
            "video_active": state.video.load(Ordering::Relaxed),
            "data_active": state.data.load(Ordering::Relaxed),
            "bitrate": state.bitrate.load(Ordering::Relaxed),
            "recording": state.recorder_open(),
        })
    }
}
