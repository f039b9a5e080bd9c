//! Mountpoints fed by an audio bridge room's mix (a Bifrons extension): the room asks through
//! [`crate::services::rooms::restream`], this module adds an audio-only Opus mountpoint of
//! source `audiobridge` and hands back the sink the room's mixer publishes into. Viewers,
//! WHEP and RTMP egress treat it as any other mountpoint; it goes away with the room (or the
//! room's `mountpoint` request with `enable: false`).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use serde_json::json;

use super::mountpoints::{
    now_ms, MediaStream, MountpointEntry, Mountpoints, NewMountpoint, Source,
};
use crate::media::{Codec, MediaKind, RtpPacket};
use crate::plugins::PluginHost;
use crate::services::egress::EgressService;
use crate::services::rooms::restream::{
    MountpointHost, RestreamError, RoomMountpoint, RoomMountpointRequest,
};
use crate::services::sinks::AudioSink;

/// Registers the streaming plugin as the owner of rooms' mountpoints.
pub fn register(host: &PluginHost, mountpoints: &Arc<Mountpoints>) {
    host.services
        .room_mountpoints
        .set_host(Arc::new(RoomSources {
            mountpoints: mountpoints.clone(),
            egress: host.services.egress.clone(),
            open: Mutex::default(),
        }));
}

/// The rooms' mountpoints: those it opened, by id (touched on open and close only).
struct RoomSources {
    mountpoints: Arc<Mountpoints>,
    egress: Arc<EgressService>,
    open: Mutex<HashMap<u64, Arc<MountpointEntry>>>,
}

impl MountpointHost for RoomSources {
    fn open(&self, request: &RoomMountpointRequest) -> Result<RoomMountpoint, RestreamError> {
        let id = match request.id {
            Some(id) if self.mountpoints.get(id).is_some() => {
                return Err(RestreamError::IdTaken(id))
            }
            Some(id) => id,
            None => self.mountpoints.free_id(),
        };
        let entry = self
            .mountpoints
            .add(NewMountpoint {
                id,
                name: request.name.clone(),
                description: request.description.clone(),
                metadata: None,
                secret: None,
                pin: None,
                is_private: false,
                source: Source::Room,
                streams: vec![MediaStream {
                    mid: "a",
                    kind: MediaKind::Audio,
                    codec: Codec::Opus,
                }],
                config: None,
                data: false,
            })
            .map_err(|_| RestreamError::IdTaken(id))?;
        self.open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, entry.clone());
        tracing::info!(mountpoint = id, name = %request.name, "room mountpoint opened");
        Ok(RoomMountpoint {
            id,
            sink: Arc::new(RoomFeed { entry }),
        })
    }

    fn close(&self, id: u64) {
        let Some(mine) = self
            .open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id)
        else {
            return;
        };
        // Destroyed through the streaming plugin meanwhile, and the id reused: not ours.
        if !self
            .mountpoints
            .get(id)
            .is_some_and(|current| Arc::ptr_eq(&current, &mine))
        {
            return;
        }
        let Some(mp) = self.mountpoints.remove(id) else {
            return;
        };
        self.egress.stop_mountpoint(id);
        for v in mp.viewers() {
            if let Some(ctx) = v.upgrade() {
                ctx.push_event(None, super::event(json!({ "status": "stopped" })), None);
                ctx.close_pc();
            }
        }
        tracing::info!(mountpoint = id, "room mountpoint closed");
    }
}

/// The room mixer's sink: each Opus packet of the mix goes into the mountpoint's fan-out.
struct RoomFeed {
    entry: Arc<MountpointEntry>,
}

impl AudioSink for RoomFeed {
    fn send_audio(&self, packet: RtpPacket) -> bool {
        self.entry.last_packet_ms.store(now_ms(), Ordering::Relaxed);
        if self.entry.set_live(true) {
            self.entry
                .notify_viewers(json!({ "status": "started", "id": self.entry.id }));
        }
        self.entry.hub.publish(MediaKind::Audio, packet)
    }
}
