//! `janus.plugin.streaming`: mountpoints fed by RTMP publishers (OBS, ffmpeg, with a stream key
//! of the registry) or by RTP on UDP ports, watched by WebRTC viewers through a gateway offer.
//!
//! The plugin is the Janus face: requests and events as Janus' streaming plugin has them
//! (`list`, `info`, `create`, `destroy`, `enable`, `disable`, `watch`, `start`, `pause`,
//! `stop`, `configure`, `switch`; error codes 450-470). The media path goes through
//! [`crate::services::streams`]: each source publishes into its mountpoint's fan-out, which
//! keeps the keyframe cache and hands every packet to each viewer's [`viewer::ViewerSink`].
//! AAC is transcoded to Opus on the codec workers.
//!
//! Browsers publish too: over WHIP ([`whip`], on the WHEP listener) and with the Bifrons
//! extension requests `publish`/`unpublish` ([`publish_request`]); both feed the mountpoint
//! through [`publish::PublishFeed`].

mod audio_job;
mod create;
mod data_source;
mod egress;
pub mod errors;
mod h264_profile;
mod ingest_guard;
mod mountpoints;
mod permanent;
mod publish;
pub mod publish_offer;
mod publish_request;
mod recording;
mod reencode;
mod room_source;
mod rtcp_source;
mod rtmp_ingest;
mod rtp_header;
mod rtp_ports;
mod rtp_source;
mod video_recording;
mod viewer;
mod vp8;
mod whep;
mod whip;

use std::net::IpAddr;
use std::sync::Arc;

use futures::future::BoxFuture;
use serde_json::{json, Map, Value};

use self::errors::{boolean, validate, Kind, StreamingError};
use self::mountpoints::{media_signature, MountpointEntry, Mountpoints};
use self::viewer::{Viewer, ViewerSink};
use super::host::RegisteredPlugin;
use super::{
    AttachError, HandleCtx, Plugin, PluginDescriptor, PluginHost, PluginMessage, PluginResult,
};
use crate::auth::HashedSecret;
use crate::media::{
    AnswerPlan, Codec, Direction, JsepType, MediaKind, OfferPlan, RtcpFeedback, StreamPlan,
};
use crate::services::streams::StreamSink;

pub use rtmp_ingest::plausible_key;

/// The streaming plugin.
pub struct Streaming {
    descriptor: PluginDescriptor,
    mountpoints: Arc<Mountpoints>,
    /// Address RTP mountpoints bind their ports on.
    rtp_iface: IpAddr,
    /// Where recordings go.
    recording: crate::services::recording::RecordingService,
    /// Open recordings, by mountpoint.
    recordings: recording::Recordings,
    /// The registry, where permanent mountpoints are kept.
    storage: crate::storage::Storage,
    /// RTMP egress of mountpoints (`egress_start`, `egress_stop`, `egress_list`).
    egress: Arc<crate::services::egress::EgressService>,
}

/// Starts the plugin: the mountpoint table, and the RTMP server when `[rtmp] enabled`.
pub fn factory(host: &PluginHost) -> BoxFuture<'_, anyhow::Result<RegisteredPlugin>> {
    Box::pin(async move {
        let mountpoints = Arc::new(Mountpoints::new(
            host.services.streams.clone(),
            host.services.workers.clone(),
        ));
        host.services
            .egress
            .set_resolver(egress::resolver(mountpoints.clone()));
        room_source::register(host, &mountpoints);
        mountpoints.set_status(host.services.status.clone());
        let rtp_iface = IpAddr::from([0, 0, 0, 0]);
        let restored = permanent::restore(&host.storage, &mountpoints, rtp_iface).await;
        if restored > 0 {
            tracing::info!(count = restored, "permanent mountpoints restored");
        }
        if host.config.rtmp.enabled {
            rtmp_ingest::start(
                &host.config.rtmp,
                host.storage.clone(),
                mountpoints.clone(),
                host.services.workers.clone(),
                host.services.status.clone(),
                host.shutdown.clone(),
            )
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "RTMP server on {}:{}: {e}",
                    host.config.rtmp.bind,
                    host.config.rtmp.port
                )
            })?;
        }
        if host.config.whep.enabled {
            let addr = std::net::SocketAddr::new(host.config.whep.bind, host.config.whep.port);
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| anyhow::anyhow!("WHEP listener on {addr}: {e}"))?;
            tracing::info!(addr = %listener.local_addr()?, "WHEP listening");
            let backend = Arc::new(whep::Whep::new(mountpoints.clone(), host.media.clone()));
            let whip = Arc::new(whip::Whip::new(
                mountpoints.clone(),
                host.media.clone(),
                host.storage.clone(),
            ));
            // WHIP ingest (`/whip/...`) shares the WHEP listener.
            let router = crate::web::whep::router(backend).merge(crate::web::whip::router(whip));
            let stop = host.shutdown.clone();
            tokio::spawn(async move {
                let _ = axum::serve(listener, router)
                    .with_graceful_shutdown(async move { stop.cancelled().await })
                    .await;
            });
        }
        Ok(RegisteredPlugin::new(Streaming {
            descriptor: PluginDescriptor {
                package: "janus.plugin.streaming",
                name: "Bifrons Streaming plugin",
                author: "Bifrons",
                description: "Relays RTMP and RTP sources to WebRTC viewers",
                version: 1,
                version_string: "0.0.1",
            },
            mountpoints,
            rtp_iface,
            recording: host.services.recording.clone(),
            recordings: recording::Recordings::default(),
            storage: host.storage.clone(),
            egress: host.services.egress.clone(),
        }))
    })
}

fn error(e: StreamingError) -> Value {
    tracing::debug!(code = e.code, error = %e.message, "streaming request refused");
    e.to_json()
}

fn event(result: Value) -> Value {
    json!({ "streaming": "event", "result": result })
}

/// `JANUS_CHECK_SECRET`: with a secret set, the field must be there (453), a string (454) and
/// right (457).
async fn check_secret(
    stored: &Option<HashedSecret>,
    body: &Map<String, Value>,
    field: &str,
) -> Result<(), StreamingError> {
    let Some(stored) = stored else { return Ok(()) };
    validate(body, &[(field, Kind::String, true)])?;
    let given = body.get(field).and_then(Value::as_str).unwrap_or_default();
    if stored.matches(given).await {
        Ok(())
    } else {
        Err(StreamingError::new(
            errors::UNAUTHORIZED,
            format!("Unauthorized (wrong {field})"),
        ))
    }
}

fn no_such(id: u64) -> StreamingError {
    StreamingError::new(
        errors::NO_SUCH_MOUNTPOINT,
        format!("No such mountpoint/stream {id}"),
    )
}

impl Streaming {
    fn lookup(&self, body: &Map<String, Value>) -> Result<Arc<MountpointEntry>, StreamingError> {
        let id = errors::id(body)?;
        self.mountpoints.get(id).ok_or_else(|| no_such(id))
    }

    /// The requests Janus answers synchronously (also through the Admin API); `None` for the
    /// others.
    async fn synchronous(&self, request: &str, body: &Map<String, Value>) -> Option<Value> {
        let outcome = match request {
            "list" => Ok(self.list()),
            "info" => self.info(body).await,
            "create" => self.create(body).await,
            "destroy" => self.destroy(body).await,
            "enable" | "disable" => self.enable(body, request == "enable").await,
            "recording" => self.record(body).await,
            "kick_all" => self.kick_all(body).await,
            "edit" => self.edit(body).await,
            _ => return None,
        };
        Some(outcome.unwrap_or_else(error))
    }

    fn list(&self) -> Value {
        let list: Vec<Value> = self
            .mountpoints
            .all()
            .iter()
            .filter(|m| !m.settings().is_private)
            .map(|m| m.list_json())
            .collect();
        json!({ "streaming": "list", "list": list })
    }

    async fn info(&self, body: &Map<String, Value>) -> Result<Value, StreamingError> {
        let mp = self.lookup(body)?;
        let admin = match (
            &mp.settings().secret,
            body.get("secret").and_then(Value::as_str),
        ) {
            (None, _) => true,
            (Some(s), Some(given)) => s.matches(given).await,
            (Some(_), None) => false,
        };
        Ok(json!({ "streaming": "info", "info": mp.info_json(admin) }))
    }

    /// `create`; with `permanent: true` the mountpoint is also stored in the registry (and
    /// removed again if that fails, so what the reply says is what a restart brings back).
    async fn create(&self, body: &Map<String, Value>) -> Result<Value, StreamingError> {
        validate(body, &[("permanent", Kind::Boolean, false)])?;
        let save = boolean(body, "permanent").unwrap_or(false);
        if save {
            permanent::check_create(body)?;
        }
        let (reply, mp) = create::create(body, &self.mountpoints, self.rtp_iface, None).await?;
        if save {
            if let Err(e) = permanent::save(&self.storage, &mp).await {
                self.mountpoints.remove(mp.id);
                return Err(e);
            }
        }
        Ok(reply)
    }

    /// `destroy`; with `permanent: true` the mountpoint also leaves the registry, without it a
    /// stored mountpoint comes back at the next start (as Janus without a config rewrite).
    async fn destroy(&self, body: &Map<String, Value>) -> Result<Value, StreamingError> {
        let mp = self.lookup(body)?;
        validate(body, &[("permanent", Kind::Boolean, false)])?;
        check_secret(&mp.settings().secret, body, "secret").await?;
        if boolean(body, "permanent").unwrap_or(false) {
            permanent::forget(&self.storage, mp.id).await?;
        }
        let Some(mp) = self.mountpoints.remove(mp.id) else {
            return Err(no_such(mp.id));
        };
        self.recordings.close(&mp, &self.storage).await;
        self.egress.stop_mountpoint(mp.id);
        tracing::info!(mountpoint = mp.id, "mountpoint destroyed");
        for v in mp.viewers() {
            if let Some(ctx) = v.upgrade() {
                ctx.push_event(None, event(json!({ "status": "stopped" })), None);
                ctx.close_pc();
            }
        }
        Ok(json!({ "streaming": "destroyed", "destroyed": mp.id }))
    }

    /// `edit`: description, metadata, secret, PIN (`""` removes either) and privacy.
    async fn edit(&self, body: &Map<String, Value>) -> Result<Value, StreamingError> {
        let mp = self.lookup(body)?;
        validate(
            body,
            &[
                ("new_description", Kind::String, false),
                ("new_metadata", Kind::String, false),
                ("new_secret", Kind::String, false),
                ("new_pin", Kind::String, false),
                ("new_is_private", Kind::Boolean, false),
                ("permanent", Kind::Boolean, false),
                ("edited_event", Kind::Boolean, false),
            ],
        )?;
        check_secret(&mp.settings().secret, body, "secret").await?;
        let save = boolean(body, "permanent").unwrap_or(false);
        if save {
            permanent::check_edit(&mp)?;
        }
        let hash = |field: &str| {
            let value = errors::string(body, field);
            async move {
                match value {
                    None => Ok(None),
                    Some(v) if v.is_empty() => Ok(Some(None)),
                    Some(v) => HashedSecret::new(&v)
                        .await
                        .map(|h| Some(Some(h)))
                        .ok_or_else(|| {
                            StreamingError::new(errors::UNKNOWN_ERROR, "Error hashing the secret")
                        }),
                }
            }
        };
        let new_secret = hash("new_secret").await?;
        let new_pin = hash("new_pin").await?;
        mp.edit(|s| {
            if let Some(d) = errors::string(body, "new_description") {
                s.description = d;
            }
            if let Some(m) = errors::string(body, "new_metadata") {
                s.metadata = (!m.is_empty()).then_some(m);
            }
            if let Some(secret) = new_secret {
                s.secret = secret;
            }
            if let Some(pin) = new_pin {
                s.pin = pin;
            }
            if let Some(p) = boolean(body, "new_is_private") {
                s.is_private = p;
            }
        });
        if boolean(body, "edited_event").unwrap_or(false) {
            let mut edited = json!({ "streaming": "edited", "id": mp.id });
            if let Some(m) = mp.settings().metadata {
                edited["metadata"] = json!(m);
            }
            for v in mp.viewers() {
                if let Some(ctx) = v.upgrade() {
                    ctx.push_event(None, edited.clone(), None);
                }
            }
        }
        if save {
            permanent::save(&self.storage, &mp).await?;
        }
        tracing::info!(mountpoint = mp.id, "mountpoint edited");
        Ok(json!({ "streaming": "edited", "id": mp.id, "permanent": save }))
    }

    async fn kick_all(&self, body: &Map<String, Value>) -> Result<Value, StreamingError> {
        let mp = self.lookup(body)?;
        check_secret(&mp.settings().secret, body, "secret").await?;
        let viewers = mp.viewers();
        for v in &viewers {
            if let Some(ctx) = v.upgrade() {
                ctx.push_event(None, event(json!({ "status": "kicked_all" })), None);
                ctx.close_pc();
            }
        }
        tracing::info!(
            mountpoint = mp.id,
            viewers = viewers.len(),
            "viewers kicked"
        );
        Ok(json!({ "streaming": "kicked_all" }))
    }

    async fn record(&self, body: &Map<String, Value>) -> Result<Value, StreamingError> {
        let mp = self.lookup(body)?;
        check_secret(&mp.settings().secret, body, "secret").await?;
        self.recordings
            .request(&self.recording, &self.storage, &mp, body)
            .await
    }

    async fn enable(&self, body: &Map<String, Value>, on: bool) -> Result<Value, StreamingError> {
        let mp = self.lookup(body)?;
        check_secret(&mp.settings().secret, body, "secret").await?;
        mp.enabled.store(on, std::sync::atomic::Ordering::Relaxed);
        Ok(json!({ "streaming": "ok" }))
    }

    /// The Bifrons extension requests `publish`/`unpublish` (see [`publish_request`]),
    /// answered with an event.
    fn publishing(
        &self,
        viewer: &Arc<Viewer>,
        ctx: &Arc<HandleCtx>,
        request: String,
        body: Map<String, Value>,
        message: PluginMessage,
    ) -> PluginResult {
        let (mountpoints, storage) = (self.mountpoints.clone(), self.storage.clone());
        let (viewer, ctx) = (viewer.clone(), ctx.clone());
        PluginResult::Async {
            hint: None,
            work: Box::pin(async move {
                let outcome = if request == "publish" {
                    publish_request::publish(&mountpoints, &storage, &viewer, &ctx, &body, &message)
                        .await
                } else {
                    publish_request::unpublish(&viewer, &ctx)
                };
                let transaction = message.transaction.as_str();
                match outcome {
                    Ok((result, jsep)) => ctx.push_event(Some(transaction), event(result), jsep),
                    Err(e) => ctx.push_event(Some(transaction), error(e), None),
                }
            }),
        }
    }

    /// The requests answered with an event.
    async fn asynchronous(
        mountpoints: Arc<Mountpoints>,
        viewer: Arc<Viewer>,
        ctx: Arc<HandleCtx>,
        request: String,
        body: Map<String, Value>,
        message: PluginMessage,
    ) {
        let transaction = message.transaction.as_str();
        let outcome = match request.as_str() {
            "watch" => watch(&mountpoints, &viewer, &ctx, &body, &message).await,
            "start" => start(&viewer, &ctx),
            "pause" => pause(&viewer),
            "stop" => Ok((stop(&viewer, &ctx), None)),
            "configure" => configure(&viewer, &body),
            "switch" => switch(&mountpoints, &viewer, &ctx, &body),
            other => Err(StreamingError::new(
                errors::INVALID_REQUEST,
                format!("Unknown request '{other}'"),
            )),
        };
        match outcome {
            Ok((result, jsep)) => ctx.push_event(Some(transaction), event(result), jsep),
            Err(e) => ctx.push_event(Some(transaction), error(e), None),
        }
    }
}

type Outcome = Result<(Value, Option<crate::media::Jsep>), StreamingError>;

/// The codecs to offer for one stream: H.264 with the publisher's profile, then constrained
/// baseline (what every browser lists) in case the browser lacks that profile, then VP8.
fn offer_codecs(codec: &Codec) -> Vec<Codec> {
    let mut codecs = vec![codec.clone()];
    if matches!(codec, Codec::H264 { .. }) {
        if *codec != Codec::h264_baseline() {
            codecs.push(Codec::h264_baseline());
        }
        // For a browser without H.264: transcoded, once per mountpoint.
        codecs.push(Codec::Vp8);
    }
    codecs
}

/// Which kinds the viewer asked for: `media` (mids), else `offer_audio`/`offer_video`.
fn wanted_kinds(
    body: &Map<String, Value>,
    mp: &MountpointEntry,
) -> Result<Vec<MediaKind>, StreamingError> {
    let streams = mp.streams();
    let mut kinds: Vec<MediaKind> = streams.iter().map(|s| s.kind).collect();
    if let Some(media) = body.get("media").and_then(Value::as_array) {
        if !media.is_empty() {
            let mut mids = Vec::new();
            for m in media {
                let Some(mid) = m.as_str() else {
                    return Err(StreamingError::new(
                        errors::INVALID_ELEMENT,
                        "The media array must only contain strings (mid values)",
                    ));
                };
                mids.push(mid.to_string());
            }
            kinds.retain(|k| {
                streams
                    .iter()
                    .any(|s| s.kind == *k && mids.iter().any(|m| m == s.mid))
            });
        }
    }
    if boolean(body, "offer_audio") == Some(false) {
        kinds.retain(|k| *k != MediaKind::Audio);
    }
    if boolean(body, "offer_video") == Some(false) {
        kinds.retain(|k| *k != MediaKind::Video);
    }
    if kinds.is_empty() && !(mp.data && boolean(body, "offer_data") != Some(false)) {
        return Err(StreamingError::new(
            errors::INVALID_REQUEST,
            "Can't offer an SDP with no audio, video or data for this mountpoint",
        ));
    }
    Ok(kinds)
}

async fn watch(
    mountpoints: &Mountpoints,
    viewer: &Viewer,
    ctx: &Arc<HandleCtx>,
    body: &Map<String, Value>,
    message: &PluginMessage,
) -> Outcome {
    let id = errors::id(body)?;
    validate(
        body,
        &[
            ("pin", Kind::String, false),
            ("media", Kind::Array, false),
            ("restart", Kind::Boolean, false),
            ("offer_audio", Kind::Boolean, false),
            ("offer_video", Kind::Boolean, false),
            ("offer_data", Kind::Boolean, false),
        ],
    )?;
    if let Some(current) = &viewer.lock().mountpoint {
        return Err(StreamingError::new(
            errors::INVALID_STATE,
            format!("Already watching mountpoint {}", current.id),
        ));
    }
    let mp = mountpoints.get(id).ok_or_else(|| no_such(id))?;
    check_secret(&mp.settings().pin, body, "pin").await?;
    if !mp.enabled.load(std::sync::atomic::Ordering::Relaxed) {
        return Err(StreamingError::new(
            errors::INVALID_STATE,
            format!("Mountpoint {id} is disabled"),
        ));
    }
    let kinds = wanted_kinds(body, &mp)?;
    let mut plan = OfferPlan {
        data: mp.data && boolean(body, "offer_data") != Some(false),
        ..OfferPlan::default()
    };
    let mut answer_plan = AnswerPlan::default();
    for s in mp.streams() {
        if !kinds.contains(&s.kind) {
            continue;
        }
        let stream = StreamPlan::new(Direction::SendOnly, offer_codecs(&s.codec));
        match s.kind {
            MediaKind::Audio => {
                plan.audio = Some(stream.clone());
                answer_plan.audio = Some(stream);
            }
            MediaKind::Video => {
                plan.video = Some(stream.clone());
                answer_plan.video = Some(stream);
            }
        }
    }
    let (status, jsep) = match message.jsep.as_ref() {
        Some(j) if j.kind == JsepType::Offer => {
            let (answer, _) = ctx.answer_offer(j, &answer_plan).await.map_err(|e| {
                StreamingError::new(errors::INVALID_SDP, format!("Error negotiating: {e}"))
            })?;
            ("starting", answer)
        }
        Some(_) => {
            return Err(StreamingError::new(
                errors::INVALID_SDP,
                "User provided SDP for a watch request must be an offer",
            ))
        }
        None => {
            let offer = ctx.create_offer(&plan).await.map_err(|e| {
                StreamingError::new(
                    errors::UNKNOWN_ERROR,
                    format!("Error creating the offer: {e}"),
                )
            })?;
            ("preparing", offer)
        }
    };
    let sender = ctx.media_sender().ok_or_else(|| {
        StreamingError::new(errors::UNKNOWN_ERROR, "No PeerConnection for the viewer")
    })?;
    let sink = Arc::new(ViewerSink::new(sender, 111, 96));
    for s in mp.streams() {
        sink.set_clock(s.kind, s.codec.clock_rate());
    }
    {
        let mut st = viewer.lock();
        st.mountpoint = Some(mp.clone());
        st.sink = Some(sink);
        st.started = status == "starting";
    }
    mp.add_viewer(ctx.weak());
    tracing::info!(mountpoint = id, "viewer watching");
    // A viewer that offered has its answer already: media may flow once WebRTC is up.
    if ctx.media_status().1 {
        attach(viewer, ctx);
    }
    Ok((json!({ "status": status }), Some(jsep)))
}

/// Puts the viewer's sink into its mountpoint's fan-out (once WebRTC is up and the viewer
/// started), which starts it at the last keyframe; tells the viewer `started`.
fn attach(viewer: &Viewer, ctx: &HandleCtx) {
    let mut st = viewer.lock();
    if st.attached.is_some() || !st.started {
        return;
    }
    let (Some(mp), Some(sink)) = (st.mountpoint.clone(), st.sink.clone()) else {
        return;
    };
    let mut vp8 = false;
    if let Some(n) = ctx.negotiated() {
        for kind in MediaKind::ALL {
            if let Some(s) = n.first(kind) {
                sink.set_pt(kind, s.pt.0);
                vp8 |= kind == MediaKind::Video && s.codec == Some(Codec::Vp8);
            }
        }
    }
    match mp.attach_sink(sink, vp8) {
        Ok(a) => st.attached = Some(a),
        Err(e) => {
            drop(st);
            tracing::warn!(mountpoint = mp.id, error = %e, "viewer not attached");
            ctx.push_event(
                None,
                error(StreamingError::new(
                    errors::UNKNOWN_ERROR,
                    format!("Can't transcode for this viewer: {e}"),
                )),
                None,
            );
            return;
        }
    }
    drop(st);
    ctx.push_event(None, event(json!({ "status": "started" })), None);
}

fn start(viewer: &Viewer, ctx: &HandleCtx) -> Outcome {
    let (was_started, attached) = {
        let mut st = viewer.lock();
        if st.mountpoint.is_none() {
            return Err(StreamingError::new(
                errors::NO_SUCH_MOUNTPOINT,
                "Can't start: no mountpoint set",
            ));
        }
        if let Some(sink) = &st.sink {
            sink.set_paused(false);
        }
        let was = st.started;
        st.started = true;
        (was, st.attached.is_some())
    };
    if !attached && ctx.media_status().1 {
        attach(viewer, ctx);
    }
    Ok((
        json!({ "status": if was_started && attached { "started" } else { "starting" } }),
        None,
    ))
}

fn pause(viewer: &Viewer) -> Outcome {
    let st = viewer.lock();
    if st.mountpoint.is_none() {
        return Err(StreamingError::new(
            errors::NO_SUCH_MOUNTPOINT,
            "Can't pause: no mountpoint set",
        ));
    }
    if let Some(sink) = &st.sink {
        sink.set_paused(true);
    }
    Ok((json!({ "status": "pausing" }), None))
}

fn stop(viewer: &Viewer, ctx: &HandleCtx) -> Value {
    if viewer.lock().mountpoint.is_none() {
        return json!({ "status": "idle" });
    }
    viewer.leave(ctx.handle_id());
    ctx.close_pc();
    json!({ "status": "stopping" })
}

fn configure(viewer: &Viewer, body: &Map<String, Value>) -> Outcome {
    validate(
        body,
        &[
            ("audio", Kind::Boolean, false),
            ("video", Kind::Boolean, false),
            ("streams", Kind::Array, false),
        ],
    )?;
    let st = viewer.lock();
    let (Some(mp), Some(sink)) = (&st.mountpoint, &st.sink) else {
        return Err(StreamingError::new(
            errors::NO_SUCH_MOUNTPOINT,
            "Can't configure: not on a mountpoint",
        ));
    };
    let mut changes: Vec<(MediaKind, bool)> = Vec::new();
    if let Some(a) = boolean(body, "audio") {
        changes.push((MediaKind::Audio, a));
    }
    if let Some(v) = boolean(body, "video") {
        changes.push((MediaKind::Video, v));
    }
    if let Some(streams) = body.get("streams").and_then(Value::as_array) {
        let offered = mp.streams();
        for s in streams {
            let Some(s) = s.as_object() else {
                return Err(StreamingError::new(
                    errors::INVALID_ELEMENT,
                    "Invalid element (streams items must be objects)",
                ));
            };
            validate(
                s,
                &[("mid", Kind::String, true), ("send", Kind::Boolean, false)],
            )?;
            let mid = s.get("mid").and_then(Value::as_str).unwrap_or_default();
            let Some(stream) = offered.iter().find(|o| o.mid == mid) else {
                return Err(StreamingError::new(
                    errors::INVALID_ELEMENT,
                    format!("Invalid element (no stream with mid {mid})"),
                ));
            };
            if let Some(send) = boolean(s, "send") {
                changes.push((stream.kind, send));
            }
        }
    }
    for (kind, on) in changes {
        let was = sink.enabled(kind);
        sink.set_enabled(kind, on);
        if kind == MediaKind::Video && on && !was {
            if let Some(a) = &st.attached {
                a.request_keyframe(mp);
            }
        }
    }
    Ok((json!({ "event": "configured" }), None))
}

fn switch(
    mountpoints: &Mountpoints,
    viewer: &Viewer,
    ctx: &HandleCtx,
    body: &Map<String, Value>,
) -> Outcome {
    let id = errors::id(body)?;
    let mut st = viewer.lock();
    let (Some(old), Some(sink)) = (st.mountpoint.clone(), st.sink.clone()) else {
        return Err(StreamingError::new(
            errors::NO_SUCH_MOUNTPOINT,
            "Can't switch: not on a mountpoint",
        ));
    };
    let target = mountpoints.get(id).ok_or_else(|| no_such(id))?;
    if target.settings().pin.is_some() {
        return Err(StreamingError::new(
            errors::CANT_SWITCH,
            "Can't switch: target needs a PIN (watch it instead)",
        ));
    }
    if media_signature(&target.streams()) != media_signature(&old.streams()) {
        return Err(StreamingError::new(
            errors::CANT_SWITCH,
            "Can't switch: target has a different media configuration",
        ));
    }
    if st.attached.as_ref().is_some_and(|a| a.vp8.is_some()) {
        return Err(StreamingError::new(
            errors::CANT_SWITCH,
            "Can't switch: this viewer gets transcoded VP8",
        ));
    }
    if let Some(a) = st.attached.take() {
        old.detach_sink(a);
        sink.restart(MediaKind::Audio);
        sink.restart(MediaKind::Video);
        st.attached =
            Some(target.attach_sink(sink, false).map_err(|e| {
                StreamingError::new(errors::CANT_SWITCH, format!("Can't switch: {e}"))
            })?);
    }
    old.remove_viewer(ctx.handle_id());
    target.add_viewer(ctx.weak());
    st.mountpoint = Some(target);
    tracing::info!(from = old.id, to = id, "viewer switched");
    Ok((json!({ "switched": "ok", "id": id }), None))
}

#[async_trait::async_trait]
impl Plugin for Streaming {
    type Handle = Viewer;

    fn descriptor(&self) -> &PluginDescriptor {
        &self.descriptor
    }

    fn create_handle(&self, _ctx: &HandleCtx) -> Result<Viewer, AttachError> {
        Ok(Viewer::default())
    }

    async fn handle_message(
        &self,
        viewer: &Arc<Viewer>,
        ctx: &Arc<HandleCtx>,
        message: PluginMessage,
    ) -> PluginResult {
        let body = match &message.body {
            Value::Null => {
                return PluginResult::Ok(error(StreamingError::new(
                    errors::NO_MESSAGE,
                    "No message??",
                )))
            }
            Value::Object(o) => o.clone(),
            _ => {
                return PluginResult::Ok(error(StreamingError::new(
                    errors::INVALID_JSON,
                    "JSON error: not an object",
                )))
            }
        };
        if let Err(e) = validate(&body, &[("request", Kind::String, true)]) {
            return PluginResult::Ok(error(e));
        }
        let request = body
            .get("request")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_ascii_lowercase();
        if egress::is_egress(&request) {
            return PluginResult::Ok(self.egress(&request, &body, Some(ctx)).await);
        }
        if let Some(reply) = self.synchronous(&request, &body).await {
            return PluginResult::Ok(reply);
        }
        if matches!(request.as_str(), "publish" | "unpublish") {
            return self.publishing(viewer, ctx, request, body, message);
        }
        if !matches!(
            request.as_str(),
            "watch" | "start" | "pause" | "stop" | "configure" | "switch"
        ) {
            return PluginResult::Ok(error(StreamingError::new(
                errors::INVALID_REQUEST,
                format!("Unknown request '{request}'"),
            )));
        }
        PluginResult::Async {
            hint: None,
            work: Box::pin(Self::asynchronous(
                self.mountpoints.clone(),
                viewer.clone(),
                ctx.clone(),
                request,
                body,
                message,
            )),
        }
    }

    fn setup_media(&self, viewer: &Viewer, ctx: &HandleCtx) {
        attach(viewer, ctx);
    }

    fn incoming_rtp(
        &self,
        viewer: &Viewer,
        _ctx: &HandleCtx,
        stream: &crate::media::StreamInfo,
        packet: crate::media::RtpPacket,
    ) {
        if let Some(feed) = &*viewer.publisher.lock().unwrap_or_else(|e| e.into_inner()) {
            feed.feed(stream, packet);
        }
    }

    fn incoming_rtcp(
        &self,
        viewer: &Viewer,
        _ctx: &HandleCtx,
        kind: MediaKind,
        feedback: RtcpFeedback,
    ) {
        if kind != MediaKind::Video || feedback != RtcpFeedback::KeyframeRequest {
            return;
        }
        let st = viewer.lock();
        if let (Some(mp), Some(sink), Some(a)) = (&st.mountpoint, &st.sink, &st.attached) {
            if sink.keyframe_request_due() {
                a.request_keyframe(mp);
                mp.request_source_keyframe();
            }
        }
    }

    fn hangup_media(&self, viewer: &Viewer, ctx: &HandleCtx) {
        if let Some(id) = publish_request::end(viewer, "hangup") {
            ctx.push_event(
                None,
                event(json!({ "status": "unpublished", "id": id })),
                None,
            );
        }
        if let Some(mp) = viewer.leave(ctx.handle_id()) {
            tracing::info!(mountpoint = mp.id, "viewer left");
        }
    }

    async fn destroy_handle(&self, viewer: &Arc<Viewer>, ctx: &HandleCtx) {
        publish_request::end(viewer, "handle detached");
        viewer.leave(ctx.handle_id());
    }

    fn query_handle(&self, viewer: &Viewer) -> Value {
        let st = viewer.lock();
        let sent = |k: MediaKind| {
            st.sink.as_ref().map_or(0, |s| {
                s.sent[k.index()].load(std::sync::atomic::Ordering::Relaxed)
            })
        };
        json!({
            "mountpoint": st.mountpoint.as_ref().map(|m| m.id),
            "started": st.started,
            "attached": st.attached.is_some(),
            "transcoded_vp8": st.attached.as_ref().is_some_and(|a| a.vp8.is_some()),
            "paused": st.sink.as_ref().is_some_and(|s| s.paused()),
            "audio_packets_sent": sent(MediaKind::Audio),
            "video_packets_sent": sent(MediaKind::Video),
        })
    }

    async fn handle_admin_message(&self, request: Value) -> Option<Value> {
        let Value::Object(body) = request else {
            return Some(error(StreamingError::new(
                errors::INVALID_JSON,
                "JSON error: not an object",
            )));
        };
        if let Err(e) = validate(&body, &[("request", Kind::String, true)]) {
            return Some(error(e));
        }
        let name = body
            .get("request")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_ascii_lowercase();
        if egress::is_egress(&name) {
            return Some(self.egress(&name, &body, None).await);
        }
        Some(match self.synchronous(&name, &body).await {
            Some(reply) => reply,
            None => error(StreamingError::new(
                errors::INVALID_REQUEST,
                format!("Unknown request '{name}'"),
            )),
        })
    }
}
