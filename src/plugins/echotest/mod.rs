//! `janus.plugin.echotest`: sends back to the browser its own audio, video and data.

mod media;
mod requests;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use serde_json::{json, Value};

use self::media::EchoState;
use self::requests::{EchoError, EchoRequest, ERROR_INVALID_SDP};
use super::{Gateway, Plugin, PluginDescriptor, PluginMessage, PluginResult};
use crate::media::{AnswerPlan, DataMessage, JsepType, MediaKind, RtcpFeedback, RtpPacket};

/// The echo test plugin.
#[derive(Default)]
pub struct EchoTest;

const PACKAGE: &str = "janus.plugin.echotest";

fn state(gateway: &Gateway) -> Option<&EchoState> {
    gateway.state::<EchoState>()
}

fn error_event(error: &EchoError) -> Value {
    json!({ "echotest": "event", "error_code": error.code, "error": error.message })
}

impl EchoTest {
    async fn process(gateway: Arc<Gateway>, message: PluginMessage) {
        let transaction = message.transaction.as_str();
        let request = match EchoRequest::parse(&message.body, message.jsep.is_some()) {
            Ok(r) => r,
            Err(e) => return gateway.push_event(Some(transaction), error_event(&e), None),
        };
        if let Some(s) = state(&gateway) {
            let set = |flag: &std::sync::atomic::AtomicBool, value: Option<bool>| {
                if let Some(v) = value {
                    flag.store(v, Ordering::Relaxed);
                }
            };
            set(&s.audio, request.audio);
            set(&s.video, request.video);
            set(&s.data, request.data);
            if let Some(bitrate) = request.bitrate {
                s.bitrate.store(bitrate, Ordering::Relaxed);
                if bitrate > 0 {
                    gateway.send_remb(bitrate);
                }
            }
        }
        let mut answer = None;
        if let Some(jsep) = message.jsep.as_ref().filter(|j| j.kind == JsepType::Offer) {
            match gateway
                .answer_offer(
                    jsep,
                    AnswerPlan {
                        send_audio: true,
                        send_video: true,
                    },
                )
                .await
            {
                Ok(a) => answer = Some(a),
                Err(e) => {
                    let error = EchoError {
                        code: ERROR_INVALID_SDP,
                        message: format!("Error negotiating: {e}"),
                    };
                    tracing::warn!(handle_id = %gateway.handle_id(), error = %e, "echotest negotiation failed");
                    return gateway.push_event(Some(transaction), error_event(&error), None);
                }
            }
        }
        gateway.push_event(
            Some(transaction),
            json!({ "echotest": "event", "result": "ok" }),
            answer.as_ref(),
        );
    }
}

#[async_trait::async_trait]
impl Plugin for EchoTest {
    fn package(&self) -> &'static str {
        PACKAGE
    }

    fn descriptor(&self) -> PluginDescriptor {
        PluginDescriptor {
            name: "Bifrons EchoTest plugin",
            author: "Bifrons",
            description: "Sends back to the browser its own audio, video and data",
            version: 1,
            version_string: "0.0.1",
        }
    }

    fn create_handle(&self, gateway: &Arc<Gateway>) -> Result<(), String> {
        gateway.set_state(EchoState::default());
        Ok(())
    }

    async fn handle_message(&self, gateway: Arc<Gateway>, message: PluginMessage) -> PluginResult {
        PluginResult::Async {
            hint: Some("I'm taking my time!".into()),
            work: Box::pin(Self::process(gateway, message)),
        }
    }

    fn setup_media(&self, gateway: &Arc<Gateway>) {
        if let Some(s) = state(gateway) {
            let cap = s.bitrate.load(Ordering::Relaxed);
            if cap > 0 {
                gateway.send_remb(cap);
            }
        }
    }

    fn incoming_rtp(&self, gateway: &Arc<Gateway>, kind: MediaKind, packet: RtpPacket) {
        if let Some(s) = state(gateway) {
            s.echo_rtp(gateway, kind, packet);
        }
    }

    fn incoming_rtcp(&self, gateway: &Arc<Gateway>, kind: MediaKind, feedback: RtcpFeedback) {
        if let Some(s) = state(gateway) {
            s.echo_rtcp(gateway, kind, feedback);
        }
    }

    fn incoming_data(&self, gateway: &Arc<Gateway>, label: &str, message: DataMessage) {
        if let Some(s) = state(gateway) {
            s.echo_data(gateway, label, message);
        }
    }

    fn hangup_media(&self, gateway: &Arc<Gateway>) {
        gateway.push_event(None, json!({ "echotest": "event", "result": "done" }), None);
    }

    fn query_handle(&self, gateway: &Arc<Gateway>) -> Value {
        match state(gateway) {
            Some(s) => json!({
                "audio_active": s.audio.load(Ordering::Relaxed),
                "video_active": s.video.load(Ordering::Relaxed),
                "data_active": s.data.load(Ordering::Relaxed),
                "bitrate": s.bitrate.load(Ordering::Relaxed),
            }),
            None => json!({}),
        }
    }
}
