//! `janus.plugin.audiobridge`: audio rooms mixed on the server, compatible with Janus'
//! AudioBridge so that janus.js' audiobridge demo and janode's audiobridge plugin work
//! unchanged.
//!
//! - [`manage`]: the synchronous requests (`create`, `edit`, `destroy`, `exists`, `list`,
//!   `listparticipants`, `allowed`, `kick`, `kick_all`, `mute`/`unmute`,
//!   `mute_room`/`unmute_room`, `rtp_forward`, `stop_rtp_forward`, `listforwarders`).
//! - [`participant`]: the asynchronous ones (`join`, `configure`, `changeroom`, `leave`,
//!   `hangup`) and the JSEP offer/answer of a participant.
//! - [`sip`]: SIP participants, dialled out (`dial`) or dialling in on a room's extension.
//! - [`room`]: a room's settings, participants and notifications; the mix itself runs in
//!   [`crate::services::rooms`] on the worker threads.
//!
//! Errors are Janus' 480–499 with Janus' wording ([`errors`]). Room secrets and PINs are kept
//! as argon2 hashes only.

mod announcements;
pub mod errors;
pub mod fields;
pub mod forwarders;
mod manage;
mod participant;
mod permanent;
pub mod plain_rtp;
mod restream;
pub mod room;
pub mod sip;
pub mod stereo;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use futures::future::BoxFuture;
use serde_json::Value;

use self::errors::{AbError, INVALID_ELEMENT, MISSING_ELEMENT};
use self::fields::{Id, IdMode};
use self::room::{Participant, Room};
use super::host::RegisteredPlugin;
use super::{
    AttachError, HandleCtx, Plugin, PluginDescriptor, PluginHost, PluginMessage, PluginResult,
};
use crate::media::{MediaKind, MediaSender, RtpPacket, StreamInfo};
use crate::services::recording::RecordingService;
use crate::services::rooms::{AudioPacket, ParticipantInput};
use crate::services::sinks::ContinuousAudio;
use crate::services::workers::WorkerPool;

/// What every request handler shares: the rooms, the workers their mixes run on, the id mode.
pub struct Bridge {
    rooms: Mutex<BTreeMap<Id, Arc<Room>>>,
    workers: Arc<WorkerPool>,
    recording: RecordingService,
    ids: IdMode,
    /// Where permanent rooms are stored; `None`: `permanent` is refused as by a Janus
    /// without configuration file.
    storage: Option<crate::storage::Storage>,
    /// What SIP participants need; `None` without a registry (tests of the bridge alone).
    sip: Option<sip::SipDeps>,
    /// Where a room's mountpoint is opened (the streaming plugin, when loaded).
    room_mountpoints: Arc<crate::services::rooms::restream::RoomMountpoints>,
}

impl Bridge {
    fn rooms(&self) -> MutexGuard<'_, BTreeMap<Id, Arc<Room>>> {
        self.rooms.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The room `id`, or 485 `No such room (<id>)`.
    fn room(&self, id: &Id) -> Result<Arc<Room>, AbError> {
        self.rooms()
            .get(id)
            .cloned()
            .ok_or_else(|| AbError::new(errors::NO_SUCH_ROOM, format!("No such room ({id})")))
    }
}

/// The room a handle is in, and its participant there.
#[derive(Clone)]
pub struct Joined {
    /// The room.
    pub room: Arc<Room>,
    /// The handle's participant in it.
    pub participant: Arc<Participant>,
}

/// Per-handle state.
#[derive(Default)]
pub struct AbSession {
    joined: Mutex<Option<Joined>>,
    /// Read on every packet: this handle's own lock, never shared with another handle.
    input: RwLock<Option<ParticipantInput>>,
    /// The outgoing stream of this handle's PeerConnection, kept continuous when the
    /// participant moves to another room (`changeroom`).
    out: Mutex<Option<Arc<ContinuousAudio<MediaSender>>>>,
}

impl AbSession {
    /// The room the handle is in, if it still is (not kicked, room not destroyed).
    pub fn joined(&self) -> Option<Joined> {
        let mut slot = self.joined.lock().unwrap_or_else(|e| e.into_inner());
        let still = slot.as_ref().is_some_and(|j| {
            !j.room.destroyed.load(std::sync::atomic::Ordering::Acquire)
                && j.room
                    .participants()
                    .get(&j.participant.id)
                    .is_some_and(|p| Arc::ptr_eq(p, &j.participant))
        });
        if !still && slot.is_some() {
            *slot = None;
            *self.input.write().unwrap_or_else(|e| e.into_inner()) = None;
        }
        slot.clone()
    }

    /// The continuous outgoing stream towards `sender`'s PeerConnection: the same one for as
    /// long as that PeerConnection lives, a new one after it was replaced.
    fn out_stream(
        &self,
        sender: MediaSender,
        clock_rate: u32,
    ) -> Arc<ContinuousAudio<MediaSender>> {
        let mut slot = self.out.lock().unwrap_or_else(|e| e.into_inner());
        match slot.as_ref() {
            Some(out) if out.inner().same_peer(&sender) => out.clone(),
            _ => slot
                .insert(Arc::new(ContinuousAudio::new(sender, clock_rate)))
                .clone(),
        }
    }

    fn set_joined(&self, joined: Option<Joined>) {
        *self.input.write().unwrap_or_else(|e| e.into_inner()) =
            joined.as_ref().map(|j| j.participant.input.clone());
        *self.joined.lock().unwrap_or_else(|e| e.into_inner()) = joined;
    }
}

/// The audio bridge plugin.
pub struct AudioBridge {
    descriptor: PluginDescriptor,
    bridge: Arc<Bridge>,
}

/// Starts the audio bridge on the host's worker pool.
pub fn factory(host: &PluginHost) -> BoxFuture<'_, anyhow::Result<RegisteredPlugin>> {
    Box::pin(async {
        let plugin = AudioBridge::new(
            host.services.workers.clone(),
            host.services.recording.clone(),
            IdMode {
                string_ids: host.config.audiobridge.string_ids,
            },
            Some(host.storage.clone()),
            Some(sip::SipDeps {
                service: host.services.sip.clone(),
                storage: host.storage.clone(),
                config: host.config.sip.clone(),
            }),
            host.services.room_mountpoints.clone(),
        );
        let restored = permanent::restore(&plugin.bridge).await;
        tracing::info!(restored, "audiobridge permanent rooms");
        Ok(RegisteredPlugin::new(plugin))
    })
}

impl AudioBridge {
    /// The plugin, mixing on `workers`, recording through `recording`, with numeric or
    /// string ids, storing permanent rooms in `storage`, calling SIP participants through
    /// `sip`, restreaming rooms through `room_mountpoints`.
    pub fn new(
        workers: Arc<WorkerPool>,
        recording: RecordingService,
        ids: IdMode,
        storage: Option<crate::storage::Storage>,
        sip: Option<sip::SipDeps>,
        room_mountpoints: Arc<crate::services::rooms::restream::RoomMountpoints>,
    ) -> Self {
        Self {
            descriptor: PluginDescriptor {
                package: "janus.plugin.audiobridge",
                name: "Bifrons AudioBridge plugin",
                author: "Bifrons",
                description: "Audio rooms mixed on the server, each participant hearing the others",
                version: 1,
                version_string: "0.0.1",
            },
            bridge: Arc::new(Bridge {
                rooms: Mutex::new(BTreeMap::new()),
                workers,
                recording,
                ids,
                storage,
                sip,
                room_mountpoints,
            }),
        }
    }
}

/// The `request` of a body, lower-cased (Janus matches it case-insensitively).
fn request_name(body: &serde_json::Map<String, Value>) -> Result<String, AbError> {
    match body.get("request") {
        None => Err(AbError::new(
            MISSING_ELEMENT,
            "Missing mandatory element (request)",
        )),
        Some(Value::String(s)) => Ok(s.to_ascii_lowercase()),
        Some(_) => Err(AbError::new(
            INVALID_ELEMENT,
            "Invalid element type (request should be a string)",
        )),
    }
}

#[async_trait::async_trait]
impl Plugin for AudioBridge {
    type Handle = AbSession;

    fn descriptor(&self) -> &PluginDescriptor {
        &self.descriptor
    }

    fn create_handle(&self, _ctx: &HandleCtx) -> Result<AbSession, AttachError> {
        Ok(AbSession::default())
    }

    async fn handle_message(
        &self,
        session: &Arc<AbSession>,
        ctx: &Arc<HandleCtx>,
        message: PluginMessage,
    ) -> PluginResult {
        let Some(body) = message.body.as_object().cloned() else {
            let e = AbError::new(errors::INVALID_JSON, "JSON error: not an object");
            return PluginResult::Ok(e.to_event());
        };
        let request = match request_name(&body) {
            Ok(r) => r,
            Err(e) => return PluginResult::Ok(e.to_event()),
        };
        match request.as_str() {
            "join" | "configure" | "changeroom" | "leave" | "hangup" => PluginResult::Async {
                hint: None,
                work: Box::pin(participant::process(
                    self.bridge.clone(),
                    session.clone(),
                    ctx.clone(),
                    request,
                    body,
                    message,
                )),
            },
            "dial" => PluginResult::Ok(
                sip::dial(&self.bridge, Some(ctx.weak()), &body)
                    .await
                    .unwrap_or_else(|e| {
                        tracing::info!(code = e.code, error = %e.message, "audiobridge dial refused");
                        e.to_event()
                    }),
            ),
            _ => {
                let reply = manage::process(&self.bridge, Some(session), &request, &body).await;
                if let Err(e) = &reply {
                    tracing::info!(request = %request, code = e.code, error = %e.message, "audiobridge request refused");
                }
                PluginResult::Ok(reply.unwrap_or_else(|e| e.to_event()))
            }
        }
    }

    fn setup_media(&self, session: &AbSession, ctx: &HandleCtx) {
        participant::media_up(session, ctx);
    }

    fn incoming_rtp(
        &self,
        session: &AbSession,
        _ctx: &HandleCtx,
        stream: &StreamInfo,
        packet: RtpPacket,
    ) {
        if stream.kind != MediaKind::Audio || packet.payload_type != stream.pt.0 {
            return;
        }
        if let Some(input) = &*session.input.read().unwrap_or_else(|e| e.into_inner()) {
            input.push(AudioPacket {
                seq: packet.sequence_number,
                timestamp: packet.timestamp,
                payload: packet.payload,
                level: stream.audio_level.map(|l| l.level),
            });
        }
    }

    fn hangup_media(&self, session: &AbSession, _ctx: &HandleCtx) {
        participant::leave_room(session);
    }

    async fn destroy_handle(&self, session: &Arc<AbSession>, _ctx: &HandleCtx) {
        participant::leave_room(session);
    }

    async fn handle_admin_message(&self, request: Value) -> Option<Value> {
        let Some(body) = request.as_object() else {
            return Some(
                AbError::new(errors::INVALID_JSON, "JSON error: not an object").to_event(),
            );
        };
        let name = match request_name(body) {
            Ok(n) => n,
            Err(e) => return Some(e.to_event()),
        };
        let reply = match name.as_str() {
            "dial" => sip::dial(&self.bridge, None, body).await,
            _ => manage::process(&self.bridge, None, &name, body).await,
        };
        Some(reply.unwrap_or_else(|e| e.to_event()))
    }

    fn query_handle(&self, session: &AbSession) -> Value {
        match session.joined() {
            Some(j) => serde_json::json!({
                "room": j.room.id.to_json(),
                "id": j.participant.id.to_json(),
                "codec": j.participant.codec.name(),
                "muted": j.participant.state().muted,
                "talking": j.participant.talking.load(std::sync::atomic::Ordering::Relaxed),
                "queue_drops": j.participant.input.dropped(),
            }),
            None => serde_json::json!({}),
        }
    }

    async fn shutdown(&self) {
        let rooms: Vec<Arc<Room>> = std::mem::take(&mut *self.bridge.rooms())
            .into_values()
            .collect();
        for room in rooms {
            manage::stop_recording(&room).await;
            room.mix.stop();
        }
    }
}
