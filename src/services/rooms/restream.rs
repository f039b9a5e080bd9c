//! Restreaming a room's mix as an audio-only mountpoint: where the audio bridge (which owns
//! rooms) meets the streaming plugin (which owns mountpoints) without either importing the
//! other.
//!
//! The streaming plugin registers a [`MountpointHost`] at start; the audio bridge asks it for
//! a mountpoint fed by a room and adds the returned [`AudioSink`] as a forwarder of the room's
//! whole mix in Opus (48 kHz RTP clock). The mix is therefore encoded once for every viewer,
//! egress and recording of that mountpoint: viewers get it through `janus.plugin.streaming`
//! like any other mountpoint, and the RTMP egress service restreams it as AAC.

use std::sync::{Arc, RwLock};

use crate::services::sinks::AudioSink;

/// A mountpoint opened for a room.
pub struct RoomMountpoint {
    /// Its id in the streaming plugin (what `watch` and `egress_start` take).
    pub id: u64,
    /// Where the room's Opus mix goes: publishes into the mountpoint's fan-out; never blocks.
    pub sink: Arc<dyn AudioSink>,
}

/// What a room asks for.
#[derive(Debug, Clone)]
pub struct RoomMountpointRequest {
    /// The mountpoint id wanted; `None`: any free one.
    pub id: Option<u64>,
    /// Its name (`info`, egress targets naming a mountpoint).
    pub name: String,
    /// Its description (`list`).
    pub description: String,
}

/// Why no mountpoint was opened.
#[derive(Debug, thiserror::Error)]
pub enum RestreamError {
    /// No streaming plugin is loaded.
    #[error("restreaming is not available (no streaming plugin)")]
    Unavailable,
    /// The id asked for belongs to another mountpoint.
    #[error("mountpoint {0} already exists")]
    IdTaken(u64),
    /// The mountpoint could not be started.
    #[error("mountpoint not started: {0}")]
    Failed(String),
}

/// The side that owns mountpoints (the streaming plugin).
pub trait MountpointHost: Send + Sync {
    /// Adds an audio-only Opus mountpoint fed by the returned sink.
    fn open(&self, request: &RoomMountpointRequest) -> Result<RoomMountpoint, RestreamError>;
    /// Removes mountpoint `id` if it is one [`MountpointHost::open`] made (and still the same
    /// one): its viewers are told it stopped, its egresses stop.
    fn close(&self, id: u64);
}

/// The slot the streaming plugin fills at start; shared through [`crate::services::Services`].
#[derive(Default)]
pub struct RoomMountpoints {
    host: RwLock<Option<Arc<dyn MountpointHost>>>,
}

impl RoomMountpoints {
    /// Registers the mountpoint owner (the streaming plugin, once at start).
    pub fn set_host(&self, host: Arc<dyn MountpointHost>) {
        *self.host.write().unwrap_or_else(|e| e.into_inner()) = Some(host);
    }

    fn host(&self) -> Result<Arc<dyn MountpointHost>, RestreamError> {
        self.host
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or(RestreamError::Unavailable)
    }

    /// Opens a mountpoint for a room. Errors: [`RestreamError`].
    pub fn open(&self, request: &RoomMountpointRequest) -> Result<RoomMountpoint, RestreamError> {
        self.host()?.open(request)
    }

    /// Closes mountpoint `id` (nothing when no host or not a room's mountpoint).
    pub fn close(&self, id: u64) {
        if let Ok(host) = self.host() {
            host.close(id);
        }
    }
}
