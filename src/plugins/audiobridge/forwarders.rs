//! RTP forwarders of a room's mix (`rtp_forward`, `stop_rtp_forward`, `listforwarders`): the
//! whole mix, encoded once per codec by the room's job, sent as plain RTP (RFC 3550) over UDP.

use std::collections::BTreeMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use serde_json::{json, Value};

use crate::media::RtpPacket;
use crate::services::rooms::MixCodec;
use crate::services::sinks::AudioSink;

/// Largest RTP packet written (header + a 20 ms Opus or G.711 payload fits easily).
const MAX_PACKET: usize = 1500;

/// A non-blocking UDP sender of RTP packets to one address, usable from the worker thread.
pub struct UdpRtpSink {
    socket: UdpSocket,
    dest: SocketAddr,
    sent: AtomicU64,
    dropped: AtomicU64,
}

impl UdpRtpSink {
    /// A sink sending from an ephemeral local port to `dest`.
    pub fn new(dest: SocketAddr) -> std::io::Result<Self> {
        let bind: SocketAddr = if dest.is_ipv4() {
            "0.0.0.0:0".parse().map_err(std::io::Error::other)?
        } else {
            "[::]:0".parse().map_err(std::io::Error::other)?
        };
        let socket = UdpSocket::bind(bind)?;
        socket.set_nonblocking(true)?;
        Ok(Self {
            socket,
            dest,
            sent: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
        })
    }

    /// A sink sending from `socket` (non-blocking, already bound) to `dest`: a plain-RTP
    /// participant's mix leaves from the port it sends to (symmetric RTP).
    pub fn from_socket(socket: UdpSocket, dest: SocketAddr) -> Self {
        Self {
            socket,
            dest,
            sent: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
        }
    }

    /// Packets sent so far.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }
}

/// Writes the 12-byte RTP header (RFC 3550 §5.1: V=2, no padding, extension or CSRC) and the
/// payload into `buf`; returns the length, or `None` when it does not fit.
pub fn write_rtp(packet: &RtpPacket, buf: &mut [u8]) -> Option<usize> {
    let len = 12 + packet.payload.len();
    if len > buf.len() {
        return None;
    }
    buf[0] = 0x80;
    buf[1] = (packet.payload_type & 0x7f) | if packet.marker { 0x80 } else { 0 };
    buf[2..4].copy_from_slice(&packet.sequence_number.to_be_bytes());
    buf[4..8].copy_from_slice(&packet.timestamp.to_be_bytes());
    buf[8..12].copy_from_slice(&packet.ssrc.to_be_bytes());
    buf[12..len].copy_from_slice(&packet.payload);
    Some(len)
}

impl AudioSink for UdpRtpSink {
    fn send_audio(&self, packet: RtpPacket) -> bool {
        let mut buf = [0u8; MAX_PACKET];
        let Some(len) = write_rtp(&packet, &mut buf) else {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return false;
        };
        match self.socket.send_to(&buf[..len], self.dest) {
            Ok(_) => {
                self.sent.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(_) => {
                // Would block, or the far end is not listening (ICMP refused): drop, count.
                self.dropped.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }
}

/// What `listforwarders` reports of one forwarder.
#[derive(Debug, Clone)]
pub struct ForwarderInfo {
    /// Destination host as given.
    pub host: String,
    /// Destination port.
    pub port: u16,
    /// SSRC of the stream.
    pub ssrc: u32,
    /// Codec.
    pub codec: MixCodec,
    /// Payload type.
    pub ptype: u8,
    /// `always_on` as given.
    pub always_on: bool,
}

/// The forwarders of one room, by stream id.
#[derive(Default)]
pub struct Forwarders {
    list: Mutex<BTreeMap<u64, ForwarderInfo>>,
}

impl Forwarders {
    /// Records a forwarder under a fresh stream id (32-bit, non-zero, as Janus) and returns it.
    pub fn insert(&self, info: ForwarderInfo) -> u64 {
        let mut list = self.list.lock().unwrap_or_else(|e| e.into_inner());
        let mut id = u64::from(rand::random::<u32>()).max(1);
        while list.contains_key(&id) {
            id = u64::from(rand::random::<u32>()).max(1);
        }
        list.insert(id, info);
        id
    }

    /// Forgets forwarder `id`; whether it existed.
    pub fn remove(&self, id: u64) -> bool {
        self.list
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id)
            .is_some()
    }

    /// `rtp_forwarders` of `listforwarders`.
    pub fn to_json(&self) -> Vec<Value> {
        self.list
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(id, f)| {
                json!({
                    "stream_id": id,
                    "ip": f.host,
                    "port": f.port,
                    "ssrc": f.ssrc,
                    "codec": f.codec.name(),
                    "ptype": f.ptype,
                    "srtp": false,
                    "always_on": f.always_on,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn rtp_header_is_written_as_rfc_3550_lays_it_out() {
        let p = RtpPacket {
            payload_type: 100,
            sequence_number: 0x1234,
            timestamp: 0xdead_beef,
            ssrc: 0x0102_0304,
            marker: true,
            payload: Bytes::from_static(&[9, 8, 7]),
        };
        let mut buf = [0u8; 32];
        let n = write_rtp(&p, &mut buf).unwrap();
        assert_eq!(
            &buf[..n],
            &[0x80, 0xe4, 0x12, 0x34, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 9, 8, 7]
        );
        assert!(write_rtp(&p, &mut [0u8; 14]).is_none());
    }

    #[test]
    fn udp_sink_delivers_packets_to_a_socket() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let sink = UdpRtpSink::new(rx.local_addr().unwrap()).unwrap();
        let p = RtpPacket {
            payload_type: 0,
            sequence_number: 1,
            timestamp: 160,
            ssrc: 5,
            marker: false,
            payload: Bytes::from(vec![0xffu8; 160]),
        };
        assert!(sink.send_audio(p));
        let mut buf = [0u8; 2048];
        let (n, _) = rx.recv_from(&mut buf).unwrap();
        assert_eq!(n, 172);
        assert_eq!(sink.sent(), 1);
    }
}
