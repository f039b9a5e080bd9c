//! The streaming plugin's mountpoints: what `list`/`info` show, who watches, which codecs to
//! offer, and the hub mountpoint that carries the media.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::rtcp_source::RtcpLink;
use super::vp8::{KindFilter, Vp8Variant};
use crate::auth::HashedSecret;
use crate::ids::HandleId;
use crate::media::{Codec, MediaKind, MediaSender};
use crate::plugins::HandleRef;
use crate::services::streams::{Mountpoint, MountpointHub, VideoFormat};
use crate::services::streams::{SinkId, StreamSink};
use crate::services::workers::WorkerPool;
use crate::web::panel::status::StatusBoard;

/// Keyframe requests to a WebRTC publisher closer together than this (ms) are sent once.
pub const PUBLISHER_PLI_GAP_MS: u64 = 300;

/// Where a mountpoint's media comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// RTP on UDP ports (Janus' `rtp` type): the ports bound, per kind.
    Rtp {
        /// Audio port, if any.
        audio_port: Option<u16>,
        /// Video port, if any.
        video_port: Option<u16>,
        /// Data port, if any.
        data_port: Option<u16>,
    },
    /// An RTMP publisher with a stream key bound to this mountpoint.
    Rtmp,
    /// A browser publisher (WHIP or the `publish` request): created by its first publish.
    WebRtc,
    /// An audio bridge room's mix (Opus), see [`super::room_source`].
    Room,
}

impl Source {
    /// The name `info` gives the source.
    pub fn name(&self) -> &'static str {
        match self {
            Source::Rtp { .. } => "rtp",
            Source::Rtmp => "rtmp",
            Source::WebRtc => "webrtc",
            Source::Room => "audiobridge",
        }
    }
}

/// One media stream of a mountpoint as offered to viewers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaStream {
    /// `a=mid` offered for it (`a` for audio, `v` for video, as Janus' defaults).
    pub mid: &'static str,
    /// Audio or video.
    pub kind: MediaKind,
    /// The codec sent to viewers.
    pub codec: Codec,
}

/// What a viewer needs of a mountpoint's media to be able to switch to another one without
/// renegotiating: the kinds and codec names.
pub fn media_signature(streams: &[MediaStream]) -> Vec<(MediaKind, &'static str)> {
    streams
        .iter()
        .map(|s| (s.kind, s.codec.encoding_name()))
        .collect()
}

/// A mountpoint.
pub struct MountpointEntry {
    /// Janus id.
    pub id: u64,
    /// Name (defaults to the id).
    pub name: String,
    /// What `edit` changes: description, metadata, secret, PIN, privacy.
    settings: RwLock<Settings>,
    /// Whether viewers may watch.
    pub enabled: AtomicBool,
    /// Where media comes from.
    pub source: Source,
    /// The `create` request that made it, without secret and PIN: what a permanent mountpoint
    /// stores. `None` for a mountpoint created by an RTMP publish (not persistable).
    pub config: Option<serde_json::Map<String, Value>>,
    /// The streams offered to viewers; video's H.264 profile follows the publisher's SPS.
    streams: RwLock<Vec<MediaStream>>,
    /// Whether a data channel is offered (an `rtp` mountpoint with a data port).
    pub data: bool,
    /// The RTCP link with the source, per kind (an `rtp` stream with an RTCP port).
    rtcp: [OnceLock<Arc<RtcpLink>>; 2],
    /// The fan-out.
    pub hub: Mountpoint,
    /// Handles watching (or about to), for events; touched on watch/stop, never per packet.
    viewers: Mutex<HashMap<HandleId, HandleRef>>,
    /// Whether a source is feeding it now.
    live: AtomicBool,
    /// Milliseconds since 1970 of the last packet from the source, for `age_ms`.
    pub last_packet_ms: AtomicU64,
    /// Cancelled when the mountpoint is destroyed: its source tasks end.
    pub cancel: CancellationToken,
    /// The VP8 rendition, while viewers without H.264 watch.
    vp8: Mutex<Option<Arc<Vp8Variant>>>,
    hubs: Arc<MountpointHub>,
    workers: Arc<WorkerPool>,
    /// How to ask a WebRTC publisher for a keyframe (a PLI), while one feeds it; touched on
    /// publish, unpublish and viewers' keyframe requests, never per packet.
    /// With when it was last asked (ms since 1970): at most one PLI per
    /// [`PUBLISHER_PLI_GAP_MS`] whatever the number of viewers asking.
    publisher_keyframe: Mutex<Option<(MediaSender, u64)>>,
}

/// Where a viewer's sink sits: the main fan-out, and for a VP8 viewer of an H.264
/// mountpoint also the VP8 rendition's (for its video).
pub struct Attached {
    /// Id in the main fan-out.
    pub main: SinkId,
    /// The VP8 rendition and the id in its fan-out.
    pub vp8: Option<(Arc<Vp8Variant>, SinkId)>,
}

impl Attached {
    /// Asks for a keyframe for this viewer: from the keyframe cache of the fan-out its video
    /// comes from.
    pub fn request_keyframe(&self, mp: &MountpointEntry) {
        match &self.vp8 {
            Some((v, id)) => v.hub.request_keyframe(*id),
            None => mp.hub.request_keyframe(self.main),
        }
    }
}

/// The settings of a mountpoint that `edit` changes.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Description shown in `list`.
    pub description: String,
    /// Free-form metadata shown in `list`/`info`.
    pub metadata: Option<String>,
    /// Needed to edit or destroy it (and to see everything in `info`).
    pub secret: Option<HashedSecret>,
    /// Needed to watch it.
    pub pin: Option<HashedSecret>,
    /// Hidden from `list`.
    pub is_private: bool,
}

/// What `create` (or an RTMP publish) gives a new mountpoint.
pub struct NewMountpoint {
    /// Janus id.
    pub id: u64,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Metadata.
    pub metadata: Option<String>,
    /// Secret, hashed.
    pub secret: Option<HashedSecret>,
    /// PIN, hashed.
    pub pin: Option<HashedSecret>,
    /// Hidden from `list`.
    pub is_private: bool,
    /// Source.
    pub source: Source,
    /// Streams offered.
    pub streams: Vec<MediaStream>,
    /// The `create` request, for permanent mountpoints (see [`MountpointEntry::config`]).
    pub config: Option<serde_json::Map<String, Value>>,
    /// Whether a data channel is offered.
    pub data: bool,
}

impl MountpointEntry {
    /// The current settings (a copy).
    pub fn settings(&self) -> Settings {
        self.settings
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Changes the settings (`edit`).
    pub fn edit(&self, change: impl FnOnce(&mut Settings)) {
        change(&mut self.settings.write().unwrap_or_else(|e| e.into_inner()));
    }

    /// The streams offered to viewers now.
    pub fn streams(&self) -> Vec<MediaStream> {
        self.streams
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Sets the H.264 `profile-level-id` offered from now on (from a publisher's SPS).
    pub fn set_h264_profile(&self, profile_level_id: &str) {
        let mut streams = self.streams.write().unwrap_or_else(|e| e.into_inner());
        for s in streams.iter_mut() {
            if let Codec::H264 {
                profile_level_id: p,
                ..
            } = &mut s.codec
            {
                *p = Some(profile_level_id.to_string());
            }
        }
    }

    /// The VP8 rendition, if VP8 viewers watch (read once per frame by the ingest).
    pub fn vp8(&self) -> Option<Arc<Vp8Variant>> {
        self.vp8.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Whether the video offered is H.264 (a VP8 viewer then needs the transcoder).
    pub fn video_is_h264(&self) -> bool {
        self.streams()
            .iter()
            .any(|s| matches!(s.codec, Codec::H264 { .. }))
    }

    /// Puts a viewer's sink into the fan-out. `vp8`: the viewer negotiated VP8 while the
    /// mountpoint carries H.264: its video then comes from the VP8 rendition, started for the
    /// first such viewer. Errors when the transcoder cannot start.
    pub fn attach_sink(&self, sink: Arc<dyn StreamSink>, vp8: bool) -> Result<Attached, String> {
        if !(vp8 && self.video_is_h264()) {
            return Ok(Attached {
                main: self.hub.add_stream_sink(sink),
                vp8: None,
            });
        }
        let variant = {
            let mut slot = self.vp8.lock().unwrap_or_else(|e| e.into_inner());
            match &*slot {
                Some(v) => v.clone(),
                None => {
                    let name = format!("streaming/{}/vp8", self.id);
                    self.hubs.remove(&name);
                    let hub = self.hubs.create(&name).map_err(|e| e.to_string())?;
                    hub.set_video_format(Some(VideoFormat::Vp8));
                    let v = Arc::new(Vp8Variant::start(hub, &self.workers)?);
                    tracing::info!(mountpoint = self.id, "VP8 rendition started");
                    // Its decoder starts at an H.264 keyframe: a WebRTC publisher sends one
                    // on request only.
                    self.request_source_keyframe();
                    *slot = Some(v.clone());
                    v
                }
            }
        };
        variant.viewers.fetch_add(1, Ordering::AcqRel);
        variant.request_keyframe();
        let main = self.hub.add_stream_sink(Arc::new(KindFilter {
            inner: sink.clone(),
            kind: MediaKind::Audio,
        }));
        let id = variant.hub.add_stream_sink(Arc::new(KindFilter {
            inner: sink,
            kind: MediaKind::Video,
        }));
        Ok(Attached {
            main,
            vp8: Some((variant, id)),
        })
    }

    /// Takes a viewer's sink out; the VP8 rendition stops with its last viewer.
    pub fn detach_sink(&self, attached: Attached) {
        self.hub.remove_sink(attached.main);
        let Some((variant, id)) = attached.vp8 else {
            return;
        };
        variant.hub.remove_sink(id);
        if variant.viewers.fetch_sub(1, Ordering::AcqRel) == 1 {
            let mut slot = self.vp8.lock().unwrap_or_else(|e| e.into_inner());
            if slot.as_ref().is_some_and(|v| Arc::ptr_eq(v, &variant))
                && variant.viewers.load(Ordering::Acquire) == 0
            {
                *slot = None;
                variant.stop();
                self.hubs.remove(&format!("streaming/{}/vp8", self.id));
                tracing::info!(mountpoint = self.id, "VP8 rendition stopped");
            }
        }
    }

    /// Sets the RTCP link of `kind`'s stream (once, at creation).
    pub fn set_rtcp(&self, kind: MediaKind, link: Arc<RtcpLink>) {
        let _ = self.rtcp[kind.index()].set(link);
    }

    /// Sets (or with `None` clears) the WebRTC publisher asked for keyframes by
    /// [`MountpointEntry::request_source_keyframe`].
    pub fn set_publisher_keyframe(&self, sender: Option<MediaSender>) {
        *self
            .publisher_keyframe
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = sender.map(|s| (s, 0));
    }

    /// Whether a WebRTC publisher (WHIP or `publish`) feeds it now.
    pub fn has_webrtc_publisher(&self) -> bool {
        self.publisher_keyframe
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }

    /// Asks the source for a keyframe: a WebRTC publisher gets a PLI on its PeerConnection;
    /// an `rtp` source a PLI over RTCP, when its video stream has an RTCP port and the source
    /// sent reports there; nothing otherwise.
    pub fn request_source_keyframe(&self) {
        if let Some((sender, last)) = &mut *self
            .publisher_keyframe
            .lock()
            .unwrap_or_else(|e| e.into_inner())
        {
            let now = now_ms();
            if now.saturating_sub(*last) >= PUBLISHER_PLI_GAP_MS {
                *last = now;
                sender.request_keyframe();
            }
        }
        if let Some(link) = self.rtcp[MediaKind::Video.index()].get() {
            let link = link.clone();
            tokio::spawn(async move {
                link.request_keyframe().await;
            });
        }
    }

    /// Whether a source feeds it.
    pub fn is_live(&self) -> bool {
        self.live.load(Ordering::Relaxed)
    }

    /// Marks the source as present or gone; `true` when that changed.
    pub fn set_live(&self, live: bool) -> bool {
        self.live.swap(live, Ordering::AcqRel) != live
    }

    /// Registers a viewer (for events and counts).
    pub fn add_viewer(&self, viewer: HandleRef) {
        self.viewers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(viewer.id(), viewer);
    }

    /// Forgets a viewer.
    pub fn remove_viewer(&self, id: HandleId) {
        self.viewers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
    }

    /// Viewers still attached.
    pub fn viewers(&self) -> Vec<HandleRef> {
        let mut viewers = self.viewers.lock().unwrap_or_else(|e| e.into_inner());
        viewers.retain(|_, v| v.upgrade().is_some());
        viewers.values().cloned().collect()
    }

    /// Number of viewers.
    pub fn viewer_count(&self) -> usize {
        self.viewers().len()
    }

    /// Pushes `result` as a `{"streaming":"event","result":...}` to every viewer.
    pub fn notify_viewers(&self, result: Value) {
        let event = json!({ "streaming": "event", "result": result });
        for v in self.viewers() {
            if let Some(ctx) = v.upgrade() {
                ctx.push_event(None, event.clone(), None);
            }
        }
    }

    fn media_json(&self, full: bool) -> Vec<Value> {
        let age = self.age_ms();
        self.streams()
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let mut m = json!({
                    "mid": s.mid,
                    "type": s.kind.as_str(),
                    "label": format!("{}{}", s.kind.as_str(), i + 1),
                });
                if full {
                    m["mindex"] = json!(i);
                    m["codec"] = json!(s.codec.encoding_name().to_ascii_lowercase());
                    let rtpmap = if s.codec.channels() > 0 {
                        format!(
                            "{}/{}/{}",
                            s.codec.encoding_name(),
                            s.codec.clock_rate(),
                            s.codec.channels()
                        )
                    } else {
                        format!("{}/{}", s.codec.encoding_name(), s.codec.clock_rate())
                    };
                    m["rtpmap"] = json!(rtpmap);
                    let fmtp = s.codec.fmtp();
                    if !fmtp.is_empty() {
                        m["fmtp"] = json!(fmtp);
                    }
                }
                if let Some(age) = age {
                    m["age_ms"] = json!(age);
                }
                m
            })
            .chain(self.data.then(|| {
                // The data channel of a data port, as Janus lists it.
                json!({ "mid": "d", "type": "data", "label": "data" })
            }))
            .collect()
    }

    fn age_ms(&self) -> Option<u64> {
        let last = self.last_packet_ms.load(Ordering::Relaxed);
        (last > 0).then(|| now_ms().saturating_sub(last))
    }

    /// The `list` entry.
    pub fn list_json(&self) -> Value {
        let settings = self.settings();
        let mut v = json!({
            "id": self.id,
            "type": "live",
            "description": settings.description,
            "enabled": self.enabled.load(Ordering::Relaxed),
            "media": self.media_json(false),
            "viewers": self.viewer_count(),
        });
        if let Some(m) = &settings.metadata {
            v["metadata"] = json!(m);
        }
        v
    }

    /// The `info` object; `admin` (the right secret, or none set) adds the name, viewers and
    /// source details. Secrets and PINs are never sent back.
    pub fn info_json(&self, admin: bool) -> Value {
        let settings = self.settings();
        let mut v = json!({
            "id": self.id,
            "description": settings.description,
            "enabled": self.enabled.load(Ordering::Relaxed),
            "type": "live",
            "source": self.source.name(),
            "live": self.is_live(),
            "media": self.media_json(true),
        });
        if let Some(m) = &settings.metadata {
            v["metadata"] = json!(m);
        }
        if admin {
            v["name"] = json!(self.name);
            v["viewers"] = json!(self.viewer_count());
            if settings.is_private {
                v["is_private"] = json!(true);
            }
            if settings.pin.is_some() {
                v["pin_required"] = json!(true);
            }
            if let Source::Rtp {
                audio_port,
                video_port,
                data_port,
            } = &self.source
            {
                let mut ports = Vec::new();
                for (kind, port) in [
                    (MediaKind::Audio, audio_port),
                    (MediaKind::Video, video_port),
                ] {
                    let Some(p) = port else { continue };
                    let mut entry = json!({
                        "type": kind.as_str(),
                        "mid": if kind == MediaKind::Audio { "a" } else { "v" },
                        "port": p,
                    });
                    if let Some(link) = self.rtcp[kind.index()].get() {
                        if let (Value::Object(e), Value::Object(r)) = (&mut entry, link.info()) {
                            e.extend(r);
                        }
                    }
                    ports.push(entry);
                }
                if let Some(p) = data_port {
                    ports.push(json!({"type": "data", "mid": "d", "port": p}));
                }
                v["ports"] = json!(ports);
            }
        }
        v
    }
}

/// Milliseconds since 1970.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Mountpoints by id.
pub struct Mountpoints {
    table: RwLock<BTreeMap<u64, Arc<MountpointEntry>>>,
    hub: Arc<MountpointHub>,
    workers: Arc<WorkerPool>,
    /// The admin panel's live view, where WebRTC publishers are reported (set once at start).
    status: OnceLock<StatusBoard>,
}

/// Why a mountpoint could not be added.
#[derive(Debug)]
pub struct IdTaken;

impl Mountpoints {
    /// An empty set whose media go through `hub`; transcoding runs on `workers`.
    pub fn new(hub: Arc<MountpointHub>, workers: Arc<WorkerPool>) -> Self {
        Self {
            table: RwLock::new(BTreeMap::new()),
            hub,
            workers,
            status: OnceLock::new(),
        }
    }

    /// Reports WebRTC publishers (WHIP, `publish`) on `board` from now on.
    pub fn set_status(&self, board: StatusBoard) {
        board.attach_publishers();
        let _ = self.status.set(board);
    }

    /// The live view publishers are reported on, once [`Mountpoints::set_status`] set it.
    pub fn status(&self) -> Option<&StatusBoard> {
        self.status.get()
    }

    /// The mountpoint `id`.
    pub fn get(&self, id: u64) -> Option<Arc<MountpointEntry>> {
        self.table
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .cloned()
    }

    /// Every mountpoint, by id.
    pub fn all(&self) -> Vec<Arc<MountpointEntry>> {
        self.table
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// An id no mountpoint has (random, as Janus picks them).
    pub fn free_id(&self) -> u64 {
        let table = self.table.read().unwrap_or_else(|e| e.into_inner());
        loop {
            let id = rand::random::<u32>() as u64 + 1;
            if !table.contains_key(&id) {
                return id;
            }
        }
    }

    /// Adds a mountpoint and starts its fan-out (needs the runtime).
    pub fn add(&self, new: NewMountpoint) -> Result<Arc<MountpointEntry>, IdTaken> {
        let mut table = self.table.write().unwrap_or_else(|e| e.into_inner());
        if table.contains_key(&new.id) {
            return Err(IdTaken);
        }
        let hub = self
            .hub
            .create(&format!("streaming/{}", new.id))
            .map_err(|_| IdTaken)?;
        let format = new.streams.iter().find_map(|s| match s.codec {
            Codec::H264 { .. } => Some(VideoFormat::H264),
            Codec::Vp8 => Some(VideoFormat::Vp8),
            Codec::Vp9 => Some(VideoFormat::Vp9),
            _ => None,
        });
        hub.set_video_format(format);
        hub.set_audio_codec(
            new.streams
                .iter()
                .find(|s| s.kind == MediaKind::Audio)
                .map(|s| s.codec.clone()),
        );
        let entry = Arc::new(MountpointEntry {
            id: new.id,
            name: new.name,
            settings: RwLock::new(Settings {
                description: new.description,
                metadata: new.metadata,
                secret: new.secret,
                pin: new.pin,
                is_private: new.is_private,
            }),
            enabled: AtomicBool::new(true),
            source: new.source,
            config: new.config,
            data: new.data,
            rtcp: [OnceLock::new(), OnceLock::new()],
            streams: RwLock::new(new.streams),
            hub,
            viewers: Mutex::new(HashMap::new()),
            live: AtomicBool::new(false),
            last_packet_ms: AtomicU64::new(0),
            cancel: CancellationToken::new(),
            vp8: Mutex::new(None),
            hubs: self.hub.clone(),
            workers: self.workers.clone(),
            publisher_keyframe: Mutex::new(None),
        });
        table.insert(entry.id, entry.clone());
        Ok(entry)
    }

    /// Removes mountpoint `id`: its sources stop, its fan-out ends.
    pub fn remove(&self, id: u64) -> Option<Arc<MountpointEntry>> {
        let entry = self
            .table
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id)?;
        entry.cancel.cancel();
        self.hub.remove(&format!("streaming/{id}"));
        if let Some(v) = entry.vp8.lock().unwrap_or_else(|e| e.into_inner()).take() {
            v.stop();
            self.hub.remove(&format!("streaming/{id}/vp8"));
        }
        Some(entry)
    }
}
