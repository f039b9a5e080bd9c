//! Inbound calls: ringing a handle (`incomingcall` with the gateway's own Opus offer), and
//! `accept`/`decline`. A call can ring several handles (an account's tabs): the first accept
//! wins and the others get `hangup` "Call completed elsewhere".

use std::sync::Arc;

use bifrons_sip::{Direction, Sdp};
use serde_json::json;
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;

use super::call::{bind_rtp, browser_audio, browser_plan, follow, EventSource};
use super::handle::{ActiveCall, CallStatus, Registration};
use super::media::{Bridge, LegPlan};
use super::register::SIP_CODECS;
use super::requests::{
    SipError, ERROR_IO_ERROR, ERROR_MISSING_SDP, ERROR_SIP_STACK, ERROR_TOO_STRICT,
};
use super::{events, Op};
use crate::media::{JsepType, OfferPlan};
use crate::services::sip::{RingState, RingingCall};
use bifrons_sip::CallEvent;

/// Rings this handle with `ringing`: subscribes now (before the caller's events flow), then
/// offers the browser the call on a task of the handle.
pub(super) fn ring(op: &Op, ringing: Arc<RingingCall>) {
    let (state, events) = ringing.subscribe();
    let op = op.clone();
    let ctx = op.ctx.clone();
    ctx.spawn(async move { ring_task(op, ringing, state, events).await });
}

async fn ring_task(
    op: Op,
    ringing: Arc<RingingCall>,
    mut ring_state: watch::Receiver<RingState>,
    events: broadcast::Receiver<CallEvent>,
) {
    let id = ringing.id().to_string();
    let stop = CancellationToken::new();
    {
        let mut state = op.handle.state.lock().await;
        if state.call.is_some() {
            drop(state);
            tracing::info!(call_id = %id, caller = %ringing.caller, "busy: inbound call not offered");
            op.event(
                None,
                events::result(
                    Some(&id),
                    "missed_call",
                    json!({ "caller": ringing.caller, "callee": ringing.callee }),
                ),
                None,
            );
            ringing.decline(486).await;
            return;
        }
        let Some(audio) = ringing.offer.as_ref().and_then(Sdp::audio) else {
            drop(state);
            tracing::warn!(call_id = %id, "inbound call without an audio offer refused");
            ringing.decline(488).await;
            return;
        };
        if audio.is_savp() && audio.crypto.is_empty() {
            drop(state);
            tracing::warn!(call_id = %id, refused_lines = audio.crypto_refused, "inbound RTP/SAVP call without a usable crypto line refused");
            ringing.decline(488).await;
            return;
        }
        let (codecs, dtmf_info) = match &state.registration {
            Registration::Registered(r) => (r.codecs.clone(), r.dtmf_info),
            _ => (SIP_CODECS.to_vec(), false),
        };
        state.call = Some(ActiveCall {
            id: id.clone(),
            call: ringing.call.clone(),
            status: CallStatus::Incoming,
            transaction: None,
            ringing: Some(ringing.clone()),
            rtp: None,
            local_sdp: None,
            answer: None,
            held: false,
            codecs,
            dtmf_info,
            stop: stop.clone(),
            caller: ringing.caller.clone(),
            callee: ringing.callee.clone(),
            autoaccept_reinvites: true,
            update_pending: false,
        });
        op.handle.summarize(&state);
    }
    let plan = OfferPlan {
        audio: Some(browser_plan()),
        video: None,
        data: false,
    };
    let offer = match op.ctx.create_offer(&plan).await {
        Ok(o) => o,
        Err(e) => {
            tracing::warn!(call_id = %id, error = %e, "cannot offer the inbound call to the browser");
            drop_call(&op, &id).await;
            ringing.decline(500).await;
            return;
        }
    };
    tracing::info!(call_id = %id, caller = %ringing.caller, callee = %ringing.callee, "inbound call ringing");
    let mut result = json!({ "username": ringing.caller, "callee": ringing.callee });
    // The caller's SDES-SRTP, as Janus says it: RTP/SAVP mandatory, crypto in RTP/AVP optional.
    if let Some(mode) = ringing
        .offer
        .as_ref()
        .and_then(Sdp::audio)
        .and_then(|a| a.srtp_mode())
    {
        result["srtp"] = json!(mode.janus_name());
    }
    op.event(
        None,
        events::result(Some(&id), "incomingcall", result),
        Some(offer),
    );
    // The ring phase: someone takes the call, or it goes away.
    loop {
        let now = ring_state.borrow_and_update().clone();
        match now {
            RingState::Ringing => {}
            RingState::Taken(winner) if winner == op.ctx.handle_id().0 => break,
            RingState::Taken(_) => {
                if drop_call(&op, &id).await {
                    op.event(
                        None,
                        events::hangup(Some(&id), 200, "Call completed elsewhere"),
                        None,
                    );
                    op.ctx.close_pc();
                }
                return;
            }
            RingState::Gone(code, reason) => {
                if drop_call(&op, &id).await {
                    op.event(
                        None,
                        events::result(
                            Some(&id),
                            "missed_call",
                            json!({ "caller": ringing.caller, "callee": ringing.callee }),
                        ),
                        None,
                    );
                    op.event(None, events::hangup(Some(&id), code, &reason), None);
                    op.ctx.close_pc();
                }
                return;
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            changed = ring_state.changed() => if changed.is_err() { return },
        }
    }
    // Ours: `accept` set the bridge up; follow the call to its end.
    let Some(browser) = op.ctx.negotiated().as_ref().and_then(browser_audio) else {
        return;
    };
    follow(
        op,
        id,
        ringing.caller.clone(),
        browser,
        EventSource::Shared(events),
        stop,
    )
    .await;
}

/// Forgets the handle's call `id`; whether it was still there.
async fn drop_call(op: &Op, id: &str) -> bool {
    let mut state = op.handle.state.lock().await;
    if state.call.as_ref().is_none_or(|c| c.id != id) {
        return false;
    }
    state.call = None;
    op.handle.summarize(&state);
    true
}

pub(super) async fn accept(
    op: &Op,
    jsep: Option<crate::media::Jsep>,
    autoaccept_reinvites: bool,
    srtp: Option<bifrons_sip::srtp::SrtpMode>,
    tx: Option<&str>,
) -> Result<(), SipError> {
    let mut state = op.handle.state.lock().await;
    // The account's trunk may require SRTP: the stronger demand wins.
    let srtp = match &state.registration {
        Registration::Registered(r) => srtp.max(r.srtp),
        _ => srtp,
    };
    let call = state.call_in(CallStatus::Incoming)?;
    if jsep.as_ref().is_none_or(|j| j.kind != JsepType::Answer) {
        return Err(SipError::new(ERROR_MISSING_SDP, "Missing SDP"));
    }
    let browser = op
        .ctx
        .negotiated()
        .as_ref()
        .and_then(browser_audio)
        .ok_or_else(|| SipError::new(ERROR_MISSING_SDP, "Error parsing SDP: no Opus audio"))?;
    let ringing = call
        .ringing
        .clone()
        .ok_or_else(|| SipError::wrong_state("no caller?"))?;
    let offer = ringing
        .offer
        .clone()
        .ok_or_else(|| SipError::wrong_state("no caller SDP?"))?;
    let rtp = bind_rtp(op).await?;
    let local = rtp
        .local_addr()
        .map_err(|e| SipError::new(ERROR_IO_ERROR, e.to_string()))?;
    let (mut answer, negotiated) = Sdp::answer(
        &offer,
        &call.codecs,
        local,
        Direction::SendRecv,
        rand::random::<u32>().into(),
    )
    .map_err(|e| {
        SipError::new(
            ERROR_MISSING_SDP,
            format!("Error negotiating with the caller: {e}"),
        )
    })?;
    // SDES-SRTP is answered whenever the caller offers it; `sdes_mandatory` insists on it.
    let keys = Sdp::answer_srtp(&mut answer, &offer, srtp).map_err(|_| {
        SipError::new(
            ERROR_TOO_STRICT,
            "Can't accept the call: SDES-SRTP required, but caller didn't offer it",
        )
    })?;
    // On before the answer leaves: the caller may send media as soon as it has it.
    super::media::secure(&rtp, keys.as_ref()).map_err(|e| SipError::new(ERROR_SIP_STACK, e))?;
    if !ringing.claim(op.ctx.handle_id().0) {
        return Err(SipError::wrong_state("call taken elsewhere"));
    }
    let srtp_answer = keys.as_ref().map(|_| answer.clone());
    if let Err(e) = ringing.call.answer_with_sdp(answer).await {
        return Err(SipError::new(
            ERROR_SIP_STACK,
            format!("Error answering: {e}"),
        ));
    }
    let sender = op
        .ctx
        .media_sender()
        .ok_or_else(|| SipError::wrong_state("no PeerConnection"))?;
    let weak = op.ctx.weak();
    let call_id = call.id.clone();
    let dtmf_id = call_id.clone();
    let info = call.dtmf_info.then(|| call.call.clone());
    let bridge = Bridge::start(
        rtp.clone(),
        &negotiated,
        keys.as_ref(),
        sender,
        browser,
        info,
        &op.shared.workers,
        move |digit| {
            if let Some(ctx) = weak.upgrade() {
                ctx.push_event(
                    None,
                    events::result(
                        Some(&dtmf_id),
                        "dtmf",
                        json!({ "signal": digit.to_string(), "duration": 160 }),
                    ),
                    None,
                );
            }
        },
    )
    .map_err(|e| SipError::new(ERROR_SIP_STACK, e))?;
    let counter = match bridge.plan() {
        LegPlan::Passthrough => &op.handle.passthrough_legs,
        LegPlan::Transcode(_) => &op.handle.transcoded_legs,
    };
    counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    tracing::info!(call_id = %call_id, leg = bridge.plan().name(), srtp = keys.as_ref().map(|k| k.suite.name()), "inbound call accepted");
    op.handle.set_bridge(Some(bridge));
    call.status = CallStatus::InCall;
    call.autoaccept_reinvites = autoaccept_reinvites;
    call.rtp = Some(rtp);
    call.local_sdp = srtp_answer;
    call.transaction = tx.map(str::to_string);
    let caller = ringing.caller.clone();
    op.handle.summarize(&state);
    drop(state);
    op.event(
        tx,
        events::result(Some(&call_id), "accepted", json!({ "username": caller })),
        None,
    );
    Ok(())
}

pub(super) async fn decline(op: &Op, code: u16, tx: Option<&str>) -> Result<(), SipError> {
    let mut state = op.handle.state.lock().await;
    let call = state.call_in(CallStatus::Incoming)?;
    let ringing = call.ringing.clone();
    let id = call.id.clone();
    call.stop.cancel();
    state.call = None;
    op.handle.summarize(&state);
    drop(state);
    op.event(
        tx,
        events::result(Some(&id), "declining", json!({ "code": code })),
        None,
    );
    if let Some(r) = ringing {
        r.decline(code).await;
    }
    op.event(tx, events::hangup(Some(&id), code, "Declined"), None);
    op.ctx.close_pc();
    Ok(())
}
