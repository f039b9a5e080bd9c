//! SIP participants: phones and PBX callers in a room next to the browsers.
//!
//! - **Dial-out** (Bifrons extension, no Janus counterpart): `{"request":"dial","room":R,
//!   "uri":"sip:…","account":"EXT"}` (with the room's `secret` when it has one, optional
//!   `display`, `codec` opus/pcmu/pcma, `muted`, `volume`) calls `uri` through the line of
//!   registry account `EXT` (registered through its trunk). The answer
//!   `{"audiobridge":"dialing","room":R,"id":ID,"call_id":…}` comes once the INVITE is sent;
//!   when the callee answers it joins as participant `ID` (`joined` to the others); a call
//!   that fails tells the requesting handle `{"audiobridge":"event","room":R,"id":ID,
//!   "dial_failed":{"code":486,"reason":"Busy Here"}}`.
//! - **Dial-in**: a room created with `sip_extension` (a registry account's extension) opens
//!   that account's line; calls to it join the room after the room's PIN typed as DTMF and
//!   `#` when the room has a PIN (see [`crate::services::sip::room_route`]).
//!
//! A SIP participant is listed with `"sip": true` and the peer's `uri`. It mixes like any
//! G.711 or Opus participant (transcoded to the room's rate on the workers); the call's BYE
//! takes it out (`leaving`), and `kick`, `kick_all` or `destroy` send the BYE.

use std::sync::{Arc, Weak};

use bifrons_sip::rtp::RtpEndpoint;
use bifrons_sip::sdp::{negotiate, Direction, Negotiated};
use bifrons_sip::{Call, CallEvent, CallEvents, Codec, Sdp};
use serde_json::{json, Map, Value};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::errors::*;
use super::fields::{bool_of, str_of, u64_of, validate, Field, Id, IdMode, Kind};
use super::manage::check_room_secret;
use super::room::{Participant, ParticipantState, Room, CENTRE};
use super::Bridge;
use crate::config::SipConfig;
use crate::plugins::HandleRef;
use crate::services::rooms::sip_leg::{self, RtpEndpointSink};
use crate::services::rooms::NewParticipant;
use crate::services::sip::room_route::{
    AnsweredLeg, DialInMedia, RoomDialIn, RoomDoor, ROOM_CODECS,
};
use crate::services::sip::{open_account_line, AccountLine, RouteGuard, SipService, SipUri};
use crate::storage::{Storage, StorageError};

type Body = Map<String, Value>;

const DIAL: &[Field] = &[
    ("uri", Kind::Str, true),
    ("account", Kind::Str, true),
    ("secret", Kind::Str, false),
    ("display", Kind::Str, false),
    ("codec", Kind::Str, false),
    ("muted", Kind::Bool, false),
    ("volume", Kind::UInt, false),
];

/// What SIP participants need from the rest of the gateway.
pub struct SipDeps {
    /// Account lines and the inbound router.
    pub service: Arc<SipService>,
    /// The registry (accounts, trunks).
    pub storage: Storage,
    /// The `[sip]` section (addresses, RTP ports, timers).
    pub config: SipConfig,
}

impl SipDeps {
    fn media(&self) -> DialInMedia {
        DialInMedia {
            rtp_ip: self.config.local_ip,
            rtp_ports: self.config.rtp_port_min..=self.config.rtp_port_max,
        }
    }

    /// The open line of registry account `extension`.
    async fn line(&self, extension: &str, codecs: &[Codec]) -> AbResult<Arc<AccountLine>> {
        let account = match self.storage.accounts().get_by_extension(extension).await {
            Ok(a) => a,
            Err(StorageError::NotFound { .. }) => {
                return Err(AbError::new(
                    INVALID_ELEMENT,
                    format!("Invalid element (no account {extension})"),
                ))
            }
            Err(e) => return Err(AbError::new(UNKNOWN_ERROR, format!("Registry error: {e}"))),
        };
        let (line, _) =
            open_account_line(&self.service, &self.storage, &self.config, &account, codecs)
                .await
                .map_err(|e| {
                    tracing::warn!(account = %extension, error = %e, "audiobridge: account line not opened");
                    AbError::new(
                        UNKNOWN_ERROR,
                        format!("Error opening the line of account {extension}: {e}"),
                    )
                })?;
        Ok(line)
    }
}

/// A SIP participant's call, as its [`Participant`] holds it.
pub struct SipLeg {
    /// The peer's URI (the callee, or the caller's `From`).
    pub uri: String,
    /// The SIP Call-ID.
    pub call_id: String,
    stop: CancellationToken,
}

impl SipLeg {
    /// The participant left the room (kicked, room destroyed): the call is hung up.
    pub fn close(&self) {
        self.stop.cancel();
    }
}

/// A room's dial-in: the account line kept open and the route of its extension.
pub struct DialIn {
    /// The account's extension.
    pub extension: String,
    _route: RouteGuard,
    _line: Arc<AccountLine>,
}

/// The room side of dial-in.
struct Door {
    room: Weak<Room>,
    ids: IdMode,
}

impl Door {
    /// The room's PIN, while the room exists.
    fn pin(&self) -> Option<crate::auth::HashedSecret> {
        let room = self.room.upgrade()?;
        let pin = room.settings().pin.clone();
        pin
    }
}

#[async_trait::async_trait]
impl RoomDoor for Door {
    fn is_open(&self) -> bool {
        self.room
            .upgrade()
            .is_some_and(|r| !r.destroyed.load(std::sync::atomic::Ordering::Acquire))
    }

    fn needs_pin(&self) -> bool {
        self.pin().is_some()
    }

    async fn check_pin(&self, pin: &str) -> bool {
        let stored = self.pin();
        match stored {
            Some(stored) => stored.matches(pin).await,
            None => true,
        }
    }

    fn enter(&self, leg: AnsweredLeg) {
        let Some(room) = self.room.upgrade() else {
            return;
        };
        let ids = self.ids;
        tokio::spawn(async move {
            let AnsweredLeg {
                call,
                events,
                rtp,
                negotiated,
                caller,
            } = leg;
            let joining = Joining {
                room,
                ids,
                id: None,
                display: None,
                uri: caller,
                muted: false,
                volume: 100,
            };
            run_leg(
                joining,
                call,
                rtp,
                negotiated,
                LegEvents::Shared(events),
                None,
            )
            .await;
        });
    }
}

/// Opens the dial-in of `room` on registry account `extension`.
///
/// Errors: 484 for an unknown account, 499 when its line cannot be opened.
pub async fn open_dial_in(
    deps: &SipDeps,
    room: &Arc<Room>,
    ids: IdMode,
    extension: &str,
) -> AbResult<DialIn> {
    let line = deps.line(extension, &ROOM_CODECS).await?;
    let door = Arc::new(Door {
        room: Arc::downgrade(room),
        ids,
    });
    let route = deps
        .service
        .router
        .register(extension, Arc::new(RoomDialIn::new(door, deps.media())));
    tracing::info!(room = %room.id, %extension, "audiobridge room dial-in open");
    Ok(DialIn {
        extension: extension.to_string(),
        _route: route,
        _line: line,
    })
}

/// `dial`: calls `uri` through `account`'s line; the callee joins when it answers.
pub async fn dial(
    bridge: &Arc<Bridge>,
    requester: Option<HandleRef>,
    body: &Body,
) -> AbResult<Value> {
    validate(body, DIAL)?;
    let room_id = bridge.ids.require(body, "room")?;
    let room = bridge.room(&room_id)?;
    check_room_secret(&room, body).await?;
    let Some(deps) = &bridge.sip else {
        return Err(AbError::new(UNKNOWN_ERROR, "SIP is not available"));
    };
    let text = str_of(body, "uri").unwrap_or_default();
    let uri = SipUri::parse(text).ok_or_else(|| {
        AbError::new(
            INVALID_ELEMENT,
            format!("Invalid element (uri {text} is not a SIP URI)"),
        )
    })?;
    let codecs: Vec<Codec> = match str_of(body, "codec") {
        None => ROOM_CODECS.to_vec(),
        Some(name) => vec![match name.to_ascii_lowercase().as_str() {
            "opus" => Codec::Opus,
            "pcmu" => Codec::Pcmu,
            "pcma" => Codec::Pcma,
            _ => {
                return Err(AbError::new(
                    INVALID_ELEMENT,
                    "Invalid element (codec must opus, pcmu or pcma)",
                ))
            }
        }],
    };
    let account = str_of(body, "account").unwrap_or_default();
    let line = deps.line(account, &codecs).await?;
    let io = |e: &dyn std::fmt::Display| {
        tracing::warn!(error = %e, "audiobridge dial: RTP");
        AbError::new(UNKNOWN_ERROR, "Could not open an RTP port for the call")
    };
    let rtp = RtpEndpoint::bind(
        deps.config.local_ip,
        deps.config.rtp_port_min..=deps.config.rtp_port_max,
    )
    .await
    .map_err(|e| io(&e))?;
    let local = rtp.local_addr().map_err(|e| io(&e))?;
    let offer = Sdp::offer(
        local,
        &codecs,
        Direction::SendRecv,
        rand::random::<u32>().into(),
        1,
    );
    let mut call = line
        .ua
        .call(&uri.text, Some(offer))
        .await
        .map_err(|e| AbError::new(UNKNOWN_ERROR, format!("Error placing the call: {e}")))?;
    // The participant id is chosen now so that the requester can follow the call.
    let id = loop {
        let id = bridge.ids.random();
        if !room.participants().contains_key(&id) {
            break id;
        }
    };
    let call_id = call.id().to_string();
    let events = call.take_events();
    let joining = Joining {
        room: room.clone(),
        ids: bridge.ids,
        id: Some(id.clone()),
        display: str_of(body, "display").map(str::to_owned),
        uri: uri.text.clone(),
        muted: bool_of(body, "muted").unwrap_or(false),
        volume: u64_of(body, "volume").unwrap_or(100).min(10_000) as u32,
    };
    tracing::info!(room = %room.id, participant = %id, %call_id, uri = %uri.text, %account, "audiobridge dialing");
    tokio::spawn(follow_dial(
        joining,
        Arc::new(call),
        Arc::new(rtp),
        codecs,
        events,
        requester,
        line,
    ));
    Ok(json!({
        "audiobridge": "dialing",
        "room": room_id.to_json(),
        "id": id.to_json(),
        "call_id": call_id,
    }))
}

/// Who joins the room when a call is up.
struct Joining {
    room: Arc<Room>,
    ids: IdMode,
    id: Option<Id>,
    display: Option<String>,
    uri: String,
    muted: bool,
    volume: u32,
}

/// A call's events, read directly (dial-out) or from the ringing call's broadcast (dial-in).
enum LegEvents {
    Direct(CallEvents),
    Shared(broadcast::Receiver<CallEvent>),
}

impl LegEvents {
    async fn next(&mut self) -> Option<CallEvent> {
        match self {
            LegEvents::Direct(e) => e.next().await,
            LegEvents::Shared(e) => loop {
                match e.recv().await {
                    Ok(event) => return Some(event),
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            },
        }
    }
}

/// Points `rtp` at what `sdp` (the callee's answer, or a later re-offer) settled.
fn apply_remote(rtp: &RtpEndpoint, sdp: &Sdp, codecs: &[Codec]) -> Result<Negotiated, String> {
    let negotiated =
        negotiate(sdp, codecs, Direction::SendRecv, false).map_err(|e| e.to_string())?;
    rtp.apply(&negotiated);
    Ok(negotiated)
}

/// Follows a dialled call until it is answered (then it joins the room) or fails (the
/// requester is told). Holds the account line for the call's life.
async fn follow_dial(
    joining: Joining,
    call: Arc<Call>,
    rtp: Arc<RtpEndpoint>,
    codecs: Vec<Codec>,
    mut events: CallEvents,
    requester: Option<HandleRef>,
    _line: Arc<AccountLine>,
) {
    let mut negotiated = None;
    let failed = loop {
        match events.next().await {
            Some(CallEvent::RemoteSdp(sdp)) => match apply_remote(&rtp, &sdp, &codecs) {
                Ok(n) => negotiated = Some(n),
                Err(e) => {
                    tracing::info!(call_id = call.id(), error = %e, "audiobridge dial: the callee's media refused");
                    let _ = call.hangup().await;
                    break (488, "Not Acceptable Here".to_string());
                }
            },
            Some(CallEvent::Answered) => match negotiated.take() {
                Some(n) => {
                    run_leg(
                        joining,
                        call,
                        rtp,
                        n,
                        LegEvents::Direct(events),
                        Some(codecs),
                    )
                    .await;
                    return;
                }
                None => {
                    let _ = call.hangup().await;
                    break (488, "Not Acceptable Here".to_string());
                }
            },
            Some(CallEvent::Failed { code, reason }) => break (code, reason),
            Some(CallEvent::Ended(reason)) => break (487, format!("{reason:?}")),
            None => break (500, "Call gone".to_string()),
            Some(_) => {}
        }
    };
    let (code, reason) = failed;
    tracing::info!(room = %joining.room.id, call_id = call.id(), code, %reason, "audiobridge dial failed");
    if let Some(ctx) = requester.and_then(|h| h.upgrade()) {
        let mut event = json!({
            "audiobridge": "event",
            "room": joining.room.id.to_json(),
            "dial_failed": {"code": code, "reason": reason, "uri": joining.uri},
        });
        if let Some(id) = &joining.id {
            event["id"] = id.to_json();
        }
        ctx.push_event(None, event, None);
    }
}

/// An answered call as a participant of the room: in the mix until either side ends it.
/// `codecs`: what a re-offer may switch to (`None`: the negotiated codec only).
async fn run_leg(
    joining: Joining,
    call: Arc<Call>,
    rtp: Arc<RtpEndpoint>,
    negotiated: Negotiated,
    mut events: LegEvents,
    codecs: Option<Vec<Codec>>,
) {
    let room = joining.room;
    let call_id = call.id().to_string();
    let Some(codec) = sip_leg::mix_codec(negotiated.codec) else {
        tracing::info!(%call_id, codec = negotiated.codec.name(), "audiobridge: a SIP leg in a codec rooms do not mix");
        let _ = call.hangup().await;
        return;
    };
    let mix_id = room.next_mix_id();
    let (mut entry, input) = NewParticipant::new(mix_id, codec);
    entry.muted = joining.muted || room.muted.load(std::sync::atomic::Ordering::Relaxed);
    entry.gain = joining.volume as f32 / 100.0;
    entry.sink = Some(RtpEndpointSink::out_sink(rtp.clone(), codec));
    let stop = CancellationToken::new();
    let leg = SipLeg {
        uri: joining.uri.clone(),
        call_id: call_id.clone(),
        stop: stop.clone(),
    };
    let admitted = room.admit(joining.ids, joining.id, entry, |id| Participant {
        id,
        mix_id,
        codec,
        handle: None,
        input: input.clone(),
        state: std::sync::Mutex::new(ParticipantState {
            display: joining.display,
            muted: joining.muted,
            volume: joining.volume,
            spatial_position: room.audio.spatial.then_some(CENTRE),
        }),
        setup: true.into(),
        talking: Default::default(),
        has_sink: true.into(),
        plain: None,
        sip: Some(leg),
    });
    let participant = match admitted {
        Ok(p) => p,
        Err(e) => {
            tracing::info!(room = %room.id, %call_id, error = %e.message, "audiobridge: SIP leg not admitted, hanging up");
            let _ = call.hangup().await;
            return;
        }
    };
    let id = participant.id.clone();
    tracing::info!(room = %room.id, participant = %id, %call_id, uri = %joining.uri, codec = codec.name(), "audiobridge SIP participant joined");
    let pump = tokio::spawn(sip_leg::pump(
        rtp.clone(),
        negotiated.pt,
        input,
        stop.clone(),
        |_| {},
    ));
    let why = loop {
        tokio::select! {
            _ = stop.cancelled() => {
                break match call.hangup().await {
                    Ok(()) => "left the room: BYE sent".to_string(),
                    Err(e) => format!("left the room: BYE failed ({e})"),
                };
            }
            event = events.next() => match event {
                Some(CallEvent::Ended(reason)) => break format!("call ended ({reason:?})"),
                None => break "call gone".to_string(),
                Some(CallEvent::RemoteSdp(sdp) | CallEvent::Reinvited { sdp }) => {
                    let ours = codecs.clone().unwrap_or_else(|| vec![negotiated.codec]);
                    if let Err(e) = apply_remote(&rtp, &sdp, &ours) {
                        tracing::info!(%call_id, error = %e, "audiobridge: a SIP re-offer not applied");
                    }
                }
                Some(_) => {}
            },
        }
    };
    stop.cancel();
    let _ = pump.await;
    // Still listed when the peer hung up: out of the room, the others get `leaving`.
    let still = room
        .participants()
        .get(&id)
        .is_some_and(|p| Arc::ptr_eq(p, &participant));
    if still {
        room.remove(&id);
    }
    let sent = rtp.stats().sent.load(std::sync::atomic::Ordering::Relaxed);
    let received = rtp
        .stats()
        .received
        .load(std::sync::atomic::Ordering::Relaxed);
    tracing::info!(room = %room.id, participant = %id, %call_id, %why, sent, received, "audiobridge SIP participant left");
}
