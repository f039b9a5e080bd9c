//! The streaming plugin's RTMP egress requests (a Bifrons extension; Janus has none):
//!
//! - `{"request":"egress_start","egress":"<registry target name or id>"[,"secret"]}`: starts
//!   an egress target of the registry on the mountpoint the target names;
//!   `{"request":"egress_start","id":<mountpoint>,"url":"rtmp://host[:port]/app","key":"…"
//!   [,"secret"]}`: starts an inline target. Optional `video_bitrate` (bit/s, VP8 → H.264)
//!   and `audio_bitrate` (bit/s, AAC). The mountpoint's secret is needed when it has one.
//!   Answer `{"streaming":"egress_started","egress":{id,mountpoint,target,state,…}}`.
//! - `{"request":"egress_stop","egress_id":N[,"secret"]}` → `{"streaming":"egress_stopped",…}`.
//! - `{"request":"egress_list"[,"id":<mountpoint>]}` → `{"streaming":"egress_list","list":[…]}`.
//!
//! All three also work through the Admin API's `message_plugin`. From a handle, the state
//! changes of the egresses it started come as events:
//! `{"streaming":"event","result":{"event":"egress","id":N,"mountpoint":M,"state":"live"}}`
//! (`reason` with `reconnecting` and `failed`). Keys are never logged nor returned.
//!
//! Errors: 453/454 (fields), 455 (no mountpoint), 457 (secret), 460 (a second egress to the
//! same target, unknown or disabled registry target, no egress of that id, a mountpoint
//! without H.264/VP8/Opus), 454 for a destination the egress rule refuses
//! ([`crate::storage::validate::egress_destination`]: not `rtmp://`/`rtmps://`, no host or
//! application, no key where the URL has no stream name).

use std::sync::Arc;

use serde_json::{json, Map, Value};

use super::errors::{self, validate, Kind, StreamingError};
use super::mountpoints::Mountpoints;
use super::{check_secret, no_such, Streaming};
use crate::media::Codec;
use crate::plugins::HandleCtx;
use crate::services::egress::{EgressError, EgressOptions, MountpointMedia, Target, VideoInput};

/// Whether `request` is one of the egress requests.
pub fn is_egress(request: &str) -> bool {
    matches!(request, "egress_start" | "egress_stop" | "egress_list")
}

/// The resolver the egress service uses to find a mountpoint by id (digits) or name.
pub fn resolver(mountpoints: Arc<Mountpoints>) -> crate::services::egress::Resolver {
    Arc::new(move |id_or_name: &str| {
        let entry = match id_or_name.parse::<u64>() {
            Ok(id) => mountpoints.get(id),
            Err(_) => mountpoints.all().into_iter().find(|m| m.name == id_or_name),
        }?;
        Some(media(&entry))
    })
}

fn media(entry: &super::mountpoints::MountpointEntry) -> MountpointMedia {
    let streams = entry.streams();
    MountpointMedia {
        id: entry.id,
        hub: entry.hub.clone(),
        video: streams.iter().find_map(|s| match s.codec {
            Codec::H264 { .. } => Some(VideoInput::H264),
            Codec::Vp8 => Some(VideoInput::Vp8),
            _ => None,
        }),
        opus: streams.iter().any(|s| s.codec == Codec::Opus),
    }
}

fn refused(e: EgressError) -> StreamingError {
    let code = match e {
        EgressError::Target(_) => errors::INVALID_ELEMENT,
        EgressError::NoMountpoint(_) => errors::NO_SUCH_MOUNTPOINT,
        EgressError::Start(_) => errors::UNKNOWN_ERROR,
        _ => errors::INVALID_STATE,
    };
    StreamingError::new(code, e.to_string())
}

fn options(body: &Map<String, Value>) -> EgressOptions {
    let mut o = EgressOptions::default();
    let rate = |f: &str| {
        body.get(f)
            .and_then(Value::as_u64)
            .map(|v| v.clamp(16_000, 20_000_000) as u32)
    };
    if let Some(v) = rate("video_bitrate") {
        o.video_bitrate = v;
    }
    if let Some(v) = rate("audio_bitrate") {
        o.audio_bitrate = v.min(320_000);
    }
    o
}

impl Streaming {
    /// Serves an egress request; `ctx` is the handle it came from (`None`: Admin API).
    pub(super) async fn egress(
        &self,
        request: &str,
        body: &Map<String, Value>,
        ctx: Option<&Arc<HandleCtx>>,
    ) -> Value {
        let outcome = match request {
            "egress_start" => self.egress_start(body, ctx).await,
            "egress_stop" => self.egress_stop(body).await,
            _ => self.egress_list(body),
        };
        outcome.unwrap_or_else(super::error)
    }

    async fn egress_start(
        &self,
        body: &Map<String, Value>,
        ctx: Option<&Arc<HandleCtx>>,
    ) -> Result<Value, StreamingError> {
        validate(
            body,
            &[
                ("url", Kind::String, false),
                ("key", Kind::String, false),
                ("secret", Kind::String, false),
                ("video_bitrate", Kind::PositiveInteger, false),
                ("audio_bitrate", Kind::PositiveInteger, false),
            ],
        )?;
        let service = &self.egress;
        let (target, media) = match body.get("egress") {
            Some(v) => {
                let name = match v {
                    Value::String(s) if !s.is_empty() => s.clone(),
                    Value::Number(n) if n.is_u64() => n.to_string(),
                    _ => {
                        return Err(StreamingError::new(
                            errors::INVALID_ELEMENT,
                            "Invalid element type (egress should be a target name or id)",
                        ))
                    }
                };
                service.registered(&name).await.map_err(refused)?
            }
            None => {
                let id = errors::id(body)?;
                validate(body, &[("url", Kind::String, true)])?;
                let entry = self.mountpoints.get(id).ok_or_else(|| no_such(id))?;
                let url = errors::string(body, "url").unwrap_or_default();
                let key = errors::string(body, "key");
                let target = Target::new(&url, key.as_deref()).map_err(|e| refused(e.into()))?;
                (target, media(&entry))
            }
        };
        let entry = self
            .mountpoints
            .get(media.id)
            .ok_or_else(|| no_such(media.id))?;
        check_secret(&entry.settings().secret, body, "secret").await?;
        // Subscribed before the start, so the handle sees the first state too.
        let events = ctx.map(|_| service.subscribe());
        let info = service
            .start(&media, target, options(body))
            .map_err(refused)?;
        if let (Some(ctx), Some(events)) = (ctx, events) {
            ctx.spawn(forward(events, info.id, ctx.weak()));
        }
        Ok(json!({ "streaming": "egress_started", "egress": info }))
    }

    async fn egress_stop(&self, body: &Map<String, Value>) -> Result<Value, StreamingError> {
        validate(
            body,
            &[
                ("egress_id", Kind::PositiveInteger, true),
                ("secret", Kind::String, false),
            ],
        )?;
        let id = body.get("egress_id").and_then(Value::as_u64).unwrap_or(0);
        let info = self
            .egress
            .get(id)
            .ok_or_else(|| refused(EgressError::NotFound(id)))?;
        if let Some(entry) = self.mountpoints.get(info.mountpoint) {
            check_secret(&entry.settings().secret, body, "secret").await?;
        }
        let info = self.egress.stop(id).map_err(refused)?;
        Ok(json!({ "streaming": "egress_stopped", "egress_id": id, "egress": info }))
    }

    fn egress_list(&self, body: &Map<String, Value>) -> Result<Value, StreamingError> {
        validate(body, &[("id", Kind::PositiveInteger, false)])?;
        let mountpoint = body.get("id").and_then(Value::as_u64);
        Ok(json!({ "streaming": "egress_list", "list": self.egress.list(mountpoint) }))
    }
}

/// Pushes the state changes of egress `id` to the handle that started it, until the egress
/// is over or the handle is gone.
async fn forward(
    mut events: tokio::sync::broadcast::Receiver<crate::services::egress::EgressEvent>,
    id: u64,
    handle: crate::plugins::HandleRef,
) {
    use tokio::sync::broadcast::error::RecvError;
    loop {
        let event = match events.recv().await {
            Ok(e) if e.id == id => e,
            Ok(_) | Err(RecvError::Lagged(_)) => continue,
            Err(RecvError::Closed) => return,
        };
        let Some(ctx) = handle.upgrade() else { return };
        let mut result = json!({ "event": "egress" });
        if let (Value::Object(r), Ok(Value::Object(e))) =
            (&mut result, serde_json::to_value(&event))
        {
            r.extend(e);
        }
        ctx.push_event(
            None,
            json!({ "streaming": "event", "result": result }),
            None,
        );
        if event.state.is_final() {
            return;
        }
    }
}
