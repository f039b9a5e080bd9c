//! The synchronous requests: rooms (`create`, `edit`, `destroy`, `exists`, `list`,
//! `listparticipants`, `allowed`), moderation (`kick`, `kick_all`, `mute`, `unmute`,
//! `mute_room`, `unmute_room`) and forwarders (`rtp_forward`, `stop_rtp_forward`,
//! `listforwarders`). Checks run in Janus' order, so a bad request gets Janus' code.

use std::collections::BTreeSet;
use std::net::ToSocketAddrs;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use bifrons_transcoding::mixer::VadConfig;
use serde_json::{json, Map, Value};

use super::errors::*;
use super::fields::{bool_of, str_of, u64_of, validate, Field, Id, Kind};
use super::forwarders::{ForwarderInfo, UdpRtpSink};
use super::room::{Room, RoomAudio, RoomRecording, RoomSettings};
use super::{announcements, permanent, restream};
use super::{AbSession, Bridge};
use crate::auth::HashedSecret;
use crate::services::recording::RecordingError;
use crate::services::rooms::{MixCodec, MixEvent, MixSettings, OutSink, RoomMix};
use crate::storage::{RecordingKind, StorageError};

type Body = Map<String, Value>;

const CREATE: &[Field] = &[
    ("description", Kind::Str, false),
    ("secret", Kind::Str, false),
    ("pin", Kind::Str, false),
    ("is_private", Kind::Bool, false),
    ("allowed", Kind::Array, false),
    ("sampling_rate", Kind::UInt, false),
    ("sampling", Kind::UInt, false),
    ("spatial_audio", Kind::Bool, false),
    ("record", Kind::Bool, false),
    ("record_file", Kind::Str, false),
    ("record_dir", Kind::Str, false),
    ("mjrs", Kind::Bool, false),
    ("mjrs_dir", Kind::Str, false),
    ("allow_rtp_participants", Kind::Bool, false),
    ("permanent", Kind::Bool, false),
    ("audiolevel_ext", Kind::Bool, false),
    ("audiolevel_event", Kind::Bool, false),
    ("audio_active_packets", Kind::UInt, false),
    ("audio_level_average", Kind::UInt, false),
    ("default_expectedloss", Kind::UInt, false),
    ("default_bitrate", Kind::UInt, false),
    ("denoise", Kind::Bool, false),
    ("groups", Kind::Array, false),
    ("signed_tokens", Kind::Bool, false),
    ("sip_extension", Kind::Str, false),
    ("mountpoint", Kind::Bool, false),
    ("mountpoint_id", Kind::UInt, false),
];
const EDIT: &[Field] = &[
    ("secret", Kind::Str, false),
    ("new_description", Kind::Str, false),
    ("new_secret", Kind::Str, false),
    ("new_pin", Kind::Str, false),
    ("new_is_private", Kind::Bool, false),
    ("new_record_dir", Kind::Str, false),
    ("new_mjrs_dir", Kind::Str, false),
    ("permanent", Kind::Bool, false),
];
const DESTROY: &[Field] = &[("permanent", Kind::Bool, false)];
const SECRET: &[Field] = &[("secret", Kind::Str, false)];
const ALLOWED: &[Field] = &[
    ("secret", Kind::Str, false),
    ("action", Kind::Str, true),
    ("allowed", Kind::Array, false),
];
const RTP_FORWARD: &[Field] = &[
    ("group", Kind::Str, false),
    ("ssrc", Kind::UInt, false),
    ("codec", Kind::Str, false),
    ("ptype", Kind::UInt, false),
    ("port", Kind::UInt, true),
    ("host", Kind::Str, true),
    ("host_family", Kind::Str, false),
    ("srtp_suite", Kind::UInt, false),
    ("srtp_crypto", Kind::Str, false),
    ("always_on", Kind::Bool, false),
];
const STOP_RTP_FORWARD: &[Field] = &[("stream_id", Kind::UInt, true)];
const RECORD: &[Field] = &[
    ("record", Kind::Bool, true),
    ("record_file", Kind::Str, false),
    ("record_dir", Kind::Str, false),
];
/// Forwarder id of a room's recording inside its mix: above every 32-bit RTP forwarder id.
const RECORDING_FORWARD: u64 = 1 << 32;
/// Mixing rates Janus accepts.
const RATES: [u64; 5] = [8_000, 12_000, 16_000, 24_000, 48_000];

/// Handles a synchronous request; `Ok` is the response data, `Err` the error event. The
/// caller has checked `request` is a string.
pub async fn process(
    bridge: &Arc<Bridge>,
    session: Option<&Arc<AbSession>>,
    request: &str,
    body: &Body,
) -> AbResult<Value> {
    match request {
        "create" => create(bridge, body).await,
        "edit" => edit(bridge, body).await,
        "destroy" => destroy(bridge, body).await,
        "exists" => {
            let id = bridge.ids.require(body, "room")?;
            let exists = bridge.rooms().contains_key(&id);
            Ok(json!({"audiobridge": "success", "room": id.to_json(), "exists": exists}))
        }
        "list" => Ok(list(bridge)),
        "listparticipants" => {
            let id = bridge.ids.require(body, "room")?;
            let room = bridge.room(&id)?;
            Ok(json!({
                "audiobridge": "participants",
                "room": id.to_json(),
                "participants": room.others_json(None),
            }))
        }
        "allowed" => allowed(bridge, body).await,
        "kick" => kick(bridge, body).await,
        "kick_all" => kick_all(bridge, body).await,
        "mute" | "unmute" => mute(bridge, body, request == "mute").await,
        "mute_room" | "unmute_room" => mute_room(bridge, body, request == "mute_room").await,
        "resetdecoder" => match session.and_then(|s| s.joined()) {
            Some(j) => {
                j.room
                    .mix
                    .reset_decoder(j.participant.mix_id)
                    .map_err(|e| AbError::new(UNKNOWN_ERROR, e.to_string()))?;
                Ok(json!({"audiobridge": "success"}))
            }
            None => Err(AbError::new(NOT_JOINED, "Can't reset (not in a room)")),
        },
        "rtp_forward" => rtp_forward(bridge, body).await,
        "enable_recording" => enable_recording(bridge, body).await,
        "stop_rtp_forward" => stop_rtp_forward(bridge, body).await,
        "listforwarders" => {
            validate(body, SECRET)?;
            let id = bridge.ids.require(body, "room")?;
            let room = bridge.room(&id)?;
            check_room_secret(&room, body).await?;
            Ok(json!({
                "audiobridge": "forwarders",
                "room": id.to_json(),
                "rtp_forwarders": room.forwarders.to_json(),
            }))
        }
        "play_file" => announcements::play_file(bridge, body).await,
        "is_playing" => announcements::is_playing(bridge, body).await,
        "stop_file" => announcements::stop_file(bridge, body).await,
        "stop_all_files" => announcements::stop_all_files(bridge, body).await,
        "listannouncements" => announcements::list(bridge, body).await,
        "mountpoint" => restream::request(bridge, body).await,
        other => Err(AbError::new(
            INVALID_REQUEST,
            format!("Unknown request '{other}'"),
        )),
    }
}

/// Janus' `JANUS_CHECK_SECRET`: when `stored` is set, `member` must be a string that matches.
pub async fn check_secret(
    stored: Option<HashedSecret>,
    body: &Body,
    member: &'static str,
) -> AbResult<()> {
    let Some(stored) = stored else {
        return Ok(());
    };
    validate(body, &[(member, Kind::Str, true)])?;
    if stored
        .matches(str_of(body, member).unwrap_or_default())
        .await
    {
        Ok(())
    } else {
        Err(AbError::new(
            UNAUTHORIZED,
            format!("Unauthorized (wrong {member})"),
        ))
    }
}

pub(super) async fn check_room_secret(room: &Room, body: &Body) -> AbResult<()> {
    let stored = room.settings().secret.clone();
    check_secret(stored, body, "secret").await
}

fn strings(body: &Body, name: &str) -> AbResult<Option<BTreeSet<String>>> {
    let Some(list) = body.get(name).and_then(Value::as_array) else {
        return Ok(None);
    };
    list.iter()
        .map(|v| v.as_str().map(str::to_owned))
        .collect::<Option<BTreeSet<_>>>()
        .map(Some)
        .ok_or_else(|| {
            AbError::new(
                INVALID_ELEMENT,
                format!("Invalid element in the {name} array (not a string)"),
            )
        })
}

/// Talking thresholds from Janus' `audio_active_packets` (20 ms packets) and
/// `audio_level_average` (-dBov, 0 loudest): talking once that many packets averaged louder
/// than the threshold, stopped once that many were quieter.
pub fn vad_of(active_packets: u32, level_average: u32) -> VadConfig {
    let threshold = -(level_average.min(127) as f32);
    VadConfig {
        talk_threshold_dbov: threshold,
        stop_threshold_dbov: threshold,
        talk_ticks: active_packets.max(1),
        stop_ticks: active_packets.max(1),
    }
}

async fn hash_opt(body: &Body, name: &str) -> AbResult<Option<HashedSecret>> {
    match str_of(body, name) {
        None => Ok(None),
        Some(s) => HashedSecret::new(s)
            .await
            .map(Some)
            .ok_or_else(|| AbError::new(UNKNOWN_ERROR, "Error hashing the secret")),
    }
}

async fn create(bridge: &Arc<Bridge>, body: &Body) -> AbResult<Value> {
    create_room(bridge, body, None).await
}

/// `create`, or the restoration of a permanent room (`hashed`: its stored secret and PIN,
/// instead of the body's).
pub(super) async fn create_room(
    bridge: &Arc<Bridge>,
    body: &Body,
    hashed: Option<permanent::Hashed>,
) -> AbResult<Value> {
    validate(body, CREATE)?;
    let requested = bridge.ids.read(body, "room", false)?;
    let allowed = strings(body, "allowed")?;
    strings(body, "groups")?;
    let restoring = hashed.is_some();
    let persist = bool_of(body, "permanent") == Some(true) && !restoring;
    let storage = if persist {
        Some(permanent::storage(bridge, "create")?.clone())
    } else {
        None
    };
    if let Some(id) = &requested {
        if bridge.rooms().contains_key(id) {
            return Err(AbError::new(
                ROOM_EXISTS,
                format!("Room {id} already exists"),
            ));
        }
    }
    let sampling_rate = u64_of(body, "sampling_rate")
        .or_else(|| u64_of(body, "sampling"))
        .unwrap_or(16_000);
    if !RATES.contains(&sampling_rate) {
        return Err(AbError::new(
            UNKNOWN_ERROR,
            format!("Unsupported sampling rate {sampling_rate}"),
        ));
    }
    let audiolevel_event = bool_of(body, "audiolevel_event").unwrap_or(false);
    let positive = |name: &str, default: u64| match u64_of(body, name) {
        Some(n) if n > 0 => n,
        _ => default,
    };
    let default_bitrate = match u64_of(body, "default_bitrate") {
        Some(b) if (500..=512_000).contains(&b) => b as u32,
        _ => 0,
    };
    let audio = RoomAudio {
        sampling_rate: sampling_rate as u32,
        audiolevel_event,
        audio_active_packets: positive("audio_active_packets", 100).min(u64::from(u32::MAX)) as u32,
        audio_level_average: positive("audio_level_average", 25).min(127) as u32,
        default_bitrate,
        default_expectedloss: match u64_of(body, "default_expectedloss") {
            Some(l) if l <= 20 => l as u8,
            _ => 0,
        },
        spatial: bool_of(body, "spatial_audio").unwrap_or(false),
    };
    if audio.spatial && audio.sampling_rate != 48_000 {
        return Err(AbError::new(
            INVALID_ELEMENT,
            "Invalid element (spatial_audio needs sampling_rate 48000)",
        ));
    }
    let description = str_of(body, "description").filter(|d| !d.is_empty());
    let (secret, pin) = match hashed {
        Some(h) => (h.secret, h.pin),
        None => (
            hash_opt(body, "secret").await?,
            hash_opt(body, "pin").await?,
        ),
    };
    let settings = RoomSettings {
        description: String::new(),
        secret,
        pin,
        is_private: bool_of(body, "is_private").unwrap_or(false),
        allowed,
        allow_rtp_participants: bool_of(body, "allow_rtp_participants").unwrap_or(false),
        record: false,
        record_dir: str_of(body, "record_dir").map(str::to_owned),
    };
    let (mix, events) = RoomMix::start(
        &bridge.workers,
        MixSettings {
            sampling_rate: audio.sampling_rate,
            vad: vad_of(audio.audio_active_packets, audio.audio_level_average),
            talk_events: audiolevel_event,
            spatial: audio.spatial,
        },
    )
    .map_err(|e| AbError::new(UNKNOWN_ERROR, format!("Error starting the mixer: {e}")))?;
    // The room goes in under the lock, checked again: two creates of one id race otherwise.
    let room = {
        let mut rooms = bridge.rooms();
        let id = match requested {
            Some(id) if rooms.contains_key(&id) => {
                return Err(AbError::new(
                    ROOM_EXISTS,
                    format!("Room {id} already exists"),
                ))
            }
            Some(id) => id,
            None => loop {
                let id = bridge.ids.random();
                if !rooms.contains_key(&id) {
                    break id;
                }
            },
        };
        let mut settings = settings;
        settings.description = description
            .map(str::to_owned)
            .unwrap_or_else(|| format!("Room {id}"));
        let room = Arc::new(Room::new(
            id.clone(),
            settings,
            audio,
            mix,
            permanent::create_config(body),
        ));
        rooms.insert(id, room.clone());
        room
    };
    tokio::spawn(talking_events(Arc::downgrade(&room), events));
    if let Some(extension) = str_of(body, "sip_extension") {
        let opened = match &bridge.sip {
            Some(deps) => super::sip::open_dial_in(deps, &room, bridge.ids, extension).await,
            None => Err(AbError::new(UNKNOWN_ERROR, "SIP is not available")),
        };
        match opened {
            Ok(dial_in) => *room.dial_in.lock().unwrap_or_else(|e| e.into_inner()) = Some(dial_in),
            // A restored room comes back without its dial-in rather than not at all.
            Err(e) if restoring => {
                tracing::warn!(room = %room.id, %extension, error = %e.message, "restored room without dial-in")
            }
            Err(e) => {
                bridge.rooms().remove(&room.id);
                room.destroyed.store(true, Ordering::Release);
                room.mix.stop();
                return Err(e);
            }
        }
    }
    if bool_of(body, "mountpoint") == Some(true) {
        match restream::open(bridge, &room, u64_of(body, "mountpoint_id")) {
            Ok(_) => {}
            // A restored room comes back without its mountpoint rather than not at all.
            Err(e) if restoring => {
                tracing::warn!(room = %room.id, error = %e.message, "restored room without mountpoint")
            }
            Err(e) => {
                bridge.rooms().remove(&room.id);
                room.destroyed.store(true, Ordering::Release);
                room.dial_in
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .take();
                room.mix.stop();
                return Err(e);
            }
        }
    }
    if bool_of(body, "record") == Some(true) {
        let started = start_recording(
            bridge,
            &room,
            str_of(body, "record_file"),
            str_of(body, "record_dir"),
        )
        .await;
        if let Err(e) = started {
            restream::close(bridge, &room);
            bridge.rooms().remove(&room.id);
            room.destroyed.store(true, Ordering::Release);
            room.mix.stop();
            return Err(e);
        }
    }
    if let Some(storage) = &storage {
        if let Err(e) = permanent::save(storage, &room).await {
            bridge.rooms().remove(&room.id);
            room.destroyed.store(true, Ordering::Release);
            room.dial_in
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take();
            stop_recording(&room).await;
            restream::close(bridge, &room);
            room.mix.stop();
            return Err(e);
        }
    }
    tracing::info!(room = %room.id, sampling_rate, permanent = persist, "audiobridge room created");
    let mut created =
        json!({"audiobridge": "created", "room": room.id.to_json(), "permanent": persist});
    if let Some(id) = *room.mountpoint.lock().unwrap_or_else(|e| e.into_inner()) {
        created["mountpoint"] = json!(id);
    }
    Ok(created)
}

/// Relays the mix's talking changes as `talking` / `stopped-talking` to every participant
/// (the speaker included, as Janus does) and ended announcements as `announcement-stopped`;
/// ends with the room's mix.
async fn talking_events(
    room: Weak<Room>,
    mut events: tokio::sync::mpsc::UnboundedReceiver<MixEvent>,
) {
    while let Some(event) = events.recv().await {
        let Some(room) = room.upgrade() else { break };
        let (id, talking) = match event {
            MixEvent::Talking { id, talking, .. } => (id, talking),
            MixEvent::FileDone(id) => {
                announcements::on_finished(&room, id);
                continue;
            }
        };
        let Some(p) = room.by_mix_id(id) else {
            continue;
        };
        p.talking.store(talking, Ordering::Relaxed);
        let event = json!({
            "audiobridge": if talking { "talking" } else { "stopped-talking" },
            "room": room.id.to_json(),
            "id": p.id.to_json(),
        });
        room.notify(&event, None);
    }
}

fn list(bridge: &Bridge) -> Value {
    let rooms: Vec<Arc<Room>> = bridge.rooms().values().cloned().collect();
    let list: Vec<Value> = rooms
        .iter()
        .filter_map(|r| {
            let s = r.settings();
            (!s.is_private).then(|| {
                let mut entry = json!({
                    "room": r.id.to_json(),
                    "description": s.description,
                    "sampling_rate": r.audio.sampling_rate,
                    "spatial_audio": r.audio.spatial,
                    "pin_required": s.pin.is_some(),
                    "record": s.record,
                    "muted": r.muted.load(Ordering::Relaxed),
                    "num_participants": r.participants().len(),
                });
                if let Some(id) = *r.mountpoint.lock().unwrap_or_else(|e| e.into_inner()) {
                    entry["mountpoint"] = json!(id);
                }
                entry
            })
        })
        .collect();
    json!({"audiobridge": "success", "list": list})
}

async fn edit(bridge: &Arc<Bridge>, body: &Body) -> AbResult<Value> {
    validate(body, EDIT)?;
    let id = bridge.ids.require(body, "room")?;
    let persist = bool_of(body, "permanent") == Some(true);
    if persist {
        permanent::storage(bridge, "edit")?;
    }
    let room = bridge.room(&id)?;
    check_room_secret(&room, body).await?;
    let new_secret = hash_opt(body, "new_secret").await?;
    let new_pin = hash_opt(body, "new_pin").await?;
    {
        let mut s = room.settings();
        if let Some(d) = str_of(body, "new_description").filter(|d| !d.is_empty()) {
            s.description = d.to_owned();
        }
        if new_secret.is_some() {
            s.secret = new_secret;
        }
        if new_pin.is_some() {
            s.pin = new_pin;
        }
        if let Some(p) = bool_of(body, "new_is_private") {
            s.is_private = p;
        }
        if let Some(d) = str_of(body, "new_record_dir") {
            s.record_dir = Some(d.to_owned());
        }
    }
    if persist {
        permanent::save(permanent::storage(bridge, "edit")?, &room).await?;
    }
    Ok(json!({"audiobridge": "edited", "room": id.to_json(), "permanent": persist}))
}

async fn destroy(bridge: &Arc<Bridge>, body: &Body) -> AbResult<Value> {
    validate(body, DESTROY)?;
    let id = bridge.ids.require(body, "room")?;
    let persist = bool_of(body, "permanent") == Some(true);
    if persist {
        permanent::storage(bridge, "destroy")?;
    }
    let room = bridge.room(&id)?;
    check_room_secret(&room, body).await?;
    if persist {
        permanent::forget(permanent::storage(bridge, "destroy")?, &id).await?;
    }
    let removed = {
        let mut rooms = bridge.rooms();
        match rooms.get(&id) {
            Some(r) if Arc::ptr_eq(r, &room) => rooms.remove(&id),
            _ => None,
        }
    };
    let Some(room) = removed else {
        return Err(AbError::new(NO_SUCH_ROOM, format!("No such room ({id})")));
    };
    room.destroyed.store(true, Ordering::Release);
    let event = json!({"audiobridge": "destroyed", "room": id.to_json()});
    let participants: Vec<_> = std::mem::take(&mut *room.participants())
        .into_values()
        .collect();
    for p in participants {
        p.close_media();
        if let Some(ctx) = p.handle.as_ref().and_then(|h| h.upgrade()) {
            ctx.push_event(None, event.clone(), None);
            ctx.close_pc();
        }
    }
    room.dial_in
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take();
    stop_recording(&room).await;
    restream::close(bridge, &room);
    room.mix.stop();
    tracing::info!(room = %id, "audiobridge room destroyed");
    Ok(json!({"audiobridge": "destroyed", "room": id.to_json(), "permanent": persist}))
}

async fn allowed(bridge: &Arc<Bridge>, body: &Body) -> AbResult<Value> {
    validate(body, ALLOWED)?;
    let id = bridge.ids.require(body, "room")?;
    let action = str_of(body, "action").unwrap_or_default();
    if !["enable", "disable", "add", "remove"].contains(&action) {
        return Err(AbError::new(
            INVALID_ELEMENT,
            format!("Unsupported action '{action}' (allowed)"),
        ));
    }
    let room = bridge.room(&id)?;
    check_room_secret(&room, body).await?;
    let tokens = strings(body, "allowed")?;
    let mut s = room.settings();
    match action {
        "enable" => {
            s.allowed.get_or_insert_with(BTreeSet::new);
        }
        "disable" => s.allowed = None,
        "add" => s
            .allowed
            .get_or_insert_with(BTreeSet::new)
            .extend(tokens.unwrap_or_default()),
        _ => {
            if let Some(list) = s.allowed.as_mut() {
                for t in tokens.unwrap_or_default() {
                    list.remove(&t);
                }
            }
        }
    }
    let mut reply = json!({"audiobridge": "success", "room": id.to_json()});
    if let Some(list) = &s.allowed {
        reply["allowed"] = json!(list);
    }
    Ok(reply)
}

/// Room and participant of a moderation request, after the secret check.
async fn target(bridge: &Arc<Bridge>, body: &Body) -> AbResult<(Arc<Room>, Id)> {
    validate(body, SECRET)?;
    let room_id = bridge.ids.require(body, "room")?;
    let user = bridge.ids.require(body, "id")?;
    let room = bridge.room(&room_id)?;
    check_room_secret(&room, body).await?;
    if !room.participants().contains_key(&user) {
        return Err(AbError::new(
            NO_SUCH_USER,
            format!("No such user {user} in room {room_id}"),
        ));
    }
    Ok((room, user))
}

async fn kick(bridge: &Arc<Bridge>, body: &Body) -> AbResult<Value> {
    let (room, user) = target(bridge, body).await?;
    let event =
        json!({"audiobridge": "event", "room": room.id.to_json(), "kicked": user.to_json()});
    room.notify(&event, None);
    if let Some(p) = room.remove(&user) {
        if let Some(ctx) = p.handle.as_ref().and_then(|h| h.upgrade()) {
            ctx.close_pc();
        }
    }
    tracing::info!(room = %room.id, participant = %user, "audiobridge participant kicked");
    Ok(json!({"audiobridge": "success"}))
}

async fn kick_all(bridge: &Arc<Bridge>, body: &Body) -> AbResult<Value> {
    validate(body, SECRET)?;
    let room_id = bridge.ids.require(body, "room")?;
    let room = bridge.room(&room_id)?;
    check_room_secret(&room, body).await?;
    let all: Vec<_> = std::mem::take(&mut *room.participants())
        .into_values()
        .collect();
    for p in all {
        let _ = room.mix.remove(p.mix_id);
        p.close_media();
        if let Some(ctx) = p.handle.as_ref().and_then(|h| h.upgrade()) {
            let event = json!({"audiobridge": "event", "room": room_id.to_json(), "kicked_all": p.id.to_json()});
            ctx.push_event(None, event, None);
            ctx.close_pc();
        }
    }
    Ok(json!({"audiobridge": "success"}))
}

async fn mute(bridge: &Arc<Bridge>, body: &Body, muted: bool) -> AbResult<Value> {
    let (room, user) = target(bridge, body).await?;
    let Some(p) = room.participants().get(&user).cloned() else {
        return Err(AbError::new(
            NO_SUCH_USER,
            format!("No such user {user} in room {}", room.id),
        ));
    };
    {
        let mut st = p.state();
        if st.muted == muted {
            // Nothing changes: Janus answers without telling the room.
            return Ok(json!({"audiobridge": "success"}));
        }
        st.muted = muted;
    }
    let _ = room
        .mix
        .set_muted(p.mix_id, muted || room.muted.load(Ordering::Relaxed));
    room.notify_changed(&p);
    Ok(json!({"audiobridge": "success", "room": room.id.to_json()}))
}

async fn mute_room(bridge: &Arc<Bridge>, body: &Body, muted: bool) -> AbResult<Value> {
    validate(body, SECRET)?;
    let room_id = bridge.ids.require(body, "room")?;
    let room = bridge.room(&room_id)?;
    check_room_secret(&room, body).await?;
    if room.muted.swap(muted, Ordering::AcqRel) == muted {
        return Ok(json!({"audiobridge": "success"}));
    }
    let participants: Vec<_> = room.participants().values().cloned().collect();
    for p in participants {
        let own = p.state().muted;
        let _ = room.mix.set_muted(p.mix_id, own || muted);
    }
    let event = json!({"audiobridge": "event", "room": room_id.to_json(), "muted": muted});
    room.notify(&event, None);
    Ok(json!({"audiobridge": "success", "room": room_id.to_json()}))
}

async fn rtp_forward(bridge: &Arc<Bridge>, body: &Body) -> AbResult<Value> {
    validate(body, RTP_FORWARD)?;
    let room_id = bridge.ids.require(body, "room")?;
    let codec = match str_of(body, "codec") {
        None => MixCodec::Opus,
        Some(name) => MixCodec::from_name(name)
            .ok_or_else(|| AbError::new(INVALID_ELEMENT, format!("Unsupported codec ({name})")))?,
    };
    let ptype = u64_of(body, "ptype").unwrap_or(100);
    let port = u64_of(body, "port").unwrap_or(0);
    if port == 0 || port > u64::from(u16::MAX) {
        return Err(AbError::new(
            INVALID_ELEMENT,
            format!("Invalid port number ({port})"),
        ));
    }
    let host = str_of(body, "host").unwrap_or_default().to_owned();
    let family = str_of(body, "host_family");
    if let Some(f) = family {
        if f != "ipv4" && f != "ipv6" {
            return Err(AbError::new(
                INVALID_ELEMENT,
                format!("Unsupported protocol family ({f})"),
            ));
        }
    }
    if body.contains_key("srtp_suite") || body.contains_key("srtp_crypto") {
        return Err(AbError::new(
            INVALID_ELEMENT,
            "SRTP forwarders are not supported",
        ));
    }
    let lookup = format!("{host}:{port}");
    let family = family.map(str::to_owned);
    let dest = tokio::task::spawn_blocking(move || {
        lookup.to_socket_addrs().ok().and_then(|mut a| {
            a.find(|a| match family.as_deref() {
                Some("ipv6") => a.is_ipv6(),
                Some(_) => a.is_ipv4(),
                None => true,
            })
        })
    });
    let dest = dest.await.ok().flatten().ok_or_else(|| {
        AbError::new(
            INVALID_ELEMENT,
            format!("Could not resolve address ({host})..."),
        )
    })?;
    let room = bridge.room(&room_id)?;
    check_room_secret(&room, body).await?;
    let sink = UdpRtpSink::new(dest).map_err(|e| {
        tracing::warn!(error = %e, "audiobridge forwarder socket");
        AbError::new(UNKNOWN_ERROR, "Could not open UDP socket for RTP forwarder")
    })?;
    let ssrc = match u64_of(body, "ssrc") {
        Some(s) if s > 0 => s as u32,
        _ => rand::random(),
    };
    let info = ForwarderInfo {
        host: host.clone(),
        port: port as u16,
        ssrc,
        codec,
        ptype: (ptype & 0x7f) as u8,
        always_on: bool_of(body, "always_on").unwrap_or(false),
    };
    let stream_id = room.forwarders.insert(info);
    let mut out = OutSink::random(Arc::new(sink), (ptype & 0x7f) as u8);
    out.ssrc = ssrc;
    room.mix
        .add_forward(stream_id, codec, out)
        .map_err(|e| AbError::new(UNKNOWN_ERROR, e.to_string()))?;
    tracing::info!(room = %room_id, stream_id, %dest, codec = codec.name(), "audiobridge forwarder");
    Ok(json!({
        "audiobridge": "success",
        "room": room_id.to_json(),
        "stream_id": stream_id,
        "host": host,
        "port": port,
    }))
}

async fn stop_rtp_forward(bridge: &Arc<Bridge>, body: &Body) -> AbResult<Value> {
    validate(body, STOP_RTP_FORWARD)?;
    let room_id = bridge.ids.require(body, "room")?;
    let stream_id = u64_of(body, "stream_id").unwrap_or(0);
    let room = bridge.room(&room_id)?;
    check_room_secret(&room, body).await?;
    if room.forwarders.remove(stream_id) {
        let _ = room.mix.remove_forward(stream_id);
    }
    Ok(json!({"audiobridge": "success", "room": room_id.to_json(), "stream_id": stream_id}))
}

/// Starts recording the room's whole mix to Ogg/Opus, as
/// `audiobridge/[<record_dir>/]<record_file | room-<id>-<ms>.opus>` under the recordings
/// directory, with its row in the registry. A recording already running is kept.
pub async fn start_recording(
    bridge: &Bridge,
    room: &Arc<Room>,
    file: Option<&str>,
    dir: Option<&str>,
) -> AbResult<()> {
    let mut slot = room.recording.lock().await;
    if slot.is_some() {
        return Ok(());
    }
    let file = match file {
        Some(f) if f.ends_with(".opus") || f.ends_with(".ogg") => f.to_owned(),
        Some(f) => format!("{f}.opus"),
        None => {
            let ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis());
            format!("room-{}-{ms}.opus", room.id)
        }
    };
    let name = match dir.filter(|d| !d.is_empty()) {
        Some(d) => format!("audiobridge/{}/{file}", d.trim_end_matches('/')),
        None => format!("audiobridge/{file}"),
    };
    let owner = format!("room-{}", room.id);
    let owner: String = owner.chars().take(64).collect();
    let recorder = bridge
        .recording
        .start_opus(RecordingKind::Room, &owner, &name)
        .await
        .map_err(|e| match e {
            RecordingError::Storage(invalid @ StorageError::Invalid { .. }) => AbError::new(
                INVALID_ELEMENT,
                format!("Invalid recording path ({invalid})"),
            ),
            other => AbError::new(UNKNOWN_ERROR, format!("Error starting recorder: {other}")),
        })?;
    let sink = OutSink::random(Arc::new(recorder.sink()), 111);
    room.mix
        .add_forward(RECORDING_FORWARD, MixCodec::Opus, sink)
        .map_err(|e| AbError::new(UNKNOWN_ERROR, e.to_string()))?;
    tracing::info!(room = %room.id, file = %recorder.row().meta.file_path, "audiobridge room recording");
    *slot = Some(RoomRecording {
        forward_id: RECORDING_FORWARD,
        recorder,
    });
    room.settings().record = true;
    Ok(())
}

/// Stops the room's recording, if any: the file gets its last page and the row its size.
pub async fn stop_recording(room: &Room) {
    let Some(rec) = room.recording.lock().await.take() else {
        return;
    };
    let _ = room.mix.remove_forward(rec.forward_id);
    room.settings().record = false;
    match rec.recorder.finish().await {
        Ok(row) => tracing::info!(
            room = %room.id,
            file = %row.meta.file_path,
            duration_ms = row.meta.duration_ms,
            "audiobridge room recording saved"
        ),
        Err(e) => {
            tracing::warn!(room = %room.id, error = %e, "audiobridge room recording not saved")
        }
    }
}

async fn enable_recording(bridge: &Arc<Bridge>, body: &Body) -> AbResult<Value> {
    validate(body, RECORD)?;
    validate(body, SECRET)?;
    let room_id = bridge.ids.require(body, "room")?;
    let room = bridge.room(&room_id)?;
    check_room_secret(&room, body).await?;
    let record = bool_of(body, "record").unwrap_or(false);
    if record {
        start_recording(
            bridge,
            &room,
            str_of(body, "record_file"),
            str_of(body, "record_dir"),
        )
        .await?;
    } else {
        stop_recording(&room).await;
    }
    Ok(json!({"audiobridge": "success", "record": record}))
}
