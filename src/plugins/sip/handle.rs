//! Per-handle state of the SIP plugin: the registration, the one call, and the media bridge
//! the packet path reads.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use bifrons_sip::rtp::RtpEndpoint;
use bifrons_sip::{Call, Ua};
use serde_json::{json, Value};
use tokio_util::sync::{CancellationToken, DropGuard};

use super::media::Bridge;
use super::requests::SipError;
use crate::media::Jsep;
use crate::services::sip::{RingingCall, RouteGuard};

/// How the handle is registered.
pub enum Registration {
    /// Not registered (`register` first).
    None,
    /// A REGISTER is under way.
    Registering,
    /// Registered (or a guest): calls can be made.
    Registered(Registered),
}

/// A registered handle.
pub struct Registered {
    /// The identity, as Janus reports it in `registered` (a SIP URI).
    pub username: String,
    /// Whether a REGISTER was sent (false for guests).
    pub register_sent: bool,
    /// The user agent calls go out through: the handle's own, or its account's.
    pub ua: Arc<Ua>,
    /// The registry account, for `type: account`.
    pub account: Option<String>,
    /// For an account on a trunk without registration: the trunk's `host:port`, where calls
    /// are sent (the dialled URI's host is replaced by it).
    pub via_trunk: Option<String>,
    /// Codecs offered and accepted towards SIP, in preference order (the trunk's, for an
    /// account).
    pub codecs: Vec<bifrons_sip::Codec>,
    /// Send the browser's DTMF as SIP INFO instead of RFC 4733 (a trunk in `info` mode).
    pub dtmf_info: bool,
    /// SDES-SRTP the account's trunk requires (its `srtp` column); the stronger of it and a
    /// request's own `srtp` applies.
    pub srtp: Option<bifrons_sip::srtp::SrtpMode>,
    /// The account's shared line, kept open while this handle is registered.
    pub _line: Option<Arc<crate::services::sip::AccountLine>>,
    /// Stops the handle's user-agent event task (own UA) when dropped.
    pub _events: Option<DropGuard>,
    /// Keeps the handle in the account's ring group while registered.
    pub _route: Option<RouteGuard>,
}

/// Where a call stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallStatus {
    /// INVITE sent, no final answer yet.
    Calling,
    /// An inbound call rings this handle.
    Incoming,
    /// Answered both ways.
    InCall,
    /// `hangup` sent, waiting for the end.
    HangingUp,
}

impl CallStatus {
    fn name(self) -> &'static str {
        match self {
            CallStatus::Calling => "calling",
            CallStatus::Incoming => "incomingcall",
            CallStatus::InCall => "incall",
            CallStatus::HangingUp => "hangingup",
        }
    }
}

/// The handle's call.
pub struct ActiveCall {
    /// The Call-ID.
    pub id: String,
    /// The SIP call.
    pub call: Arc<Call>,
    /// Where it stands.
    pub status: CallStatus,
    /// The transaction of the `call`/`accept` that later call events carry.
    pub transaction: Option<String>,
    /// The ringing group, for an inbound call.
    pub ringing: Option<Arc<RingingCall>>,
    /// Our RTP endpoint towards the PBX.
    pub rtp: Option<Arc<RtpEndpoint>>,
    /// With SDES-SRTP: our first SDP to the PBX (the offer of an outgoing call, the answer
    /// of an inbound one), for the keys of its `a=crypto` lines.
    pub local_sdp: Option<bifrons_sip::Sdp>,
    /// Outgoing: the answer to the browser's offer, sent with `progress` or `accepted`.
    pub answer: Option<Jsep>,
    /// Put on hold by us.
    pub held: bool,
    /// Codecs to negotiate with the SIP peer.
    pub codecs: Vec<bifrons_sip::Codec>,
    /// Browser DTMF goes out as SIP INFO.
    pub dtmf_info: bool,
    /// Cancels the call's event task.
    pub stop: CancellationToken,
    /// Who called (a SIP URI): the handle's identity for outgoing calls, `From` for incoming.
    pub caller: String,
    /// Who was called: the dialled URI, or the inbound call's `To`.
    pub callee: String,
    /// Answer the PBX's re-INVITEs without the browser (`autoaccept_reinvites`, default
    /// true); false also sends the browser `updatingcall`.
    pub autoaccept_reinvites: bool,
    /// An `updatingcall` offer waits for the browser's answer in an `update`.
    pub update_pending: bool,
}

/// Signalling state, behind the handle's own async lock (never held on the packet path).
pub struct State {
    /// Registration.
    pub registration: Registration,
    /// The one call.
    pub call: Option<ActiveCall>,
}

impl State {
    /// The call, if it is in `status`; else Janus' "wrong state" error (447) with what was
    /// expected: "not in a call?" or "not invited?", as `janus_sip.c` words it.
    pub fn call_in(&mut self, status: CallStatus) -> Result<&mut ActiveCall, SipError> {
        let expected = match status {
            CallStatus::Incoming => "not invited?",
            _ => "not in a call?",
        };
        self.call
            .as_mut()
            .filter(|c| c.status == status)
            .ok_or_else(|| SipError::wrong_state(expected))
    }
}

/// The per-handle state of `janus.plugin.sip`.
pub struct SipHandle {
    /// Signalling state.
    pub state: tokio::sync::Mutex<State>,
    /// The media bridge of the current call, read per packet (this handle's lock only).
    pub bridge: RwLock<Option<Arc<Bridge>>>,
    /// Calls bridged without transcoding (the PBX answered Opus).
    pub passthrough_legs: AtomicU64,
    /// Calls bridged through a transcoding job.
    pub transcoded_legs: AtomicU64,
    /// A snapshot for `handle_info` (no await there).
    pub summary: RwLock<Value>,
    /// Where the browser's audio is recorded, while a `recording` with `audio` runs.
    pub user_recorder: RwLock<Option<crate::services::recording::RecorderSink>>,
    /// Open recordings of the call (browser side, peer side), to close on stop or hangup.
    pub recordings: tokio::sync::Mutex<Vec<crate::services::recording::OpusRecorder>>,
    /// The SIP call to end if the PeerConnection goes away (read from `hangup_media`, which
    /// cannot wait for the signalling lock); kept in step with `state` by [`Self::summarize`].
    pub live_call: RwLock<Option<Arc<Call>>>,
}

impl SipHandle {
    /// A new, unregistered handle.
    pub fn new() -> Self {
        Self {
            state: tokio::sync::Mutex::new(State {
                registration: Registration::None,
                call: None,
            }),
            bridge: RwLock::new(None),
            passthrough_legs: AtomicU64::new(0),
            transcoded_legs: AtomicU64::new(0),
            summary: RwLock::new(json!({ "registration": "none", "call": null })),
            live_call: RwLock::new(None),
            user_recorder: RwLock::new(None),
            recordings: tokio::sync::Mutex::new(Vec::new()),
        }
    }

    /// The current bridge, if media flows.
    pub fn bridge(&self) -> Option<Arc<Bridge>> {
        self.bridge
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Installs (or removes) the bridge.
    pub fn set_bridge(&self, bridge: Option<Arc<Bridge>>) {
        *self.bridge.write().unwrap_or_else(|e| e.into_inner()) = bridge;
    }

    /// Refreshes the `handle_info` snapshot and the live call from `state`.
    pub fn summarize(&self, state: &State) {
        *self.live_call.write().unwrap_or_else(|e| e.into_inner()) = state
            .call
            .as_ref()
            // A call still ringing may ring other tabs too: only `decline` ends it.
            .filter(|c| matches!(c.status, CallStatus::Calling | CallStatus::InCall))
            .map(|c| c.call.clone());
        let registration = match &state.registration {
            Registration::None => json!("none"),
            Registration::Registering => json!("registering"),
            Registration::Registered(r) => json!({
                "username": r.username,
                "register_sent": r.register_sent,
                "account": r.account,
            }),
        };
        let call = state
            .call
            .as_ref()
            .map(|c| json!({ "call_id": c.id, "status": c.status.name(), "held": c.held }));
        *self.summary.write().unwrap_or_else(|e| e.into_inner()) =
            json!({ "registration": registration, "call": call });
    }

    /// What `handle_info` shows: registration, call, and the media legs.
    pub fn info(&self) -> Value {
        let mut info = self
            .summary
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let media = self.bridge().map(|b| {
            let s = b.stats();
            json!({
                "leg": b.plan().name(),
                "packets_from_browser": s.from_browser.load(Ordering::Relaxed),
                "packets_from_sip": s.from_sip.load(Ordering::Relaxed),
                "packets_to_browser": s.to_browser.load(Ordering::Relaxed),
                "packets_to_sip": s.to_sip.load(Ordering::Relaxed),
                "concealed": s.concealed.load(Ordering::Relaxed),
                "srtp": b.srtp_info(),
            })
        });
        info["media"] = media.unwrap_or(Value::Null);
        info["passthrough_legs"] = json!(self.passthrough_legs.load(Ordering::Relaxed));
        info["transcoded_legs"] = json!(self.transcoded_legs.load(Ordering::Relaxed));
        info
    }
}

impl Default for SipHandle {
    fn default() -> Self {
        Self::new()
    }
}
