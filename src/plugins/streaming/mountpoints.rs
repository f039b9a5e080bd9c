//! The streaming plugin's mountpoints: what `list`/`info` show, who watches, which codecs to
//! offer, and the hub mountpoint that carries the media.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::secret::HashedSecret;
use crate::ids::HandleId;
use crate::media::{Codec, MediaKind};
use crate::plugins::HandleRef;
use crate::services::streams::{Mountpoint, MountpointHub, VideoFormat};

/// Where a mountpoint's media comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// RTP on UDP ports (Janus' `rtp` type): the ports bound, per kind.
    Rtp {
        /// Audio port, if any.
        audio_port: Option<u16>,
        /// Video port, if any.
        video_port: Option<u16>,
    },
    /// An RTMP publisher with a stream key bound to this mountpoint.
    Rtmp,
}

impl Source {
    /// The name `info` gives the source.
    pub fn name(&self) -> &'static str {
        match self {
            Source::Rtp { .. } => "rtp",
            Source::Rtmp => "rtmp",
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
    /// Whether viewers may watch.
    pub enabled: AtomicBool,
    /// Where media comes from.
    pub source: Source,
    /// The streams offered to viewers; video's H.264 profile follows the publisher's SPS.
    streams: RwLock<Vec<MediaStream>>,
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
}

impl MountpointEntry {
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
            .collect()
    }

    fn age_ms(&self) -> Option<u64> {
        let last = self.last_packet_ms.load(Ordering::Relaxed);
        (last > 0).then(|| now_ms().saturating_sub(last))
    }

    /// The `list` entry.
    pub fn list_json(&self) -> Value {
        let mut v = json!({
            "id": self.id,
            "type": "live",
            "description": self.description,
            "enabled": self.enabled.load(Ordering::Relaxed),
            "media": self.media_json(false),
            "viewers": self.viewer_count(),
        });
        if let Some(m) = &self.metadata {
            v["metadata"] = json!(m);
        }
        v
    }

    /// The `info` object; `admin` (the right secret, or none set) adds the name, viewers and
    /// source details. Secrets and PINs are never sent back.
    pub fn info_json(&self, admin: bool) -> Value {
        let mut v = json!({
            "id": self.id,
            "description": self.description,
            "enabled": self.enabled.load(Ordering::Relaxed),
            "type": "live",
            "source": self.source.name(),
            "live": self.is_live(),
            "media": self.media_json(true),
        });
        if let Some(m) = &self.metadata {
            v["metadata"] = json!(m);
        }
        if admin {
            v["name"] = json!(self.name);
            v["viewers"] = json!(self.viewer_count());
            if self.is_private {
                v["is_private"] = json!(true);
            }
            if self.pin.is_some() {
                v["pin_required"] = json!(true);
            }
            if let Source::Rtp {
                audio_port,
                video_port,
            } = &self.source
            {
                let mut ports = Vec::new();
                if let Some(p) = audio_port {
                    ports.push(json!({"type": "audio", "mid": "a", "port": p}));
                }
                if let Some(p) = video_port {
                    ports.push(json!({"type": "video", "mid": "v", "port": p}));
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
}

/// Why a mountpoint could not be added.
#[derive(Debug)]
pub struct IdTaken;

impl Mountpoints {
    /// An empty set whose media go through `hub`.
    pub fn new(hub: Arc<MountpointHub>) -> Self {
        Self {
            table: RwLock::new(BTreeMap::new()),
            hub,
        }
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
        let entry = Arc::new(MountpointEntry {
            id: new.id,
            name: new.name,
            description: new.description,
            metadata: new.metadata,
            secret: new.secret,
            pin: new.pin,
            is_private: new.is_private,
            enabled: AtomicBool::new(true),
            source: new.source,
            streams: RwLock::new(new.streams),
            hub,
            viewers: Mutex::new(HashMap::new()),
            live: AtomicBool::new(false),
            last_packet_ms: AtomicU64::new(0),
            cancel: CancellationToken::new(),
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
        Some(entry)
    }
}
