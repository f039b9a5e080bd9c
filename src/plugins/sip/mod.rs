//! `janus.plugin.sip`: browsers calling SIP phones and PBXs, and answering their calls.
//!
//! The Janus face of SIP (Janus' `plugins/janus_sip.c` API): `register` (`guest`, digest
//! credentials, or a registry `account`), `unregister`, `call`, `accept`, `decline`, `hangup`,
//! `hold`/`unhold`, `dtmf_info`, `message`, `info`, `transfer`, `update`, `recording`, with
//! Janus' event names and its 440–455 error codes. Every request is asynchronous: `ack`, then
//! an event carrying the request's transaction.
//!
//! Two legs, negotiated apart: the browser's WebRTC leg (Opus, the gateway's own ICE/DTLS) and
//! the SIP leg (the gateway's RTP endpoint and SDP towards the PBX). Janus relays one SDP
//! between the two ends; here neither end ever sees the other's description. Hence:
//!
//! - PBX re-INVITEs (hold, resume, a new address or codec) are always answered by the gateway,
//!   and the bridge follows the new description. `autoaccept_reinvites: false` (on `call` or
//!   `accept`) keeps Janus' `updatingcall` flow for the browser's own leg: after answering the
//!   PBX, the gateway offers the browser a renegotiation (`updatingcall` + offer) that the
//!   browser answers with `update` (`updated`). The PBX is not kept waiting for the browser:
//!   its offer has nothing the browser could answer, and an open re-INVITE transaction would
//!   only risk glare (491) and timer expiry.
//! - `update` with an offer renegotiates the browser's leg (an ICE restart, typically) and, as
//!   Janus does, re-INVITEs the PBX with the unchanged SIP-leg description (a session refresh);
//!   the answer goes back with `accepted` once the PBX replied, whatever it replied.
//! - `transfer` is blind only (REFER to the peer, whose NOTIFY progress becomes `notify`
//!   events); attended transfer (`replace`) would need another handle's dialog and is refused.
//!
//! - [`requests`]: the typed requests and their refusals.
//! - [`events`]: the event JSON.
//! - [`handle`]: per-handle state (registration, call, media bridge).
//! - `register` (guest and digest, a user agent per handle), `account` (registry accounts on
//!   the SIP service's shared lines, and the registry watcher), `call` (outgoing calls and
//!   in-call requests), `dialog` (`message`, `info`, `transfer`, `update`), `incoming`
//!   (ringing, `accept`, `decline`), `recording`: the flows.
//! - [`media`]: the bridge between the browser's Opus and the PBX's RTP (passthrough when the
//!   PBX answers Opus), and `leg`, the transcoding job on `services::workers` for G.711.

mod account;
mod call;
mod dialog;
pub mod events;
pub mod handle;
mod incoming;
mod leg;
mod listen_lines;
pub mod media;
mod recording;
mod register;
pub mod requests;

use std::sync::Arc;

use futures::future::BoxFuture;
use serde_json::Value;

use self::handle::SipHandle;
use self::requests::{SipError, SipRequest};
use super::host::RegisteredPlugin;
use super::{
    AttachError, HandleCtx, Plugin, PluginDescriptor, PluginHost, PluginMessage, PluginResult,
};
use crate::config::SipConfig;
use crate::media::{Jsep, RtpPacket, StreamInfo};
use crate::services::sip::SipService;
use crate::services::workers::WorkerPool;
use crate::storage::Storage;

/// What every handle of the plugin shares.
pub(crate) struct Shared {
    /// The `[sip]` section.
    pub config: SipConfig,
    /// Codec threads for transcoding legs.
    pub workers: Arc<WorkerPool>,
    /// The registry (accounts, trunks).
    pub storage: Storage,
    /// The SIP service (account lines, inbound routing).
    pub service: Arc<SipService>,
    /// Call recordings (Ogg/Opus files with their registry rows).
    pub recording: crate::services::recording::RecordingService,
}

/// The SIP plugin.
pub struct SipPlugin {
    descriptor: PluginDescriptor,
    shared: Arc<Shared>,
}

/// Starts the SIP plugin with the host's `[sip]` section, workers, registry and SIP service.
pub fn factory(host: &PluginHost) -> BoxFuture<'_, anyhow::Result<RegisteredPlugin>> {
    Box::pin(async {
        let shared = Arc::new(Shared {
            config: host.config.sip.clone(),
            workers: host.services.workers.clone(),
            storage: host.storage.clone(),
            service: host.services.sip.clone(),
            recording: host.services.recording.clone(),
        });
        if shared.config.registry_poll > 0 {
            tokio::spawn(account::watch_registry(
                shared.clone(),
                std::time::Duration::from_secs(shared.config.registry_poll),
                host.shutdown.clone(),
            ));
        }
        shared.service.trunks.start(
            host.storage.clone(),
            host.services.status.clone(),
            shared.config.clone(),
            shared.service.router.clone(),
            host.shutdown.clone(),
        );
        tokio::spawn(listen_lines::keep_listen_lines(
            shared.clone(),
            crate::services::sip::listen::ListenMedia {
                hub: host.services.streams.clone(),
                workers: host.services.workers.clone(),
                rtp_ip: shared.config.local_ip,
                rtp_ports: shared.config.rtp_port_min..=shared.config.rtp_port_max,
            },
            (shared.config.registry_poll > 0)
                .then(|| std::time::Duration::from_secs(shared.config.registry_poll)),
            host.shutdown.clone(),
        ));
        Ok(RegisteredPlugin::new(SipPlugin {
            descriptor: PluginDescriptor {
                package: "janus.plugin.sip",
                name: "Bifrons SIP plugin",
                author: "Bifrons",
                description:
                    "Calls between browsers and SIP phones or PBXs, with Opus/G.711 bridging",
                version: 1,
                version_string: "0.0.1",
            },
            shared,
        }))
    })
}

/// One request's or task's view: the plugin's shared state, the handle's state, its context.
#[derive(Clone)]
pub(crate) struct Op {
    shared: Arc<Shared>,
    handle: Arc<SipHandle>,
    ctx: Arc<HandleCtx>,
}

impl Op {
    /// Pushes an event.
    fn event(&self, transaction: Option<&str>, data: Value, jsep: Option<Jsep>) {
        self.ctx.push_event(transaction, data, jsep);
    }

    /// Reports a refused request: a log line and the error event.
    fn fail(&self, transaction: Option<&str>, error: SipError, call_id: Option<&str>) {
        tracing::warn!(code = error.code, error = %error.message, "sip request refused");
        self.event(transaction, events::error(&error, call_id), None);
    }

    async fn run(self, message: PluginMessage) {
        let tx = Some(message.transaction.as_str());
        let request = match SipRequest::parse(&message.body) {
            Ok(r) => r,
            Err(e) => return self.fail(tx, e, None),
        };
        let jsep = message.jsep;
        let outcome = match request {
            SipRequest::Register(r) => register::register(&self, r, tx).await,
            SipRequest::Unregister => register::unregister(&self, tx).await,
            SipRequest::Call(c) => call::call(&self, c, jsep, tx).await,
            SipRequest::Accept {
                autoaccept_reinvites,
                srtp,
            } => incoming::accept(&self, jsep, autoaccept_reinvites, srtp, tx).await,
            SipRequest::Decline { code } => incoming::decline(&self, code, tx).await,
            SipRequest::Hangup => call::hangup(&self, tx).await,
            SipRequest::Hold(_) => call::hold(&self, true, tx).await,
            SipRequest::Unhold => call::hold(&self, false, tx).await,
            SipRequest::Recording {
                start,
                audio,
                peer_audio,
            } => recording::recording(&self, start, audio, peer_audio, tx).await,
            SipRequest::Message(m) => dialog::message(&self, m, tx).await,
            SipRequest::Info {
                content_type,
                content,
                headers,
            } => dialog::info(&self, content_type, content, headers, tx).await,
            SipRequest::Transfer { uri } => dialog::transfer(&self, uri, tx).await,
            SipRequest::Update => dialog::update(&self, jsep, tx).await,
            SipRequest::DtmfInfo { digit, duration_ms } => {
                call::dtmf_info(&self, digit, duration_ms, tx).await
            }
        };
        if let Err(e) = outcome {
            let call_id = self.current_call_id().await;
            self.fail(tx, e, call_id.as_deref());
        }
    }

    async fn current_call_id(&self) -> Option<String> {
        self.handle
            .state
            .lock()
            .await
            .call
            .as_ref()
            .map(|c| c.id.clone())
    }
}

#[async_trait::async_trait]
impl Plugin for SipPlugin {
    type Handle = SipHandle;

    fn descriptor(&self) -> &PluginDescriptor {
        &self.descriptor
    }

    fn create_handle(&self, _ctx: &HandleCtx) -> Result<SipHandle, AttachError> {
        Ok(SipHandle::new())
    }

    async fn handle_message(
        &self,
        handle: &Arc<SipHandle>,
        ctx: &Arc<HandleCtx>,
        message: PluginMessage,
    ) -> PluginResult {
        let op = Op {
            shared: self.shared.clone(),
            handle: handle.clone(),
            ctx: ctx.clone(),
        };
        PluginResult::Async {
            hint: None,
            work: Box::pin(op.run(message)),
        }
    }

    fn incoming_rtp(
        &self,
        handle: &SipHandle,
        _ctx: &HandleCtx,
        stream: &StreamInfo,
        packet: RtpPacket,
    ) {
        if stream.kind != crate::media::MediaKind::Audio {
            return;
        }
        if let Some(bridge) = handle.bridge() {
            if let Some(sink) = &*handle
                .user_recorder
                .read()
                .unwrap_or_else(|e| e.into_inner())
            {
                if packet.payload_type == bridge.browser_opus_pt() {
                    sink.push(packet.payload.clone(), packet.timestamp);
                }
            }
            bridge.from_browser(packet);
        }
    }

    fn hangup_media(&self, handle: &SipHandle, _ctx: &HandleCtx) {
        // Like Janus: the browser's PeerConnection going away ends the SIP call.
        handle.set_bridge(None);
        let live = handle
            .live_call
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some(sip) = live {
            tracing::info!(call_id = %sip.id(), "PeerConnection closed: hanging up the SIP call");
            tokio::spawn(async move {
                let _ = sip.hangup().await;
            });
        }
    }

    async fn destroy_handle(&self, handle: &Arc<SipHandle>, _ctx: &HandleCtx) {
        recording::stop(handle).await;
        handle.set_bridge(None);
        let mut state = handle.state.lock().await;
        if let Some(call) = state.call.take() {
            call.stop.cancel();
            if let Some(ringing) = &call.ringing {
                if ringing.state() == crate::services::sip::RingState::Ringing {
                    ringing.decline(486).await;
                } else {
                    let _ = call.call.hangup().await;
                }
            } else {
                let _ = call.call.hangup().await;
            }
        }
        let registration = std::mem::replace(&mut state.registration, handle::Registration::None);
        drop(state);
        register::release(registration).await;
    }

    fn query_handle(&self, handle: &SipHandle) -> Value {
        handle.info()
    }
}
