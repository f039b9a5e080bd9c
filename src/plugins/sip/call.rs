//! Outgoing calls (`call`), the events of a call in progress, and the in-call requests
//! (`hangup`, `hold`/`unhold`, `dtmf_info`).

use std::sync::Arc;

use bifrons_sip::rtp::RtpEndpoint;
use bifrons_sip::sdp::{negotiate, srtp_keys};
use bifrons_sip::{CallEvent, CallEvents, DtmfVia, EndReason, Sdp};
use serde_json::json;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::handle::{ActiveCall, CallStatus, Registration};
use super::media::{Bridge, BrowserAudio, LegPlan};
use super::requests::{
    CallRequest, SipError, SipUri, ERROR_INVALID_ADDRESS, ERROR_IO_ERROR, ERROR_MISSING_SDP,
    ERROR_SIP_STACK,
};
use super::{events, Op};
use crate::media::{
    AnswerPlan, Codec, Direction, Jsep, JsepType, MediaKind, Negotiated, OfferPlan, StreamPlan,
};

/// Where a call's SIP events come from: the call itself (outgoing), or the ring group's
/// broadcast (incoming).
pub(super) enum EventSource {
    Direct(CallEvents),
    Shared(broadcast::Receiver<CallEvent>),
}

impl EventSource {
    async fn next(&mut self) -> Option<CallEvent> {
        match self {
            EventSource::Direct(e) => e.next().await,
            EventSource::Shared(rx) => loop {
                match rx.recv().await {
                    Ok(e) => return Some(e),
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "call events lagged");
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            },
        }
    }
}

/// The audio plan for the browser's side: Opus, plus RFC 4733 events at 48 kHz.
pub(super) fn browser_plan() -> StreamPlan {
    StreamPlan::new(
        Direction::SendRecv,
        vec![Codec::Opus, Codec::TelephoneEvent { clock_rate: 48_000 }],
    )
}

/// The browser's Opus and DTMF payload types from what was negotiated.
pub(super) fn browser_audio(negotiated: &Negotiated) -> Option<BrowserAudio> {
    let audio = negotiated.first(MediaKind::Audio)?;
    if audio.codec != Some(Codec::Opus) {
        return None;
    }
    Some(BrowserAudio {
        opus_pt: audio.pt.0,
        dtmf_pt: audio.dtmf_pt.map(|p| p.0),
    })
}

/// Binds the SIP-side RTP endpoint of a call.
pub(super) async fn bind_rtp(op: &Op) -> Result<Arc<RtpEndpoint>, SipError> {
    let c = &op.shared.config;
    RtpEndpoint::bind(c.local_ip, c.rtp_port_min..=c.rtp_port_max)
        .await
        .map(Arc::new)
        .map_err(|e| {
            SipError::new(
                ERROR_IO_ERROR,
                format!("Could not allocate RTP/RTCP ports: {e}"),
            )
        })
}

/// Where a request for `uri` goes: the URI itself, or for an account on a trunk without
/// registration the same user at the trunk's address.
pub(super) fn target_of(registered: &super::handle::Registered, uri: &SipUri) -> String {
    match (&registered.via_trunk, &uri.user) {
        (Some(trunk), Some(user)) => format!("sip:{user}@{trunk}"),
        _ => uri.text.clone(),
    }
}

fn sdp_has_audio(sdp: &str) -> bool {
    sdp.lines()
        .any(|l| l.starts_with("m=audio ") && !l.starts_with("m=audio 0 "))
}

pub(super) async fn call(
    op: &Op,
    request: CallRequest,
    jsep: Option<Jsep>,
    tx: Option<&str>,
) -> Result<(), SipError> {
    let mut state = op.handle.state.lock().await;
    let Registration::Registered(registered) = &state.registration else {
        return Err(SipError::wrong_state("register first"));
    };
    if state.call.is_some() {
        return Err(SipError::wrong_state("already in a call?"));
    }
    let ua = registered.ua.clone();
    let caller = registered.username.clone();
    let (codecs, dtmf_info) = (registered.codecs.clone(), registered.dtmf_info);
    // The account's trunk may require SRTP: the stronger demand wins.
    let srtp = request.srtp.max(registered.srtp);
    let target = target_of(registered, &request.uri);
    let jsep = jsep
        .filter(|j| j.kind == JsepType::Offer)
        .ok_or_else(|| SipError::new(ERROR_MISSING_SDP, "Missing SDP"))?;
    if !sdp_has_audio(&jsep.sdp) {
        return Err(SipError::new(
            ERROR_MISSING_SDP,
            "Error parsing SDP: no audio stream",
        ));
    }
    let plan = AnswerPlan {
        audio: Some(browser_plan()),
        video: None,
    };
    let (answer, negotiated) = op
        .ctx
        .answer_offer(&jsep, &plan)
        .await
        .map_err(|e| SipError::new(ERROR_MISSING_SDP, format!("Error parsing SDP: {e}")))?;
    let browser = browser_audio(&negotiated)
        .ok_or_else(|| SipError::new(ERROR_MISSING_SDP, "Error parsing SDP: no Opus audio"))?;
    let rtp = bind_rtp(op).await?;
    let local = rtp
        .local_addr()
        .map_err(|e| SipError::new(ERROR_IO_ERROR, e.to_string()))?;
    let mut offer = Sdp::offer(
        local,
        &codecs,
        bifrons_sip::Direction::SendRecv,
        rand::random::<u32>().into(),
        1,
    );
    if let Some(mode) = srtp {
        let suites = request.srtp_profile.as_ref().map_or(
            &bifrons_sip::srtp::CryptoSuite::ALL[..],
            std::slice::from_ref,
        );
        offer.secure(mode, suites);
    }
    let local_sdp = srtp.map(|_| offer.clone());
    let mut sip_call = ua
        .call_with_headers(&target, Some(offer), request.headers.clone())
        .await
        .map_err(|e| match e {
            bifrons_sip::SipError::InvalidUri(u) => {
                SipError::new(ERROR_INVALID_ADDRESS, format!("Invalid user address {u}"))
            }
            other => SipError::new(ERROR_SIP_STACK, format!("Error placing the call: {other}")),
        })?;
    let events = sip_call.take_events();
    let id = sip_call.id().to_string();
    let stop = CancellationToken::new();
    state.call = Some(ActiveCall {
        id: id.clone(),
        call: Arc::new(sip_call),
        status: CallStatus::Calling,
        transaction: tx.map(str::to_string),
        ringing: None,
        rtp: Some(rtp),
        local_sdp,
        answer: Some(answer),
        held: false,
        codecs,
        dtmf_info,
        stop: stop.clone(),
        caller,
        callee: request.uri.text.clone(),
        autoaccept_reinvites: request.autoaccept_reinvites,
        update_pending: false,
    });
    op.handle.summarize(&state);
    drop(state);
    tracing::info!(call_id = %id, uri = %request.uri.text, srtp = srtp.map(|m| m.janus_name()), "sip call placed");
    op.event(tx, events::simple(Some(&id), "calling"), None);
    let task_op = op.clone();
    let callee = request.uri.text.clone();
    op.ctx.spawn(async move {
        follow(
            task_op,
            id,
            callee,
            browser,
            EventSource::Direct(events),
            stop,
        )
        .await;
    });
    Ok(())
}

/// Starts media once the PBX's description is known: the bridge, passthrough or transcoding.
fn start_bridge(
    op: &Op,
    call: &ActiveCall,
    sdp: &Sdp,
    browser: BrowserAudio,
) -> Result<(), String> {
    let rtp = call.rtp.clone().ok_or("no RTP endpoint")?;
    let direction = if call.held {
        bifrons_sip::Direction::SendOnly
    } else {
        bifrons_sip::Direction::SendRecv
    };
    let negotiated = negotiate(sdp, &call.codecs, direction, false).map_err(|e| e.to_string())?;
    // SDES-SRTP: our key of the line the PBX picked (or re-offered), and its own.
    let srtp = match &call.local_sdp {
        Some(local) => Some(srtp_keys(local, sdp).map_err(|e| e.to_string())?),
        None => None,
    };
    if let Some(bridge) = op.handle.bridge() {
        // A later description (re-INVITE, hold): same codec family, new address or direction.
        if let Some(keys) = &srtp {
            super::media::secure(bridge.rtp(), keys.as_ref())?;
        }
        bridge.rtp().apply(&negotiated);
        return Ok(());
    }
    let sender = op.ctx.media_sender().ok_or("no PeerConnection")?;
    let weak = op.ctx.weak();
    let call_id = call.id.clone();
    let info = call.dtmf_info.then(|| call.call.clone());
    let bridge = Bridge::start(
        rtp,
        &negotiated,
        srtp.flatten().as_ref(),
        sender,
        browser,
        info,
        &op.shared.workers,
        move |digit| {
            if let Some(ctx) = weak.upgrade() {
                ctx.push_event(
                    None,
                    events::result(
                        Some(&call_id),
                        "dtmf",
                        json!({ "signal": digit.to_string(), "duration": 160 }),
                    ),
                    None,
                );
            }
        },
    )?;
    let counter = match bridge.plan() {
        LegPlan::Passthrough => &op.handle.passthrough_legs,
        LegPlan::Transcode(_) => &op.handle.transcoded_legs,
    };
    counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    tracing::info!(call_id = %call.id, leg = bridge.plan().name(), codec = negotiated.codec.name(), remote = %negotiated.remote, srtp = bridge.rtp().srtp_suite().map(|s| s.name()), "sip media bridged");
    op.handle.set_bridge(Some(bridge));
    Ok(())
}

/// Follows a call's SIP events until it ends, turning them into Janus events.
pub(super) async fn follow(
    op: Op,
    id: String,
    peer: String,
    browser: BrowserAudio,
    mut source: EventSource,
    stop: CancellationToken,
) {
    let mut answer_sent = false;
    loop {
        let event = tokio::select! {
            _ = stop.cancelled() => return,
            e = source.next() => e,
        };
        let Some(event) = event else {
            finish(&op, &id, None, 200, "Session Terminated").await;
            return;
        };
        let mut state = op.handle.state.lock().await;
        let Some(call) = state.call.as_mut().filter(|c| c.id == id) else {
            return;
        };
        let tx = call.transaction.clone();
        let tx = tx.as_deref();
        match event {
            CallEvent::Trying | CallEvent::Redirected { .. } | CallEvent::LocalHold(_) => {}
            CallEvent::Ringing { early_media } => {
                op.event(tx, events::simple(Some(&id), "ringing"), None);
                if early_media && op.handle.bridge().is_some() {
                    if let Some(answer) = call.answer.take() {
                        answer_sent = true;
                        op.event(
                            tx,
                            events::result(Some(&id), "progress", json!({ "username": peer })),
                            Some(answer),
                        );
                    }
                }
            }
            CallEvent::RemoteSdp(sdp) => {
                if let Err(e) = start_bridge(&op, call, &sdp, browser) {
                    tracing::warn!(call_id = %id, error = %e, "PBX media refused; hanging up");
                    let sip = call.call.clone();
                    drop(state);
                    let _ = sip.hangup().await;
                    finish(&op, &id, tx, 488, "Not Acceptable Here").await;
                    return;
                }
            }
            CallEvent::Answered => {
                if call.status == CallStatus::InCall {
                    continue; // an inbound call: `accept` already said `accepted`
                }
                call.status = CallStatus::InCall;
                let answer = call.answer.take();
                op.handle.summarize(&state);
                drop(state);
                let jsep = if answer_sent { None } else { answer };
                op.event(
                    tx,
                    events::result(Some(&id), "accepted", json!({ "username": peer })),
                    jsep,
                );
            }
            CallEvent::Failed { code, reason } => {
                drop(state);
                finish(&op, &id, tx, code, &reason).await;
                return;
            }
            CallEvent::Ended(reason) => {
                let (code, text) = match reason {
                    EndReason::RemoteBye => (200, "BYE"),
                    EndReason::Local => (200, "Session Terminated"),
                    EndReason::Cancelled => (487, "Request Terminated"),
                    EndReason::AckTimeout => (408, "Request Timeout"),
                };
                drop(state);
                finish(&op, &id, tx, code, text).await;
                return;
            }
            CallEvent::Dtmf { digit, via } => op.event(
                None,
                events::result(
                    Some(&id),
                    "dtmf",
                    json!({
                        "sender": peer,
                        "signal": digit.to_string(),
                        "duration": 160,
                        "via": if via == DtmfVia::Info { "info" } else { "rtp" },
                    }),
                ),
                None,
            ),
            CallEvent::Info {
                from,
                display_name,
                content_type,
                body,
            } => {
                let mut fields = json!({
                    "sender": from,
                    "type": content_type,
                    "content": String::from_utf8_lossy(&body),
                });
                if let Some(name) = display_name {
                    fields["displayname"] = json!(name);
                }
                op.event(None, events::result(Some(&id), "info", fields), None)
            }
            CallEvent::Message {
                from,
                display_name,
                content_type,
                body,
            } => {
                drop(state);
                op.event(
                    None,
                    message_event(Some(&id), from, display_name, content_type, &body),
                    None,
                )
            }
            CallEvent::Notify {
                event,
                substate,
                content_type,
                body,
            } => {
                tracing::info!(call_id = %id, %event, %substate, "sip NOTIFY");
                op.event(
                    tx,
                    events::result(
                        Some(&id),
                        "notify",
                        json!({
                            "notify": event,
                            "substate": substate,
                            "content-type": content_type,
                            "content": String::from_utf8_lossy(&body),
                        }),
                    ),
                    None,
                )
            }
            CallEvent::Reinvited { sdp } => {
                let direction = sdp.audio().map(|m| m.direction);
                tracing::info!(call_id = %id, ?direction, autoaccept = call.autoaccept_reinvites, "PBX re-INVITE answered by the gateway");
                if call.autoaccept_reinvites || call.status != CallStatus::InCall {
                    continue;
                }
                drop(state);
                offer_update(&op, &id, &peer).await;
            }
            CallEvent::Refer { target } => op.event(
                None,
                events::result(Some(&id), "transfer", json!({ "refer_to": target })),
                None,
            ),
            CallEvent::RemoteHold | CallEvent::RemoteResume => {
                let held = matches!(event, CallEvent::RemoteHold);
                tracing::info!(call_id = %id, held, "PBX changed the call's direction");
            }
        }
    }
}

/// The `message` event of an incoming MESSAGE (Janus' fields).
pub(super) fn message_event(
    call_id: Option<&str>,
    from: String,
    display_name: Option<String>,
    content_type: String,
    body: &[u8],
) -> serde_json::Value {
    let mut fields = json!({
        "sender": from,
        "content_type": content_type,
        "content": String::from_utf8_lossy(body),
    });
    if let Some(name) = display_name {
        fields["displayname"] = json!(name);
    }
    events::result(call_id, "message", fields)
}

/// `autoaccept_reinvites: false`: after the gateway answered a PBX re-INVITE, offers the
/// browser a renegotiation of its own leg (`updatingcall` with a gateway offer); the answer
/// comes back in an `update`.
async fn offer_update(op: &Op, id: &str, peer: &str) {
    let plan = OfferPlan {
        audio: Some(browser_plan()),
        video: None,
        data: false,
    };
    match op.ctx.create_offer(&plan).await {
        Ok(offer) => {
            let mut state = op.handle.state.lock().await;
            let Some(call) = state.call.as_mut().filter(|c| c.id == id) else {
                return;
            };
            call.update_pending = true;
            drop(state);
            op.event(
                None,
                events::result(Some(id), "updatingcall", json!({ "username": peer })),
                Some(offer),
            );
        }
        Err(e) => {
            tracing::warn!(call_id = %id, error = %e, "cannot offer the browser the PBX's update")
        }
    }
}

/// Ends the handle's call `id` (if it is still the current one): media stopped, `hangup`
/// event, PeerConnection closed as Janus does.
pub(super) async fn finish(op: &Op, id: &str, tx: Option<&str>, code: u16, reason: &str) {
    let mut state = op.handle.state.lock().await;
    if state.call.as_ref().is_none_or(|c| c.id != id) {
        return;
    }
    let call = state.call.take();
    op.handle.summarize(&state);
    drop(state);
    // Recordings close before the bridge goes (its peer side feeds one).
    super::recording::stop(&op.handle).await;
    op.handle.set_bridge(None);
    if let Some(c) = call {
        c.stop.cancel();
    }
    tracing::info!(call_id = %id, code, %reason, "sip call over");
    op.event(tx, events::hangup(Some(id), code, reason), None);
    op.ctx.close_pc();
}

pub(super) async fn hangup(op: &Op, tx: Option<&str>) -> Result<(), SipError> {
    let mut state = op.handle.state.lock().await;
    let Some(call) = state.call.as_mut() else {
        return Err(SipError::wrong_state("not in a call?"));
    };
    if call.status == CallStatus::Incoming {
        drop(state);
        return super::incoming::decline(op, 603, tx).await;
    }
    call.status = CallStatus::HangingUp;
    call.transaction = tx.map(str::to_string);
    let (sip, id) = (call.call.clone(), call.id.clone());
    op.handle.summarize(&state);
    drop(state);
    op.event(tx, events::simple(Some(&id), "hangingup"), None);
    if let Err(e) = sip.hangup().await {
        tracing::debug!(error = %e, "hangup of a call already gone");
        finish(op, &id, tx, 200, "Session Terminated").await;
    }
    Ok(())
}

pub(super) async fn hold(op: &Op, hold: bool, tx: Option<&str>) -> Result<(), SipError> {
    let mut state = op.handle.state.lock().await;
    let call = state.call_in(CallStatus::InCall)?;
    let (sip, id) = (call.call.clone(), call.id.clone());
    call.held = hold;
    op.handle.summarize(&state);
    drop(state);
    op.event(
        tx,
        events::simple(Some(&id), if hold { "holding" } else { "resuming" }),
        None,
    );
    let result = if hold {
        sip.hold().await
    } else {
        sip.unhold().await
    };
    result.map_err(|e| SipError::new(ERROR_SIP_STACK, format!("re-INVITE failed: {e}")))
}

pub(super) async fn dtmf_info(
    op: &Op,
    digit: char,
    duration_ms: u32,
    tx: Option<&str>,
) -> Result<(), SipError> {
    let mut state = op.handle.state.lock().await;
    let call = state.call_in(CallStatus::InCall)?;
    let (sip, id) = (call.call.clone(), call.id.clone());
    drop(state);
    let body = bifrons_sip::dtmf::dtmf_relay_body(digit, duration_ms).into_bytes();
    let code = sip
        .send_info("application/dtmf-relay", body)
        .await
        .map_err(|e| SipError::new(ERROR_SIP_STACK, format!("INFO failed: {e}")))?;
    tracing::info!(call_id = %id, %digit, code, "DTMF sent as SIP INFO");
    op.event(tx, events::simple(Some(&id), "dtmfsent"), None);
    Ok(())
}
