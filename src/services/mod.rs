//! Services: the engines that many handles and several plugins share.
//!
//! A service is started once at boot by the composition root, owns the threads, sockets and
//! files behind a feature, and is handed to every plugin that needs it (through
//! [`crate::plugins::PluginHost`]). It knows no Janus JSON and no plugin: plugins map Janus
//! requests onto services, and features that cross plugins (a room recorded, the audio bridge
//! dialling SIP, voicemail taking unanswered calls, WHEP playing mountpoints) meet here
//! instead of one plugin importing another. What a service exposes (counters, open
//! recordings, jobs per worker, registered extensions, mountpoints) is also what the admin
//! panel's live view and the metrics read.
//!
//! Services depend only on [`crate::media`] (to send to WebRTC peers), [`crate::config`],
//! [`crate::storage`], [`crate::ids`] and the leaf crates.
//!
//! - [`workers`]: codec work (transcoding legs, mixers) on `cores − 1` OS threads with a 20 ms
//!   clock, fed through bounded queues.
//! - [`recording`]: Opus → Ogg files written by one writer thread, flushed page by page, each
//!   with its row in the registry.
//! - [`sip`]: the inbound router (extension → targets; the user-agent pool comes with the SIP
//!   plugin).
//! - [`streams`]: the mountpoint hub (sources feed, sinks read).
//! - [`rooms`]: audio rooms mixed on the workers (jitter buffers, decoders, mix-minus,
//!   shared encodings), the engine of the audio bridge.
//! - [`sinks`]: the traits every media destination implements.
//! - [`egress`]: mountpoints re-published to RTMP servers (H.264 passthrough, VP8 → H.264,
//!   Opus → AAC), with reconnects and state events.
//! - `status`: the board where services report SIP registrations and publishers for the admin
//!   panel's live view ([`crate::web::panel::status::StatusBoard`]).

pub mod egress;
pub mod recording;
pub mod rooms;
pub mod sinks;
pub mod sip;
pub mod streams;
pub mod voicemail;
pub mod workers;

use std::sync::Arc;

use anyhow::Context;

use crate::config::Config;
use crate::storage::Storage;
use crate::web::panel::status::StatusBoard;

/// The services a plugin can reach through its host.
#[derive(Clone)]
pub struct Services {
    /// Codec threads on a 20 ms clock.
    pub workers: Arc<workers::WorkerPool>,
    /// Opus → Ogg recordings with their registry rows.
    pub recording: recording::RecordingService,
    /// SIP: the inbound router (and, with the SIP plugin, the user-agent pool).
    pub sip: Arc<sip::SipService>,
    /// The mountpoint hub.
    pub streams: Arc<streams::MountpointHub>,
    /// Where services report SIP registrations and RTMP/WHIP publishers for the live view.
    pub status: StatusBoard,
    /// RTMP egress of mountpoints.
    pub egress: Arc<egress::EgressService>,
    /// Where the audio bridge opens a room's mountpoint (filled by the streaming plugin).
    pub room_mountpoints: Arc<rooms::restream::RoomMountpoints>,
}

impl Services {
    /// Starts every service from the configuration (inside the runtime). Errors name the
    /// service that failed.
    pub fn start(config: &Config, storage: &Storage) -> anyhow::Result<Self> {
        let workers = workers::WorkerPool::from_config(&config.workers)
            .context("starting the codec workers")?;
        let recording = recording::RecordingService::start(&config.recordings.dir, storage.clone())
            .with_context(|| {
                format!("starting recordings in {}", config.recordings.dir.display())
            })?;
        tracing::info!(threads = workers.threads(), recordings = %config.recordings.dir.display(), "services started");
        let status = StatusBoard::new();
        let workers = Arc::new(workers);
        let egress_tls = match config.egress.tls_ca_file.as_str() {
            "" => None,
            file => Some(
                bifrons_rtmp::client::tls_config(Some(std::path::Path::new(file)))
                    .context("reading [egress] tls_ca_file")?,
            ),
        };
        Ok(Self {
            egress: egress::EgressService::with_settings(
                workers.clone(),
                storage.clone(),
                egress_tls,
                config.egress.audio_only_video == crate::config::AudioOnlyVideo::Still,
            ),
            workers,
            recording,
            sip: Arc::new(sip::SipService::new(status.clone())),
            streams: Arc::new(streams::MountpointHub::with_keyframe_cache(
                config.streaming.keyframe_cache_packets,
            )),
            status,
            room_mountpoints: Arc::default(),
        })
    }

    /// Stops what runs on its own threads: the workers, and the recording writer once
    /// every open recording is closed.
    pub async fn shutdown(&self) {
        self.recording.shutdown().await;
        self.workers.shutdown();
    }
}
