//! The Bifrons extension requests `publish` and `unpublish` of `janus.plugin.streaming` (Janus'
//! streaming plugin has no publishers): a janus.js handle sends its browser's offer and feeds
//! a mountpoint as a WHIP publisher does.
//!
//! `{"request":"publish","id":<mountpoint>,"secret":"…"}` or `{…,"key":"<stream key>"}` with a
//! JSEP offer → event `{"status":"publishing","id","codecs":[…]}` with the answer. The
//! mountpoint's `secret` (a mountpoint without one takes no `secret` publisher) or a stream key
//! bound to `id` (that mountpoint is created on the first publish, as for RTMP and WHIP) is
//! needed. `{"request":"unpublish"}` → `{"status":"unpublished","id"}`; a hangup also ends the
//! publish and sends that event. A publish made with a stream key ends when the key is revoked
//! or disabled (checked every [`KEY_CHECK_SECONDS`], as for RTMP and WHIP publishers): the
//! handle gets `{"status":"unpublished","id","reason":"stream key revoked"}` and its
//! PeerConnection closes.
//!
//! Errors: 453/454 for a missing or mistyped field (`id`, `secret`, `key`, the offer), 455 no
//! such mountpoint, 457 wrong or missing secret/key, 460 the handle already watches or
//! publishes (or does not publish, for `unpublish`) or the mountpoint has a publisher
//! already, 461 an offer without usable media, 470 anything else.

use std::sync::{Arc, Weak};

use serde_json::{json, Map, Value};

use super::errors::{self, validate, Kind, StreamingError};
use super::mountpoints::Mountpoints;
use super::publish::{
    claim, codec_names, key_revoked, release, report_live, stream_key, PublishError, PublishFeed,
    KEY_CHECK_SECONDS,
};
use super::viewer::Viewer;
use crate::media::{AnswerPlan, Jsep, JsepType, MediaKind};
use crate::plugins::{HandleCtx, PluginMessage};
use crate::storage::Storage;

/// What a request answers: the event's `result` and a JSEP.
pub type Outcome = Result<(Value, Option<Jsep>), StreamingError>;

fn refused(e: PublishError) -> StreamingError {
    let (code, message) = match e {
        PublishError::Unauthorized(why) => (errors::UNAUTHORIZED, format!("Unauthorized ({why})")),
        PublishError::NotFound => (errors::NO_SUCH_MOUNTPOINT, "No such mountpoint".into()),
        PublishError::BadOffer(why) => (errors::INVALID_SDP, why),
        PublishError::Busy(why) => (errors::INVALID_STATE, why),
        PublishError::Unavailable(why) => (errors::UNKNOWN_ERROR, why),
    };
    tracing::info!(code, error = %message, "streaming publish refused");
    StreamingError::new(code, message)
}

/// Checks the secret or key of a publish to `id`; returns the name a created mountpoint gets.
async fn authorize(
    mountpoints: &Mountpoints,
    storage: &Storage,
    id: u64,
    body: &Map<String, Value>,
) -> Result<String, PublishError> {
    if let Some(key) = body.get("key").and_then(Value::as_str) {
        let key = stream_key(storage, key).await?;
        if key.mountpoint_id() == id {
            return Ok(key.name);
        }
        return Err(if mountpoints.get(id).is_some() {
            PublishError::Unauthorized("stream key of another mountpoint")
        } else {
            PublishError::NotFound
        });
    }
    let mp = mountpoints.get(id).ok_or(PublishError::NotFound)?;
    let Some(secret) = mp.settings().secret else {
        return Err(PublishError::Unauthorized(
            "publishing needs the mountpoint's secret or a stream key",
        ));
    };
    let given = body.get("secret").and_then(Value::as_str);
    match given {
        Some(g) if secret.matches(g).await => Ok(mp.name.clone()),
        Some(_) => Err(PublishError::Unauthorized("wrong secret")),
        None => Err(PublishError::Unauthorized("missing secret or key")),
    }
}

/// `publish`: the offer's media feed mountpoint `id`.
pub async fn publish(
    mountpoints: &Mountpoints,
    storage: &Storage,
    viewer: &Arc<Viewer>,
    ctx: &Arc<HandleCtx>,
    body: &Map<String, Value>,
    message: &PluginMessage,
) -> Outcome {
    let id = errors::id(body)?;
    validate(
        body,
        &[
            ("secret", Kind::String, false),
            ("key", Kind::String, false),
        ],
    )?;
    if viewer.lock().mountpoint.is_some() {
        return Err(StreamingError::new(
            errors::INVALID_STATE,
            "Can't publish: this handle watches a mountpoint",
        ));
    }
    if viewer
        .publisher
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .is_some()
    {
        return Err(StreamingError::new(
            errors::INVALID_STATE,
            "Already publishing",
        ));
    }
    let offer = match message.jsep.as_ref() {
        Some(j) if j.kind == JsepType::Offer => j,
        Some(_) => {
            return Err(StreamingError::new(
                errors::INVALID_SDP,
                "The SDP of a publish request must be an offer",
            ))
        }
        None => {
            return Err(StreamingError::new(
                errors::MISSING_ELEMENT,
                "Missing element (jsep offer)",
            ))
        }
    };
    let name = authorize(mountpoints, storage, id, body)
        .await
        .map_err(refused)?;
    let claimed = claim(mountpoints, id, &name, &offer.sdp).map_err(refused)?;
    let mp = claimed.mountpoint;
    let narrowed = Jsep {
        sdp: claimed.offer,
        ..offer.clone()
    };
    let (answer, negotiated) = match ctx.answer_offer(&narrowed, &AnswerPlan::default()).await {
        Ok(a) => a,
        Err(e) => {
            release(&mp);
            return Err(refused(PublishError::BadOffer(format!(
                "Error negotiating: {e}"
            ))));
        }
    };
    let Some(sender) = ctx.media_sender() else {
        release(&mp);
        return Err(refused(PublishError::Unavailable(
            "No PeerConnection for the publisher".into(),
        )));
    };
    let feed = PublishFeed::start(mp.clone(), &negotiated, sender);
    if !MediaKind::ALL.iter().any(|k| feed.relays(*k)) {
        feed.end("nothing negotiated");
        return Err(refused(PublishError::BadOffer(
            "the answer settled no audio or video this mountpoint takes".into(),
        )));
    }
    report_live(mountpoints, feed.clone(), ctx.peer(), "publish", name);
    *viewer.publisher.lock().unwrap_or_else(|e| e.into_inner()) = Some(feed.clone());
    if let Some(key) = body.get("key").and_then(Value::as_str) {
        ctx.spawn(watch_key(
            storage.clone(),
            Arc::downgrade(viewer),
            Arc::downgrade(ctx),
            feed,
            key.to_owned(),
        ));
    }
    Ok((
        json!({ "status": "publishing", "id": id, "codecs": codec_names(&mp) }),
        Some(answer),
    ))
}

/// Checks every [`KEY_CHECK_SECONDS`] that the stream key `key` of the handle's publish `feed`
/// is still in the registry and enabled; when revoked or disabled, the publish ends, the
/// handle is told and its PeerConnection closes. Ends with the publish.
async fn watch_key(
    storage: Storage,
    viewer: Weak<Viewer>,
    ctx: Weak<HandleCtx>,
    feed: Arc<PublishFeed>,
    key: String,
) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(KEY_CHECK_SECONDS));
    tick.tick().await;
    loop {
        tick.tick().await;
        let Some(viewer) = viewer.upgrade() else {
            return;
        };
        let current = |v: &Viewer| {
            v.publisher
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .as_ref()
                .is_some_and(|f| Arc::ptr_eq(f, &feed))
        };
        if !current(&viewer) {
            return;
        }
        if !key_revoked(&storage, &key, feed.mountpoint.id).await {
            continue;
        }
        // Still this publish (not one started since on the same handle): end it.
        let ours = {
            let mut slot = viewer.publisher.lock().unwrap_or_else(|e| e.into_inner());
            match slot.as_ref() {
                Some(f) if Arc::ptr_eq(f, &feed) => slot.take(),
                _ => None,
            }
        };
        let Some(ours) = ours else {
            return;
        };
        ours.end("stream key revoked");
        let id = ours.mountpoint.id;
        tracing::info!(
            mountpoint = id,
            "stream key revoked or disabled: publish ended"
        );
        if let Some(ctx) = ctx.upgrade() {
            ctx.push_event(
                None,
                super::event(
                    json!({ "status": "unpublished", "id": id, "reason": "stream key revoked" }),
                ),
                None,
            );
            ctx.close_pc();
        }
        return;
    }
}

/// Ends the handle's publish, if any: `Some(mountpoint id)` when there was one.
pub fn end(viewer: &Viewer, why: &str) -> Option<u64> {
    let feed = viewer
        .publisher
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take()?;
    feed.end(why);
    Some(feed.mountpoint.id)
}

/// `unpublish`: the publish ends and the PeerConnection closes.
pub fn unpublish(viewer: &Viewer, ctx: &HandleCtx) -> Outcome {
    let Some(id) = end(viewer, "unpublish") else {
        return Err(StreamingError::new(
            errors::INVALID_STATE,
            "Can't unpublish: not publishing",
        ));
    };
    ctx.close_pc();
    Ok((json!({ "status": "unpublished", "id": id }), None))
}
