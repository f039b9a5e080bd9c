//! The streams service: the **mountpoint hub** (like MediaMTX's path manager). Sources feed a
//! mountpoint (RTMP publish, RTP ports, WHIP, a room's mix); sinks read it (WebRTC viewers,
//! WHEP, RTMP egress, SIP listeners), all through [`super::sinks::MediaSink`].
//!
//! Named mountpoints with a fan-out task each and a keyframe cache ([`keyframe`] tells which
//! packets start a keyframe); the sources (RTMP and RTP ingest) and the sinks (viewers, with
//! their SSRC/sequence/timestamp rewriting) live with the streaming plugin.

pub mod keyframe;
mod mountpoint;

pub use keyframe::VideoFormat;
pub use mountpoint::{Mountpoint, MountpointStats, SinkId, StreamSink};

use std::collections::HashMap;
use std::sync::Mutex;

/// Why the hub refused a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HubError {
    /// A mountpoint of that name exists (Janus streaming error 456).
    #[error("mountpoint {0} already exists")]
    Exists(String),
}

/// Mountpoints by name.
pub struct MountpointHub {
    mountpoints: Mutex<HashMap<String, Mountpoint>>,
    /// Video packets each mountpoint's keyframe cache holds at most.
    keyframe_cache_packets: usize,
}

impl Default for MountpointHub {
    fn default() -> Self {
        Self::with_keyframe_cache(crate::config::DEFAULT_KEYFRAME_CACHE_PACKETS)
    }
}

impl MountpointHub {
    /// An empty hub whose mountpoints cache up to
    /// [`DEFAULT_KEYFRAME_CACHE_PACKETS`](crate::config::DEFAULT_KEYFRAME_CACHE_PACKETS) video
    /// packets.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty hub whose mountpoints cache up to `packets` video packets since their last
    /// keyframe (`[streaming] keyframe_cache_packets`; 0: none).
    pub fn with_keyframe_cache(packets: usize) -> Self {
        Self {
            mountpoints: Mutex::default(),
            keyframe_cache_packets: packets,
        }
    }

    /// Creates the mountpoint `name` and starts its fan-out task (needs a Tokio runtime).
    pub fn create(&self, name: &str) -> Result<Mountpoint, HubError> {
        let mut table = self.mountpoints.lock().unwrap_or_else(|e| e.into_inner());
        if table.contains_key(name) {
            return Err(HubError::Exists(name.to_string()));
        }
        let mountpoint = Mountpoint::start(name, self.keyframe_cache_packets);
        table.insert(name.to_string(), mountpoint.clone());
        Ok(mountpoint)
    }

    /// The mountpoint `name`, if it exists.
    pub fn get(&self, name: &str) -> Option<Mountpoint> {
        self.mountpoints
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
    }

    /// Removes the mountpoint `name`; its task stops and its sinks are let go.
    pub fn remove(&self, name: &str) -> bool {
        let removed = self
            .mountpoints
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name);
        match removed {
            Some(m) => {
                m.close();
                true
            }
            None => false,
        }
    }

    /// Names of the mountpoints, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .mountpoints
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect();
        names.sort();
        names
    }
}
