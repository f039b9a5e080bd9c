//! The data port of an `rtp` mountpoint (Janus' `data: true` with `dataport`, or a `media`
//! item of type `data`): each UDP datagram is relayed to the mountpoint's viewers over their
//! data channel, as text (`datatype: "text"`, the default: bytes that are not UTF-8 are
//! replaced) or binary (`datatype: "binary"`). Text sources are slow (a few messages a second
//! at most), so each datagram walks the viewer list rather than a fan-out of its own.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use tokio::net::UdpSocket;

use super::mountpoints::{now_ms, MountpointEntry};
use crate::media::{DataMessage, DATA_CHANNEL_LABEL};

/// Largest datagram relayed, in bytes (an SCTP message of that size fits any data channel).
const MAX_DATAGRAM: usize = 16 * 1024;

/// Reads datagrams from `socket` and relays them to `entry`'s viewers until it is destroyed.
pub async fn run(socket: UdpSocket, binary: bool, entry: Arc<MountpointEntry>) {
    let cancel = entry.cancel.clone();
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut relayed = 0u64;
    loop {
        let n = tokio::select! {
            _ = cancel.cancelled() => return,
            r = socket.recv(&mut buf) => match r {
                Ok(n) => n,
                Err(e) => {
                    tracing::debug!(mountpoint = entry.id, error = %e, "data receive");
                    continue;
                }
            },
        };
        let message = if binary {
            DataMessage::Binary(Bytes::copy_from_slice(&buf[..n]))
        } else {
            DataMessage::Text(String::from_utf8_lossy(&buf[..n]).into_owned())
        };
        entry.last_packet_ms.store(now_ms(), Ordering::Relaxed);
        relayed += 1;
        if relayed == 1 {
            tracing::info!(
                mountpoint = entry.id,
                "data from the source relayed to viewers"
            );
        }
        for viewer in entry.viewers() {
            if let Some(ctx) = viewer.upgrade() {
                ctx.send_data(DATA_CHANNEL_LABEL, message.clone());
            }
        }
    }
}
