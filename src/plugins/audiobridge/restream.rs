//! A room's mix as an audio-only mountpoint of the streaming plugin (a Bifrons extension;
//! Janus' AudioBridge has none):
//!
//! - `{"request":"create",…,"mountpoint":true[,"mountpoint_id":N]}` creates the room with it;
//! - `{"request":"mountpoint","room":R[,"secret"],"enable":true|false[,"mountpoint_id":N]}`
//!   adds it to (or removes it from) an existing room, answering
//!   `{"audiobridge":"success","room":R,"mountpoint":N}` (`null` once removed); with
//!   `"permanent":true` a permanent room keeps the change across restarts.
//!
//! The mountpoint id is `mountpoint_id` when given, else the room's id when it is numeric and
//! free, else a random one; `list` shows it as `mountpoint`. The room's whole mix is encoded
//! once in Opus for it (a forwarder of the mix); viewers watch it through
//! `janus.plugin.streaming`, `egress_start` restreams it as AAC. It goes away with the room.
//!
//! Errors: 490 `mountpoint_id` taken, 489 wrong secret, 485 no such room, 499 no streaming
//! plugin or the mixer refused the forwarder.

use std::sync::Arc;

use serde_json::{json, Map, Value};

use super::errors::{AbError, AbResult, ID_EXISTS, UNKNOWN_ERROR};
use super::fields::{bool_of, u64_of, validate, Id, Kind};
use super::manage::check_room_secret;
use super::room::Room;
use super::{permanent, Bridge};
use crate::services::rooms::restream::{RestreamError, RoomMountpointRequest};
use crate::services::rooms::{MixCodec, OutSink};

/// Forwarder id of the mountpoint's feed inside the mix (above the 32-bit ids of
/// `rtp_forward` and recordings, so never taken by them).
const FEED_FORWARD: u64 = u64::MAX;

/// Payload type the mountpoint's Opus carries (viewers' sinks set their own).
const OPUS_PT: u8 = 111;

/// Opens the room's mountpoint (`wanted` id, else see the module doc); returns its id. A room
/// that has one keeps it.
///
/// Errors: 490 `wanted` taken, 499 no streaming plugin or the mixer refused.
pub fn open(bridge: &Bridge, room: &Room, wanted: Option<u64>) -> AbResult<u64> {
    let mut slot = room.mountpoint.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(id) = *slot {
        return Ok(id);
    }
    let mut request = RoomMountpointRequest {
        id: wanted,
        name: format!("audiobridge-{}", room.id),
        description: room.settings().description.clone(),
    };
    let room_id = match &room.id {
        Id::Num(n) => Some(*n),
        Id::Str(_) => None,
    };
    if wanted.is_none() {
        request.id = room_id;
    }
    let opened = match bridge.room_mountpoints.open(&request) {
        Err(RestreamError::IdTaken(_)) if wanted.is_none() => {
            request.id = None;
            bridge.room_mountpoints.open(&request)
        }
        other => other,
    };
    let mp = opened.map_err(|e| {
        let code = match e {
            RestreamError::IdTaken(_) => ID_EXISTS,
            _ => UNKNOWN_ERROR,
        };
        AbError::new(code, format!("Can't restream the room: {e}"))
    })?;
    if let Err(e) = room.mix.add_forward(
        FEED_FORWARD,
        MixCodec::Opus,
        OutSink::random(mp.sink, OPUS_PT),
    ) {
        bridge.room_mountpoints.close(mp.id);
        return Err(AbError::new(UNKNOWN_ERROR, e.to_string()));
    }
    *slot = Some(mp.id);
    tracing::info!(room = %room.id, mountpoint = mp.id, "audiobridge room restreamed");
    Ok(mp.id)
}

/// Closes the room's mountpoint, if it has one.
pub fn close(bridge: &Bridge, room: &Room) {
    let id = room
        .mountpoint
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take();
    if let Some(id) = id {
        let _ = room.mix.remove_forward(FEED_FORWARD);
        bridge.room_mountpoints.close(id);
    }
}

/// The `mountpoint` request (see the module doc).
pub async fn request(bridge: &Arc<Bridge>, body: &Map<String, Value>) -> AbResult<Value> {
    validate(
        body,
        &[
            ("secret", Kind::Str, false),
            ("enable", Kind::Bool, true),
            ("mountpoint_id", Kind::UInt, false),
            ("permanent", Kind::Bool, false),
        ],
    )?;
    let room_id = bridge.ids.require(body, "room")?;
    let room = bridge.room(&room_id)?;
    check_room_secret(&room, body).await?;
    let persist = bool_of(body, "permanent") == Some(true);
    let storage = if persist {
        Some(permanent::storage(bridge, "edit")?)
    } else {
        None
    };
    let id = if bool_of(body, "enable") == Some(true) {
        Some(open(bridge, &room, u64_of(body, "mountpoint_id"))?)
    } else {
        close(bridge, &room);
        None
    };
    if let Some(storage) = storage {
        permanent::save(storage, &room).await?;
    }
    Ok(
        json!({"audiobridge": "success", "room": room_id.to_json(), "mountpoint": id, "permanent": persist}),
    )
}
