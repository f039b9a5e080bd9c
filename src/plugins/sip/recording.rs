//! `recording`: the call's audio to Ogg/Opus files through `services::recording` (pages
//! flushed as written, one registry row per file, kind `call`): the browser's audio
//! (`audio`) and the SIP peer's (`peer_audio`, as the browser hears it) in separate files,
//! `sip/<call-id>-user.opus` and `sip/<call-id>-peer.opus`. Rows carry the call's caller and
//! callee (SIP URIs).

use serde_json::json;

use super::handle::{CallStatus, Registration, SipHandle};
use super::requests::{SipError, ERROR_UNKNOWN};
use super::{events, Op};
use crate::services::recording::OpusRecorder;

/// Owner of recordings of calls not made on a registry account.
const GUEST_OWNER: &str = "sip";

pub(super) async fn recording(
    op: &Op,
    start: bool,
    audio: bool,
    peer_audio: bool,
    tx: Option<&str>,
) -> Result<(), SipError> {
    let mut state = op.handle.state.lock().await;
    let call = state.call_in(CallStatus::InCall)?;
    let id = call.id.clone();
    let (caller, callee) = (call.caller.clone(), call.callee.clone());
    let owner = match &state.registration {
        Registration::Registered(r) => r.account.clone(),
        _ => None,
    }
    .unwrap_or_else(|| GUEST_OWNER.to_string());
    drop(state);
    if !start {
        stop(&op.handle).await;
        op.event(
            tx,
            events::result(Some(&id), "recordingupdated", json!({ "action": "stop" })),
            None,
        );
        return Ok(());
    }
    let bridge = op
        .handle
        .bridge()
        .ok_or_else(|| SipError::wrong_state("no media yet"))?;
    let mut open = op.handle.recordings.lock().await;
    if !open.is_empty() {
        return Err(SipError::wrong_state("already recording"));
    }
    let safe_id: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut opened: Vec<OpusRecorder> = Vec::new();
    for (wanted, side) in [(audio, "user"), (peer_audio, "peer")] {
        if !wanted {
            continue;
        }
        let name = format!("sip/{safe_id}-{side}.opus");
        match op
            .shared
            .recording
            .start_call_opus(&owner, &name, &caller, &callee)
            .await
        {
            Ok(r) => {
                tracing::info!(file = %r.row().meta.file_path, "sip call recording");
                if side == "user" {
                    *op.handle
                        .user_recorder
                        .write()
                        .unwrap_or_else(|e| e.into_inner()) = Some(r.sink());
                } else {
                    *bridge
                        .peer_recorder
                        .write()
                        .unwrap_or_else(|e| e.into_inner()) = Some(r.sink());
                }
                opened.push(r);
            }
            Err(e) => {
                open.extend(opened);
                drop(open);
                stop(&op.handle).await;
                return Err(SipError::new(
                    ERROR_UNKNOWN,
                    format!("Error starting recorder: {e}"),
                ));
            }
        }
    }
    open.extend(opened);
    drop(open);
    op.event(
        tx,
        events::result(
            Some(&id),
            "recordingupdated",
            json!({ "action": "start", "audio": audio, "peer_audio": peer_audio }),
        ),
        None,
    );
    Ok(())
}

/// Stops feeding and closes every open recording of the handle (last page, registry row).
pub(super) async fn stop(handle: &SipHandle) {
    *handle
        .user_recorder
        .write()
        .unwrap_or_else(|e| e.into_inner()) = None;
    if let Some(bridge) = handle.bridge() {
        *bridge
            .peer_recorder
            .write()
            .unwrap_or_else(|e| e.into_inner()) = None;
    }
    let open: Vec<OpusRecorder> = std::mem::take(&mut *handle.recordings.lock().await);
    for r in open {
        match r.finish().await {
            Ok(row) => tracing::info!(
                file = %row.meta.file_path,
                duration_ms = row.meta.duration_ms,
                "sip call recording saved"
            ),
            Err(e) => tracing::warn!(error = %e, "sip call recording not saved"),
        }
    }
}
