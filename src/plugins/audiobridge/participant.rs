//! The asynchronous requests of a participant (`join`, `configure`, `changeroom`, `leave`,
//! `hangup`), its offer/answer, and what happens when its media comes up or goes away.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use serde_json::{json, Map, Value};

use super::errors::*;
use super::fields::{bool_of, str_of, u64_of, validate, Field, Id, Kind};
use super::manage::{check_secret, vad_of};
use super::plain_rtp::{self, RtpRequest};
use super::room::{Participant, ParticipantState, Room, CENTRE};
use super::{AbSession, Bridge, Joined};
use crate::media::{AnswerPlan, Codec, Direction, JsepType, MediaKind, StreamPlan};
use crate::plugins::{HandleCtx, PluginMessage};
use crate::services::rooms::{EncoderSettings, MixCodec, NewParticipant, OutSink};

type Body = Map<String, Value>;

const JOIN: &[Field] = &[
    ("display", Kind::Str, false),
    ("token", Kind::Str, false),
    ("group", Kind::Str, false),
    ("muted", Kind::Bool, false),
    ("suspended", Kind::Bool, false),
    ("pause_events", Kind::Bool, false),
    ("codec", Kind::Str, false),
    ("bitrate", Kind::UInt, false),
    ("quality", Kind::UInt, false),
    ("expected_loss", Kind::UInt, false),
    ("volume", Kind::UInt, false),
    ("spatial_position", Kind::UInt, false),
    ("audio_level_average", Kind::UInt, false),
    ("audio_active_packets", Kind::UInt, false),
    ("denoise", Kind::Bool, false),
    ("record", Kind::Bool, false),
    ("filename", Kind::Str, false),
    ("generate_offer", Kind::Bool, false),
    ("rtp", Kind::Object, false),
    ("secret", Kind::Str, false),
];
const CONFIGURE: &[Field] = &[
    ("muted", Kind::Bool, false),
    ("bitrate", Kind::UInt, false),
    ("quality", Kind::UInt, false),
    ("expected_loss", Kind::UInt, false),
    ("volume", Kind::UInt, false),
    ("group", Kind::Str, false),
    ("spatial_position", Kind::UInt, false),
    ("denoise", Kind::Bool, false),
    ("record", Kind::Bool, false),
    ("filename", Kind::Str, false),
    ("display", Kind::Str, false),
    ("generate_offer", Kind::Bool, false),
    ("rtp", Kind::Object, false),
    ("update", Kind::Bool, false),
];

/// Runs an asynchronous request and pushes its reply event (with the request's transaction).
pub async fn process(
    bridge: Arc<Bridge>,
    session: Arc<AbSession>,
    ctx: Arc<HandleCtx>,
    request: String,
    body: Body,
    message: PluginMessage,
) {
    let transaction = message.transaction.as_str();
    let result = match request.as_str() {
        "join" => join(&bridge, &session, &ctx, &body, &message).await,
        "changeroom" => changeroom(&bridge, &session, &body).await,
        "configure" => configure(&session, &ctx, &body, &message).await,
        "leave" => leave(&session),
        _ => {
            // hangup: tell the client, then close; hangup_media takes the participant out.
            ctx.push_event(Some(transaction), json!({"audiobridge": "hangingup"}), None);
            ctx.close_pc();
            return;
        }
    };
    match result {
        Ok((event, jsep)) => ctx.push_event(Some(transaction), event, jsep),
        Err(e) => {
            tracing::info!(request = %request, code = e.code, error = %e.message, "audiobridge request refused");
            ctx.push_event(Some(transaction), e.to_event(), None);
        }
    }
}

type Reply = AbResult<(Value, Option<crate::media::Jsep>)>;

/// What `join` and `changeroom` check and read, in Janus' order.
struct JoinRequest {
    room: Arc<Room>,
    id: Option<Id>,
    display: Option<String>,
    muted: bool,
    codec: MixCodec,
    settings: EncoderSettings,
    volume: u32,
    vad: Option<bifrons_transcoding::mixer::VadConfig>,
    rtp: Option<RtpRequest>,
    /// `spatial_position`, 0–100 (centre when not given).
    position: u8,
}

async fn read_join(bridge: &Bridge, body: &Body) -> AbResult<JoinRequest> {
    validate(body, JOIN)?;
    let room_id = bridge.ids.require(body, "room")?;
    let id = bridge.ids.read(body, "id", false)?;
    let room = bridge.room(&room_id)?;
    let (pin, secret, allowed, allow_rtp) = {
        let s = room.settings();
        (
            s.pin.clone(),
            s.secret.clone(),
            s.allowed.clone(),
            s.allow_rtp_participants,
        )
    };
    if body.contains_key("rtp") && !allow_rtp {
        return Err(AbError::new(
            UNAUTHORIZED,
            "Plain RTP participants not allowed in this room",
        ));
    }
    check_secret(pin, body, "pin").await?;
    if let Some(allowed) = allowed {
        let ok = str_of(body, "token").is_some_and(|t| allowed.contains(t));
        if !ok {
            return Err(AbError::new(
                UNAUTHORIZED,
                "Unauthorized (not in the allowed list)",
            ));
        }
    }
    if body.contains_key("secret") {
        check_secret(secret, body, "secret").await?;
    }
    let quality = u64_of(body, "quality").unwrap_or(4);
    if !(1..=10).contains(&quality) {
        return Err(AbError::new(
            INVALID_ELEMENT,
            "Invalid element (quality should be a positive integer between 1 and 10)",
        ));
    }
    let expected_loss =
        u64_of(body, "expected_loss").unwrap_or(u64::from(room.audio.default_expectedloss));
    if expected_loss > 20 {
        return Err(AbError::new(
            INVALID_ELEMENT,
            "Invalid element (expected_loss should be a positive integer between 0 and 20)",
        ));
    }
    let codec = match str_of(body, "codec") {
        None => MixCodec::Opus,
        Some(name) => MixCodec::from_name(name).ok_or_else(|| {
            AbError::new(
                INVALID_ELEMENT,
                "Invalid element (codec must opus, pcmu or pcma)",
            )
        })?,
    };
    let rtp = match body.get("rtp").and_then(Value::as_object) {
        Some(obj) => Some(plain_rtp::read(obj, codec)?),
        None => None,
    };
    let bitrate = match u64_of(body, "bitrate") {
        Some(b) if (500..=512_000).contains(&b) => b as i32,
        _ => room.audio.default_bitrate as i32,
    };
    let vad =
        if body.contains_key("audio_active_packets") || body.contains_key("audio_level_average") {
            let packets = u64_of(body, "audio_active_packets")
                .filter(|n| *n > 0)
                .map_or(room.audio.audio_active_packets, |n| {
                    n.min(u64::from(u32::MAX)) as u32
                });
            let level = u64_of(body, "audio_level_average")
                .filter(|n| *n > 0)
                .map_or(room.audio.audio_level_average, |n| n.min(127) as u32);
            Some(vad_of(packets, level))
        } else {
            None
        };
    Ok(JoinRequest {
        room,
        id,
        display: str_of(body, "display").map(str::to_owned),
        muted: bool_of(body, "muted").unwrap_or(false),
        codec,
        settings: EncoderSettings {
            bitrate,
            complexity: quality as u8,
            expected_loss: expected_loss as u8,
        },
        volume: u64_of(body, "volume").unwrap_or(100).min(10_000) as u32,
        position: u64_of(body, "spatial_position").map_or(CENTRE, |p| p.min(100) as u8),
        vad,
        rtp,
    })
}

/// Puts the participant of `req` in its room and its mix, and tells the others. Returns it
/// with the `participants` list the joiner receives.
fn enter(
    bridge: &Bridge,
    ctx: &HandleCtx,
    session: &AbSession,
    req: JoinRequest,
) -> AbResult<(Joined, Vec<Value>)> {
    let room = req.room;
    let mix_id = room.next_mix_id();
    let (mut entry, input) = NewParticipant::new(mix_id, req.codec);
    entry.settings = req.settings;
    entry.muted = req.muted || room.muted.load(Ordering::Relaxed);
    entry.gain = req.volume as f32 / 100.0;
    entry.vad = req.vad;
    let plain = match &req.rtp {
        Some(r) => {
            let (plain, sink) = plain_rtp::open(ctx, r, input.clone())?;
            entry.sink = sink;
            Some(plain)
        }
        None => None,
    };
    // If media is up already (changeroom), the new mix goes to the same PeerConnection.
    let media_up = ctx.media_sender().is_some() && ctx.media_status().1;
    let participant = room.admit(bridge.ids, req.id, entry, |id| Participant {
        id,
        mix_id,
        codec: req.codec,
        handle: Some(ctx.weak()),
        input,
        state: std::sync::Mutex::new(ParticipantState {
            display: req.display,
            muted: req.muted,
            volume: req.volume,
            spatial_position: room.audio.spatial.then_some(req.position),
        }),
        // No PeerConnection to wait for: a plain-RTP participant's media is as set up as it
        // will be.
        setup: (plain.is_some() || media_up).into(),
        talking: Default::default(),
        has_sink: Default::default(),
        plain,
        sip: None,
    })?;
    if room.audio.spatial {
        let _ = room.mix.set_position(mix_id, req.position);
    }
    let others = room.others_json(Some(&participant.id));
    let joined = Joined { room, participant };
    attach_sink(session, &joined, ctx);
    session.set_joined(Some(joined.clone()));
    tracing::info!(room = %joined.room.id, participant = %joined.participant.id, codec = req.codec.name(), "audiobridge participant joined");
    Ok((joined, others))
}

async fn join(
    bridge: &Bridge,
    session: &AbSession,
    ctx: &Arc<HandleCtx>,
    body: &Body,
    message: &PluginMessage,
) -> Reply {
    if session.joined().is_some() {
        return Err(AbError::new(
            ALREADY_JOINED,
            "Already in a room (use changeroom to join another one)",
        ));
    }
    let req = read_join(bridge, body).await?;
    let (joined, others) = enter(bridge, ctx, session, req)?;
    let event = json!({
        "audiobridge": "joined",
        "room": joined.room.id.to_json(),
        "id": joined.participant.id.to_json(),
        "participants": others,
    });
    let mut event = event;
    if let Some(plain) = &joined.participant.plain {
        event["rtp"] = plain.to_json();
        return Ok((event, None));
    }
    let jsep = negotiate(session, &joined, ctx, message).await?;
    Ok((event, jsep))
}

async fn changeroom(bridge: &Bridge, session: &AbSession, body: &Body) -> Reply {
    validate(body, JOIN)?;
    let room_id = bridge.ids.require(body, "room")?;
    let Some(current) = session.joined() else {
        return Err(AbError::new(
            NOT_JOINED,
            "Can't change room (not in a room in the first place)",
        ));
    };
    if current.room.id == room_id {
        return Err(AbError::new(ALREADY_JOINED, "Already in this room"));
    }
    let req = read_join(bridge, body).await?;
    let Some(ctx) = current
        .participant
        .handle
        .as_ref()
        .and_then(|h| h.upgrade())
    else {
        return Err(AbError::new(UNKNOWN_ERROR, "Handle gone"));
    };
    current.room.remove(&current.participant.id);
    session.set_joined(None);
    let (joined, others) = enter(bridge, &ctx, session, req)?;
    Ok((
        json!({
            "audiobridge": "roomchanged",
            "room": joined.room.id.to_json(),
            "id": joined.participant.id.to_json(),
            "participants": others,
        }),
        None,
    ))
}

async fn configure(
    session: &AbSession,
    ctx: &Arc<HandleCtx>,
    body: &Body,
    message: &PluginMessage,
) -> Reply {
    let Some(joined) = session.joined() else {
        return Err(AbError::new(NOT_JOINED, "Can't configure (not in a room)"));
    };
    validate(body, CONFIGURE)?;
    if let Some(q) = u64_of(body, "quality") {
        if !(1..=10).contains(&q) {
            return Err(AbError::new(
                INVALID_ELEMENT,
                "Invalid element (quality should be a positive integer between 1 and 10)",
            ));
        }
    }
    if u64_of(body, "expected_loss").is_some_and(|l| l > 20) {
        return Err(AbError::new(
            INVALID_ELEMENT,
            "Invalid element (expected_loss should be a positive integer between 0 and 20)",
        ));
    }
    let room = &joined.room;
    let p = &joined.participant;
    let mut changed = false;
    {
        let mut st = p.state();
        if let Some(m) = bool_of(body, "muted") {
            if st.muted != m {
                st.muted = m;
                changed = true;
                let _ = room
                    .mix
                    .set_muted(p.mix_id, m || room.muted.load(Ordering::Relaxed));
            }
        }
        if let Some(d) = str_of(body, "display") {
            if st.display.as_deref() != Some(d) {
                st.display = Some(d.to_owned());
                changed = true;
            }
        }
        if let Some(v) = u64_of(body, "volume") {
            st.volume = v.min(10_000) as u32;
            let _ = room.mix.set_gain(p.mix_id, st.volume as f32 / 100.0);
        }
        if let (Some(current), Some(wanted)) =
            (st.spatial_position, u64_of(body, "spatial_position"))
        {
            let wanted = wanted.min(100) as u8;
            if current != wanted {
                st.spatial_position = Some(wanted);
                changed = true;
                let _ = room.mix.set_position(p.mix_id, wanted);
            }
        }
    }
    if changed {
        room.notify_changed(p);
    }
    let jsep = negotiate(session, &joined, ctx, message).await?;
    Ok((json!({"audiobridge": "event", "result": "ok"}), jsep))
}

fn leave(session: &AbSession) -> Reply {
    let Some(joined) = session.joined() else {
        return Err(AbError::new(NOT_JOINED, "Can't leave (not in a room)"));
    };
    joined.room.remove(&joined.participant.id);
    session.set_joined(None);
    Ok((
        json!({
            "audiobridge": "left",
            "room": joined.room.id.to_json(),
            "id": joined.participant.id.to_json(),
        }),
        None,
    ))
}

/// The media codec the answer must use for a participant's codec.
fn media_codec(codec: MixCodec) -> Codec {
    match codec {
        MixCodec::Opus => Codec::Opus,
        MixCodec::Pcmu => Codec::Pcmu,
        MixCodec::Pcma => Codec::Pcma,
    }
}

/// Answers the client's offer, if the request carried one: audio only, in the participant's
/// codec; other media are refused. Janus answers offers only (the bridge never offers here).
async fn negotiate(
    session: &AbSession,
    joined: &Joined,
    ctx: &HandleCtx,
    message: &PluginMessage,
) -> AbResult<Option<crate::media::Jsep>> {
    let Some(jsep) = &message.jsep else {
        return Ok(None);
    };
    if jsep.kind != JsepType::Offer {
        return Err(AbError::new(
            INVALID_SDP,
            "Received an answer when we didn't send an offer",
        ));
    }
    let codec = media_codec(joined.participant.codec);
    let plan = AnswerPlan {
        audio: Some(StreamPlan::new(Direction::SendRecv, vec![codec.clone()])),
        video: None,
    };
    let (mut answer, negotiated) = ctx.answer_offer(jsep, &plan).await.map_err(|e| {
        tracing::warn!(error = %e, "audiobridge negotiation failed");
        AbError::new(INVALID_SDP, format!("Error negotiating: {e}"))
    })?;
    let Some(stream) = negotiated
        .first(MediaKind::Audio)
        .filter(|s| s.codec.as_ref() == Some(&codec))
    else {
        return Err(AbError::new(
            INVALID_SDP,
            format!("No {} audio in the offer", joined.participant.codec.name()),
        ));
    };
    let _ = stream;
    if joined.room.audio.spatial && joined.participant.codec == MixCodec::Opus {
        let stereo = super::stereo::offer_wants_stereo(&jsep.sdp);
        if stereo {
            answer.sdp = super::stereo::answer_with_stereo(&answer.sdp);
        }
        let _ = joined
            .room
            .mix
            .set_stereo(joined.participant.mix_id, stereo);
    }
    attach_sink(session, joined, ctx);
    Ok(Some(answer))
}

/// Points the participant's mix at its PeerConnection, once: a renegotiation keeps the same
/// outgoing stream (sequence numbers and timestamps continue), and so does a move to another
/// room, whose mix the handle's continuous stream re-bases.
fn attach_sink(session: &AbSession, joined: &Joined, ctx: &HandleCtx) {
    let Some(stream) = ctx
        .negotiated()
        .and_then(|n| n.first(MediaKind::Audio).cloned())
    else {
        return;
    };
    let Some(sender) = ctx.media_sender() else {
        return;
    };
    if joined.participant.has_sink.swap(true, Ordering::AcqRel) {
        return;
    }
    let stream_out = session.out_stream(sender, joined.participant.codec.clock_rate());
    let out = OutSink::random(stream_out, stream.pt.0);
    let _ = joined
        .room
        .mix
        .set_sink(joined.participant.mix_id, Some(out));
}

/// ICE and DTLS are up: the participant is set up, and the room hears of it.
pub fn media_up(session: &AbSession, ctx: &HandleCtx) {
    let Some(joined) = session.joined() else {
        return;
    };
    attach_sink(session, &joined, ctx);
    if !joined.participant.setup.swap(true, Ordering::AcqRel) {
        joined.room.notify_changed(&joined.participant);
    }
}

/// The PeerConnection went away or the handle is detached: as Janus, the participant leaves
/// its room and the others are told.
pub fn leave_room(session: &AbSession) {
    if let Some(joined) = session.joined() {
        joined.room.remove(&joined.participant.id);
        session.set_joined(None);
        tracing::info!(room = %joined.room.id, participant = %joined.participant.id, "audiobridge participant left");
    }
}
