//! Requests inside a call's dialog, and MESSAGE out of it: `message` (RFC 3428), `info`
//! (RFC 6086), `transfer` (blind REFER, RFC 3515) and `update` (the browser renegotiates, or
//! answers an `updatingcall`), with Janus' events (`messagesent` then `messagedelivery`,
//! `infosent`, `transferring` then `notify`, `updating` then `accepted`, `updated`).

use serde_json::json;

use super::call::{browser_plan, target_of};
use super::handle::{CallStatus, Registration};
use super::register::failure_status;
use super::requests::{MessageRequest, SipError, SipUri, ERROR_MISSING_SDP};
use super::{events, Op};
use crate::media::{AnswerPlan, Jsep, JsepType};

/// The SIP status a failed in-dialog or out-of-dialog request is reported with.
fn status_of(error: &bifrons_sip::SipError) -> (u16, String) {
    match error {
        // The call went away meanwhile (RFC 3261 §12.2.2: no such dialog).
        bifrons_sip::SipError::InvalidState(_) | bifrons_sip::SipError::Closed => {
            (481, "Call/Transaction Does Not Exist".into())
        }
        other => failure_status(other),
    }
}

/// A Call-ID for an out-of-dialog MESSAGE: 24 random alphanumerics.
fn fresh_call_id() -> String {
    use rand::distributions::{Alphanumeric, DistString};
    Alphanumeric.sample_string(&mut rand::thread_rng(), 24)
}

/// `message`: in the current call's dialog, or to `uri` out of dialog (registered handles
/// only). `messagesent` at once, `messagedelivery {code, reason}` with the final response.
pub(super) async fn message(
    op: &Op,
    request: MessageRequest,
    tx: Option<&str>,
) -> Result<(), SipError> {
    let mut state = op.handle.state.lock().await;
    let MessageRequest {
        content,
        content_type,
        uri,
        headers,
        call_id,
    } = request;
    let body = content.into_bytes();
    let (call_id, sending) = match uri {
        None => {
            let call = state.call_in(CallStatus::InCall)?;
            let (sip, id) = (call.call.clone(), call.id.clone());
            let ct = content_type.clone();
            let send = async move { sip.send_message(&ct, body, headers).await };
            (id, futures::future::Either::Left(send))
        }
        Some(uri) => {
            let Registration::Registered(registered) = &state.registration else {
                return Err(SipError::wrong_state("not registered"));
            };
            let ua = registered.ua.clone();
            let target = target_of(registered, &uri);
            let ct = content_type.clone();
            let id = call_id.unwrap_or_else(fresh_call_id);
            let sent_id = Some(id.clone());
            let send = async move {
                ua.message_with_headers(&target, &ct, body, sent_id, headers)
                    .await
            };
            (id, futures::future::Either::Right(send))
        }
    };
    drop(state);
    tracing::info!(%call_id, %content_type, "sip MESSAGE sent");
    let id = Some(call_id.as_str());
    op.event(
        tx,
        events::result(id, "messagesent", json!({ "call_id": call_id })),
        None,
    );
    let (code, reason) = match sending.await {
        Ok(status) => status,
        Err(e) => status_of(&e),
    };
    tracing::info!(%call_id, code, %reason, "sip MESSAGE delivery");
    op.event(
        tx,
        events::result(
            id,
            "messagedelivery",
            json!({ "code": code, "reason": reason }),
        ),
        None,
    );
    Ok(())
}

/// `info`: a SIP INFO of `content_type` in the call's dialog; `infosent` once sent (its final
/// status goes to the log, as Janus does).
pub(super) async fn info(
    op: &Op,
    content_type: String,
    content: String,
    headers: Vec<(String, String)>,
    tx: Option<&str>,
) -> Result<(), SipError> {
    let mut state = op.handle.state.lock().await;
    let call = state.call_in(CallStatus::InCall)?;
    let (sip, id) = (call.call.clone(), call.id.clone());
    drop(state);
    op.event(tx, events::simple(Some(&id), "infosent"), None);
    match sip.info(&content_type, content.into_bytes(), headers).await {
        Ok((code, reason)) => {
            tracing::info!(call_id = %id, %content_type, code, %reason, "sip INFO answered")
        }
        Err(e) => tracing::warn!(call_id = %id, error = %e, "sip INFO failed"),
    }
    Ok(())
}

/// `transfer`: asks the peer to call `uri` (REFER); `transferring` at once. The peer's
/// NOTIFYs about its new call become `notify` events (see `call::follow`).
pub(super) async fn transfer(op: &Op, uri: SipUri, tx: Option<&str>) -> Result<(), SipError> {
    let mut state = op.handle.state.lock().await;
    let call = state.call_in(CallStatus::InCall)?;
    let (sip, id) = (call.call.clone(), call.id.clone());
    drop(state);
    op.event(
        tx,
        events::result(Some(&id), "transferring", json!({ "refer_to": uri.text })),
        None,
    );
    match sip.refer(&uri.text).await {
        Ok((code, _)) if code < 300 => {
            tracing::info!(call_id = %id, target = %uri.text, code, "sip transfer accepted by the peer")
        }
        Ok((code, reason)) => {
            tracing::warn!(call_id = %id, target = %uri.text, code, %reason, "sip transfer refused by the peer")
        }
        Err(e) => tracing::warn!(call_id = %id, error = %e, "sip transfer failed"),
    }
    Ok(())
}

/// `update`. With an offer (the browser renegotiates its leg, e.g. an ICE restart): the
/// gateway answers it, says `updating`, sends the PBX a re-INVITE as Janus does (the SIP
/// leg's description is unchanged: a session refresh), and gives the answer with `accepted`
/// once the PBX replied. With an answer: the reply to our `updatingcall` offer (the core
/// applied it already): `updated`.
pub(super) async fn update(op: &Op, jsep: Option<Jsep>, tx: Option<&str>) -> Result<(), SipError> {
    let mut state = op.handle.state.lock().await;
    let call = state.call_in(CallStatus::InCall)?;
    let id = call.id.clone();
    let jsep = jsep.ok_or_else(|| SipError::new(ERROR_MISSING_SDP, "Missing SDP update"))?;
    if jsep.kind == JsepType::Answer {
        if !std::mem::take(&mut call.update_pending) {
            return Err(SipError::new(
                ERROR_MISSING_SDP,
                "SDP type answer is incompatible with session status incall",
            ));
        }
        drop(state);
        tracing::info!(call_id = %id, "browser answered the updatingcall offer");
        op.event(tx, events::simple(Some(&id), "updated"), None);
        return Ok(());
    }
    let peer = if call.ringing.is_some() {
        call.caller.clone()
    } else {
        call.callee.clone()
    };
    let sip = call.call.clone();
    drop(state);
    let plan = AnswerPlan {
        audio: Some(browser_plan()),
        video: None,
    };
    let (answer, _) = op
        .ctx
        .answer_offer(&jsep, &plan)
        .await
        .map_err(|e| SipError::new(ERROR_MISSING_SDP, format!("Error parsing SDP: {e}")))?;
    op.event(tx, events::simple(Some(&id), "updating"), None);
    match sip.reoffer(None).await {
        Ok(_) => tracing::info!(call_id = %id, "browser renegotiated; PBX re-INVITE answered"),
        // The browser's leg stands on its own: its answer goes back whatever the PBX said.
        Err(e) => {
            tracing::warn!(call_id = %id, error = %e, "re-INVITE after the browser's update failed")
        }
    }
    op.event(
        tx,
        events::result(Some(&id), "accepted", json!({ "username": peer })),
        Some(answer),
    );
    Ok(())
}
