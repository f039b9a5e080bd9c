//! The egress service: mountpoints re-published to RTMP servers (restreaming to a video
//! platform or a CDN). An egress is one more sink of a mountpoint (see
//! [`crate::services::streams`]).
//!
//! - [`job`]: one codec job per mountpoint on the workers: H.264 passes through (SPS/PPS into
//!   the AVC sequence header), VP8 is transcoded to H.264 ([`video`], one encoder per
//!   mountpoint, an IDR at least every 2 s), Opus → AAC-LC 48 kHz ([`audio`]); FLV timestamps
//!   from RTP timestamps on one A/V [`timeline`]. Its output goes to every target of the
//!   mountpoint.
//! - Each target is an [`RtmpPublisher`] (the `rtmp/` client): reconnects with backoff
//!   (500 ms doubling to 10 s); a publish the server refuses (wrong key) ends in `failed`.
//! - [`state`]: `connecting`, `live`, `reconnecting`, `failed` (with reason), `stopped`,
//!   broadcast as [`EgressEvent`]s ([`EgressService::subscribe`]).
//! - [`target`]: URL and key apart; the key is never logged nor returned. A second egress to
//!   the same host, port, application and key is refused ([`EgressError::Duplicate`]).
//!   `rtmps://` targets publish inside TLS (the server's certificate checked against the
//!   system's roots and `[egress] tls_ca_file`); a certificate that is not trusted ends the
//!   egress in `failed` with the TLS reason.
//!
//! Targets come inline (URL + key) or from the registry's `egress_targets`
//! ([`EgressService::start_registered`]); the streaming plugin registers a [`Resolver`] that
//! turns a mountpoint id or name into its media, so the panel can start registry targets too.

pub mod audio;
pub mod job;
pub mod panel;
pub mod sink;
pub mod state;
pub mod still;
pub mod target;
pub mod timeline;
pub mod video;
pub mod vp8_depacketizer;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, RwLock, Weak};

use bifrons_rtmp::client::{PublisherConfig, RtmpPublisher, TlsClientConfig};
use serde::Serialize;
use tokio::sync::broadcast;

pub use job::EgressCounters;
pub use state::{EgressEvent, EgressState};
pub use target::{Target, TargetError};

use self::job::{Control, EgressJob};
use self::sink::EgressSink;
use crate::services::streams::{Mountpoint, SinkId};
use crate::services::workers::{input_queue, JobHandle, WorkerPool};
use crate::storage::{EgressId, Storage, StorageError};

/// Packets queued to a mountpoint's egress job (about 2 s of 4 Mbit/s video plus audio).
const JOB_QUEUE: usize = 1024;

/// The video a mountpoint carries, as the egress sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoInput {
    /// H.264 (RFC 6184): passed through.
    H264,
    /// VP8 (RFC 7741): transcoded to H.264.
    Vp8,
}

/// What an egress needs of a mountpoint.
#[derive(Clone)]
pub struct MountpointMedia {
    /// Janus id of the mountpoint.
    pub id: u64,
    /// The fan-out to read.
    pub hub: Mountpoint,
    /// Its video, if any.
    pub video: Option<VideoInput>,
    /// Whether it carries Opus audio (48 kHz RTP clock).
    pub opus: bool,
}

/// Turns a mountpoint id or name (as an egress target's `mountpoint` holds it) into its media.
pub type Resolver = Arc<dyn Fn(&str) -> Option<MountpointMedia> + Send + Sync>;

/// Encoding settings of a mountpoint's egress (taken from its first target).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EgressOptions {
    /// H.264 bitrate when VP8 is transcoded, bit/s.
    pub video_bitrate: u32,
    /// Nominal frame rate of the transcoded H.264 (rate control and IDR spacing).
    pub fps: f32,
    /// AAC bitrate, bit/s.
    pub audio_bitrate: u32,
}

impl Default for EgressOptions {
    fn default() -> Self {
        Self {
            video_bitrate: 2_000_000,
            fps: 30.0,
            audio_bitrate: 128_000,
        }
    }
}

/// Why an egress request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EgressError {
    /// An egress to that target runs already.
    #[error("an egress to {target} with this key is already running (egress {id})")]
    Duplicate {
        /// The running egress.
        id: u64,
        /// The target, without key.
        target: String,
    },
    /// The URL or key is unusable.
    #[error(transparent)]
    Target(#[from] TargetError),
    /// No mountpoint of that id or name.
    #[error("no such mountpoint {0}")]
    NoMountpoint(String),
    /// The mountpoint has neither H.264/VP8 video nor Opus audio.
    #[error(
        "mountpoint {0} has no media an RTMP egress can carry (H.264 or VP8 video, Opus audio)"
    )]
    NoMedia(u64),
    /// No egress of that id.
    #[error("no such egress {0}")]
    NotFound(u64),
    /// The registry target does not exist, is disabled, or the registry failed.
    #[error("egress target: {0}")]
    Registry(String),
    /// The codecs or the worker could not start.
    #[error("egress could not start: {0}")]
    Start(String),
}

/// What `egress_list` shows of an egress. The key is never in it.
#[derive(Debug, Clone, Serialize)]
pub struct EgressInfo {
    /// Egress id (for `egress_stop`).
    pub id: u64,
    /// Mountpoint id.
    pub mountpoint: u64,
    /// `rtmp://host:port/app`.
    pub target: String,
    /// Registry target name, when started from the registry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Registry target id, when started from the registry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub egress_target_id: Option<i64>,
    /// `connecting`, `live`, `reconnecting`, `failed`, `stopped` (with `reason` when failing).
    #[serde(flatten)]
    pub state: EgressState,
    /// `passthrough`, `transcoded` (VP8 → H.264) or `none`.
    pub video: &'static str,
    /// `aac` or `none`.
    pub audio: &'static str,
    /// H.264 access units of the mountpoint passed through (shared by its targets).
    pub video_frames_passed: u64,
    /// H.264 access units encoded from VP8 (shared by its targets).
    pub video_frames_transcoded: u64,
    /// AAC access units produced (shared by its targets).
    pub audio_frames: u64,
    /// Packets of the mountpoint the egress job dropped because it fell behind.
    pub dropped_packets: u64,
    /// Milliseconds since 1970 when it was started.
    pub started_ms: u64,
}

struct Entry {
    mountpoint: u64,
    target: Target,
    state: Arc<Mutex<EgressState>>,
    publisher: Option<RtmpPublisher>,
    started_ms: u64,
}

/// One mountpoint's egress job and its sink.
struct Group {
    control: mpsc::Sender<Control>,
    job: JobHandle,
    hub: Mountpoint,
    sink: SinkId,
    stopped: Arc<AtomicBool>,
    counters: Arc<EgressCounters>,
    members: BTreeSet<u64>,
    video: &'static str,
    audio: &'static str,
}

impl Group {
    fn end(self) {
        self.stopped.store(true, Ordering::Release);
        self.job.stop();
        self.hub.remove_sink(self.sink);
    }
}

#[derive(Default)]
struct Table {
    entries: BTreeMap<u64, Entry>,
    groups: HashMap<u64, Group>,
}

/// The egresses of the gateway. Started once at boot; shared behind an `Arc`.
pub struct EgressService {
    workers: Arc<WorkerPool>,
    storage: Storage,
    resolver: RwLock<Option<Resolver>>,
    table: Mutex<Table>,
    events: broadcast::Sender<EgressEvent>,
    next_id: AtomicU64,
    /// TLS settings of `rtmps://` targets (`None`: the system's roots).
    tls: Option<Arc<TlsClientConfig>>,
    /// Whether audio-only mountpoints get a still picture as video (`[egress]
    /// audio_only_video = "still"`).
    still_for_audio_only: bool,
    me: Weak<EgressService>,
}

impl EgressService {
    /// A service running its codec jobs on `workers` and reading targets from `storage`;
    /// `rtmps://` targets trust the system's roots, audio-only mountpoints go out as
    /// audio-only FLV.
    pub fn new(workers: Arc<WorkerPool>, storage: Storage) -> Arc<Self> {
        Self::with_settings(workers, storage, None, false)
    }

    /// As [`new`](Self::new), `rtmps://` targets using `tls` (from
    /// [`bifrons_rtmp::client::tls_config`], e.g. with `[egress] tls_ca_file`), audio-only
    /// mountpoints sent with a still picture as video when `still_for_audio_only`.
    pub fn with_settings(
        workers: Arc<WorkerPool>,
        storage: Storage,
        tls: Option<Arc<TlsClientConfig>>,
        still_for_audio_only: bool,
    ) -> Arc<Self> {
        Arc::new_cyclic(|me| Self {
            workers,
            storage,
            resolver: RwLock::new(None),
            table: Mutex::new(Table::default()),
            events: broadcast::channel(256).0,
            next_id: AtomicU64::new(1),
            tls,
            still_for_audio_only,
            me: me.clone(),
        })
    }

    /// Sets how mountpoint ids or names are found (the streaming plugin, at start).
    pub fn set_resolver(&self, resolver: Resolver) {
        *self.resolver.write().unwrap_or_else(|e| e.into_inner()) = Some(resolver);
    }

    /// The media of mountpoint `id_or_name`, through the resolver.
    pub fn resolve(&self, id_or_name: &str) -> Option<MountpointMedia> {
        let resolver = self
            .resolver
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        resolver.and_then(|r| r(id_or_name))
    }

    /// State changes of every egress from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<EgressEvent> {
        self.events.subscribe()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts publishing `media` to `target` (needs the runtime). Errors: `Duplicate` when an
    /// egress to the same target is not over, `NoMedia`, `Start`.
    pub fn start(
        &self,
        media: &MountpointMedia,
        target: Target,
        options: EgressOptions,
    ) -> Result<EgressInfo, EgressError> {
        let mut table = self.lock();
        let mut over = Vec::new();
        for (id, e) in &table.entries {
            if e.target.same_as(&target) {
                if e.state.lock().unwrap_or_else(|e| e.into_inner()).is_final() {
                    over.push(*id);
                } else {
                    return Err(EgressError::Duplicate {
                        id: *id,
                        target: target.display().to_string(),
                    });
                }
            }
        }
        for id in over {
            table.entries.remove(&id);
        }
        if media.video.is_none() && !media.opus {
            return Err(EgressError::NoMedia(media.id));
        }
        if let std::collections::hash_map::Entry::Vacant(slot) = table.groups.entry(media.id) {
            slot.insert(self.start_group(media, options)?);
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let config = PublisherConfig {
            initial_backoff: state::BACKOFF.0,
            max_backoff: state::BACKOFF.1,
            retry_refused: false,
            tls: self.tls.clone(),
            ..PublisherConfig::new(target.publish_url())
        };
        let publisher = RtmpPublisher::start(config).map_err(|_| {
            EgressError::Target(TargetError::Invalid(
                "invalid egress url: no host, application or key".into(),
            ))
        })?;
        let Some(group) = table.groups.get_mut(&media.id) else {
            return Err(EgressError::Start("mountpoint job vanished".into()));
        };
        let _ = group.control.send(Control::Add(id, publisher.sender()));
        group.members.insert(id);
        let state = Arc::new(Mutex::new(EgressState::Connecting));
        let watcher = publisher.state();
        let control = group.control.clone();
        let me = self.me.clone();
        let (events, st, mountpoint) = (self.events.clone(), state.clone(), media.id);
        tokio::spawn(async move {
            state::follow(id, mountpoint, watcher, st, events, move || {
                let _ = control.send(Control::Keyframe);
            })
            .await;
            if let Some(service) = me.upgrade() {
                service.ended(id);
            }
        });
        tracing::info!(
            egress = id,
            mountpoint = media.id,
            target = target.display(),
            "egress started"
        );
        table.entries.insert(
            id,
            Entry {
                mountpoint: media.id,
                target,
                state,
                publisher: Some(publisher),
                started_ms: now_ms(),
            },
        );
        Ok(info(id, &table.entries[&id], table.groups.get(&media.id)))
    }

    fn start_group(
        &self,
        media: &MountpointMedia,
        options: EgressOptions,
    ) -> Result<Group, EgressError> {
        let video = match media.video {
            Some(VideoInput::H264) => Some(video::VideoRoute::passthrough()),
            Some(VideoInput::Vp8) => Some(
                video::VideoRoute::transcode(options.video_bitrate, options.fps)
                    .map_err(EgressError::Start)?,
            ),
            None => video::VideoRoute::for_audio_only(self.still_for_audio_only),
        };
        let audio = if media.opus {
            Some((
                audio::AudioRoute::new(options.audio_bitrate).map_err(EgressError::Start)?,
                options.audio_bitrate,
            ))
        } else {
            None
        };
        let video_name = match media.video {
            Some(VideoInput::H264) => "passthrough",
            Some(VideoInput::Vp8) => "transcoded",
            None if video.is_some() => "still",
            None => "none",
        };
        let (input, rx) = input_queue(JOB_QUEUE);
        let (control, control_rx) = mpsc::channel();
        let stopped = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(EgressCounters::default());
        let job = EgressJob::new(
            rx,
            control_rx,
            stopped.clone(),
            video,
            audio,
            counters.clone(),
        );
        let job = self
            .workers
            .submit(job)
            .map_err(|e| EgressError::Start(e.to_string()))?;
        let sink = media.hub.add_stream_sink(Arc::new(EgressSink {
            input,
            stopped: stopped.clone(),
        }));
        Ok(Group {
            control,
            job,
            hub: media.hub.clone(),
            sink,
            stopped,
            counters,
            members: BTreeSet::new(),
            video: video_name,
            audio: if media.opus { "aac" } else { "none" },
        })
    }

    /// Starts the registry target `name_or_id` (its name, or its row id as digits) on the
    /// mountpoint it names. Errors: `Registry` (unknown, disabled, registry down),
    /// `NoMountpoint`, and those of [`start`](Self::start).
    pub async fn start_registered(
        &self,
        name_or_id: &str,
        options: EgressOptions,
    ) -> Result<EgressInfo, EgressError> {
        let (target, media) = self.registered(name_or_id).await?;
        self.start(&media, target, options)
    }

    /// The registry target `name_or_id` and the media of its mountpoint.
    pub async fn registered(
        &self,
        name_or_id: &str,
    ) -> Result<(Target, MountpointMedia), EgressError> {
        let repo = self.storage.egress_targets();
        let row = match name_or_id.parse::<i64>() {
            Ok(id) => repo.get(EgressId(id)).await,
            Err(_) => repo.get_by_name(name_or_id).await,
        }
        .map_err(|e| match e {
            StorageError::NotFound { .. } => {
                EgressError::Registry(format!("no egress target {name_or_id}"))
            }
            other => {
                tracing::warn!(error = %other, "egress target lookup failed");
                EgressError::Registry("registry unavailable".into())
            }
        })?;
        if !row.spec.enabled {
            return Err(EgressError::Registry(format!(
                "egress target {} is disabled",
                row.spec.name
            )));
        }
        let key = row.spec.key.as_ref().map(|k| k.expose());
        let target = Target::new(&row.spec.url, key)?.registered(row.id.0, &row.spec.name);
        let media = self
            .resolve(&row.spec.mountpoint)
            .ok_or_else(|| EgressError::NoMountpoint(row.spec.mountpoint.clone()))?;
        Ok((target, media))
    }

    /// Stops egress `id`: it unpublishes and leaves the list. Errors: `NotFound`.
    pub fn stop(&self, id: u64) -> Result<EgressInfo, EgressError> {
        let mut table = self.lock();
        let Some(mut entry) = table.entries.remove(&id) else {
            return Err(EgressError::NotFound(id));
        };
        *entry.state.lock().unwrap_or_else(|e| e.into_inner()) = EgressState::Stopped;
        let result = info(id, &entry, table.groups.get(&entry.mountpoint));
        leave_group(&mut table, entry.mountpoint, id);
        if let Some(publisher) = entry.publisher.take() {
            tokio::spawn(publisher.close());
        }
        let _ = self.events.send(EgressEvent {
            id,
            mountpoint: entry.mountpoint,
            state: EgressState::Stopped,
        });
        tracing::info!(egress = id, mountpoint = entry.mountpoint, "egress stopped");
        Ok(result)
    }

    /// Stops every egress of mountpoint `mountpoint` (it is being destroyed).
    pub fn stop_mountpoint(&self, mountpoint: u64) {
        let ids: Vec<u64> = self
            .lock()
            .entries
            .iter()
            .filter(|(_, e)| e.mountpoint == mountpoint)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            let _ = self.stop(id);
        }
    }

    /// The egresses, by id; only those of `mountpoint` when given.
    pub fn list(&self, mountpoint: Option<u64>) -> Vec<EgressInfo> {
        let table = self.lock();
        table
            .entries
            .iter()
            .filter(|(_, e)| mountpoint.is_none_or(|m| e.mountpoint == m))
            .map(|(id, e)| info(*id, e, table.groups.get(&e.mountpoint)))
            .collect()
    }

    /// One egress.
    pub fn get(&self, id: u64) -> Option<EgressInfo> {
        let table = self.lock();
        let e = table.entries.get(&id)?;
        Some(info(id, e, table.groups.get(&e.mountpoint)))
    }

    /// A publisher ended on its own (failed): it leaves its mountpoint's job but stays listed
    /// with its reason until stopped.
    fn ended(&self, id: u64) {
        let mut table = self.lock();
        let Some(entry) = table.entries.get_mut(&id) else {
            return;
        };
        entry.publisher = None;
        let mountpoint = entry.mountpoint;
        leave_group(&mut table, mountpoint, id);
    }
}

fn leave_group(table: &mut Table, mountpoint: u64, id: u64) {
    let Some(group) = table.groups.get_mut(&mountpoint) else {
        return;
    };
    if !group.members.remove(&id) {
        return;
    }
    let _ = group.control.send(Control::Remove(id));
    if group.members.is_empty() {
        if let Some(g) = table.groups.remove(&mountpoint) {
            g.end();
        }
    }
}

fn info(id: u64, e: &Entry, group: Option<&Group>) -> EgressInfo {
    let count = |f: fn(&EgressCounters) -> &AtomicU64| {
        group.map_or(0, |g| f(&g.counters).load(Ordering::Relaxed))
    };
    EgressInfo {
        id,
        mountpoint: e.mountpoint,
        target: e.target.display().to_string(),
        name: e.target.name.clone(),
        egress_target_id: e.target.registry_id,
        state: e.state.lock().unwrap_or_else(|e| e.into_inner()).clone(),
        video: group.map_or("none", |g| g.video),
        audio: group.map_or("none", |g| g.audio),
        video_frames_passed: count(|c| &c.video_passed),
        video_frames_transcoded: count(|c| &c.video_transcoded),
        audio_frames: count(|c| &c.audio_frames),
        dropped_packets: count(|c| &c.dropped),
        started_ms: e.started_ms,
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
