//! `rtp` mountpoints: RTP received on UDP ports (ffmpeg, GStreamer, a camera) feeds the
//! mountpoint as it comes; the viewers' sinks rewrite SSRC, sequence numbers and timestamps.
//! A source silent for [`SILENCE`] is reported `stopped`, and `started` when it comes back.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use serde_json::json;
use tokio::net::UdpSocket;

use super::mountpoints::{now_ms, MountpointEntry};
use super::rtp_header;
use crate::media::MediaKind;

/// Silence after which the source counts as gone.
pub const SILENCE: Duration = Duration::from_secs(3);

/// Largest datagram read.
const MAX_DATAGRAM: usize = 2048;

/// Reads RTP of `kind` from `socket` into `entry` until the mountpoint is destroyed. Packets
/// whose payload type is not `pt` (when given) are dropped, so RTCP or a stray stream on the
/// port never reaches viewers.
pub async fn run(socket: UdpSocket, kind: MediaKind, pt: Option<u8>, entry: Arc<MountpointEntry>) {
    let cancel = entry.cancel.clone();
    let mut buf = BytesMut::with_capacity(MAX_DATAGRAM * 4);
    let mut bad = 0u64;
    loop {
        if buf.capacity() < MAX_DATAGRAM {
            buf.reserve(MAX_DATAGRAM * 4);
        }
        buf.resize(MAX_DATAGRAM, 0);
        let received = tokio::select! {
            _ = cancel.cancelled() => return,
            r = tokio::time::timeout(SILENCE, socket.recv(&mut buf)) => r,
        };
        let n = match received {
            Err(_) => {
                if entry.set_live(false) {
                    entry.hub.source_gone();
                    entry.notify_viewers(json!({ "status": "stopped", "id": entry.id }));
                }
                continue;
            }
            Ok(Err(e)) => {
                tracing::debug!(mountpoint = entry.id, error = %e, "RTP receive");
                continue;
            }
            Ok(Ok(n)) => n,
        };
        let datagram = buf.split_to(n).freeze();
        let Some(packet) = rtp_header::parse(&datagram) else {
            bad += 1;
            if bad % 100 == 1 {
                tracing::warn!(mountpoint = entry.id, bad, "not an RTP packet, dropped");
            }
            continue;
        };
        if pt.is_some_and(|pt| pt != packet.payload_type) {
            continue;
        }
        entry.last_packet_ms.store(now_ms(), Ordering::Relaxed);
        if entry.set_live(true) {
            entry.notify_viewers(json!({ "status": "started", "id": entry.id }));
        }
        entry.hub.publish(kind, packet);
    }
}
