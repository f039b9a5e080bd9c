//! `janus.plugin.echotest`: sends back to the browser its own audio, video and data.

mod media;
mod requests;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use futures::future::BoxFuture;
use serde_json::{json, Value};

use self::media::EchoState;
use self::requests::{EchoError, EchoRequest, ERROR_INVALID_SDP};
use super::host::RegisteredPlugin;
use super::{
    AttachError, HandleCtx, Plugin, PluginDescriptor, PluginHost, PluginMessage, PluginResult,
};
use crate::media::{
    AnswerPlan, DataMessage, JsepType, MediaKind, RtcpFeedback, RtpPacket, StreamInfo,
};

/// The echo test plugin.
pub struct EchoTest {
    descriptor: PluginDescriptor,
}

/// Starts the echo test (it needs nothing from the host yet).
pub fn factory(_host: &PluginHost) -> BoxFuture<'_, anyhow::Result<RegisteredPlugin>> {
    Box::pin(async { Ok(RegisteredPlugin::new(EchoTest::new())) })
}

impl Default for EchoTest {
    fn default() -> Self {
        Self::new()
    }
}

fn error_event(error: &EchoError) -> Value {
    json!({ "echotest": "event", "error_code": error.code, "error": error.message })
}

impl EchoTest {
    /// The plugin, as registered under `janus.plugin.echotest`.
    pub fn new() -> Self {
        Self {
            descriptor: PluginDescriptor {
                package: "janus.plugin.echotest",
                name: "Bifrons EchoTest plugin",
                author: "Bifrons",
                description: "Sends back to the browser its own audio, video and data",
                version: 1,
                version_string: "0.0.1",
            },
        }
    }

    async fn process(state: Arc<EchoState>, ctx: Arc<HandleCtx>, message: PluginMessage) {
        let transaction = message.transaction.as_str();
        let request = match EchoRequest::parse(&message.body, message.jsep.is_some()) {
            Ok(r) => r,
            Err(e) => return ctx.push_event(Some(transaction), error_event(&e), None),
        };
        let set = |flag: &std::sync::atomic::AtomicBool, value: Option<bool>| {
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
            work: Box::pin(Self::process(state.clone(), ctx.clone(), message)),
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
        state.echo_rtp(ctx, stream.kind, packet);
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

    fn hangup_media(&self, _state: &EchoState, ctx: &HandleCtx) {
        ctx.push_event(None, json!({ "echotest": "event", "result": "done" }), None);
    }

    fn query_handle(&self, state: &EchoState) -> Value {
        json!({
            "audio_active": state.audio.load(Ordering::Relaxed),
            "video_active": state.video.load(Ordering::Relaxed),
            "data_active": state.data.load(Ordering::Relaxed),
            "bitrate": state.bitrate.load(Ordering::Relaxed),
        })
    }
}
