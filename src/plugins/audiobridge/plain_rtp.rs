//! Plain-RTP participants (Janus' `rtp` object on `join`): no WebRTC, one UDP port of the
//! gateway per participant. What arrives on it goes into the room's mix; the participant's
//! mix is sent from the same port (symmetric RTP) to the `ip`:`port` it gave.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::Arc;

use bytes::Bytes;
use serde_json::{json, Map, Value};
use tokio_util::sync::CancellationToken;

use super::errors::{AbError, AbResult, INVALID_ELEMENT, UNKNOWN_ERROR};
use super::fields::{str_of, u64_of, validate, Field, Kind};
use super::forwarders::UdpRtpSink;
use crate::plugins::HandleCtx;
use crate::services::rooms::{AudioPacket, MixCodec, OutSink, ParticipantInput};

/// Fields of the `rtp` object, as Janus checks them.
pub const RTP_FIELDS: &[Field] = &[
    ("ip", Kind::Str, false),
    ("port", Kind::UInt, false),
    ("payload_type", Kind::UInt, false),
    ("audiolevel_ext", Kind::UInt, false),
    ("fec", Kind::Bool, false),
];

/// What a plain-RTP participant asked for.
#[derive(Debug, Clone)]
pub struct RtpRequest {
    /// Where to send its mix, if it said.
    pub remote: Option<SocketAddr>,
    /// Payload type of its codec.
    pub payload_type: u8,
}

/// Reads and checks the `rtp` object of a `join`.
pub fn read(rtp: &Map<String, Value>, codec: MixCodec) -> AbResult<RtpRequest> {
    validate(rtp, RTP_FIELDS)?;
    let default_pt = match codec {
        MixCodec::Opus => 100,
        MixCodec::Pcmu => 0,
        MixCodec::Pcma => 8,
    };
    let payload_type = u64_of(rtp, "payload_type").unwrap_or(default_pt);
    if payload_type > 127 {
        return Err(AbError::new(
            INVALID_ELEMENT,
            "Invalid element (payload_type should be at most 127)",
        ));
    }
    let remote = match (str_of(rtp, "ip"), u64_of(rtp, "port")) {
        (Some(ip), Some(port)) if port > 0 && port <= u64::from(u16::MAX) => {
            let ip: IpAddr = ip.parse().map_err(|_| {
                AbError::new(
                    INVALID_ELEMENT,
                    format!("Invalid element (ip {ip} is not an address)"),
                )
            })?;
            Some(SocketAddr::new(ip, port as u16))
        }
        _ => None,
    };
    Ok(RtpRequest {
        remote,
        payload_type: payload_type as u8,
    })
}

/// The open media of a plain-RTP participant; closing it stops the receive task.
pub struct PlainRtp {
    /// The address the participant sends to (what `joined` reports).
    pub local: SocketAddr,
    /// The payload type expected and sent.
    pub payload_type: u8,
    stop: CancellationToken,
}

impl PlainRtp {
    /// `{"ip","port","payload_type"}` for the `joined` event.
    pub fn to_json(&self) -> Value {
        json!({"ip": self.local.ip().to_string(), "port": self.local.port(), "payload_type": self.payload_type})
    }

    /// Stops receiving and releases the port.
    pub fn close(&self) {
        self.stop.cancel();
    }
}

impl Drop for PlainRtp {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// The local address to announce: the one the system would send to `remote` from (so a
/// participant on loopback is told 127.0.0.1, one on the LAN the LAN address).
fn announce_ip(remote: Option<SocketAddr>) -> IpAddr {
    let probe = remote.unwrap_or(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9));
    UdpSocket::bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0))
        .and_then(|s| s.connect(probe).and_then(|_| s.local_addr()))
        .map(|a| a.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
}

/// Opens the participant's port, starts receiving into `input` (as a task of the handle), and
/// returns the sink of its mix when it gave an address.
pub fn open(
    ctx: &HandleCtx,
    req: &RtpRequest,
    input: ParticipantInput,
) -> AbResult<(PlainRtp, Option<OutSink>)> {
    let io = |e: std::io::Error| {
        tracing::warn!(error = %e, "audiobridge plain RTP socket");
        AbError::new(
            UNKNOWN_ERROR,
            "Could not open UDP socket for plain RTP participant",
        )
    };
    let socket =
        UdpSocket::bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0)).map_err(io)?;
    socket.set_nonblocking(true).map_err(io)?;
    let port = socket.local_addr().map_err(io)?.port();
    let local = SocketAddr::new(announce_ip(req.remote), port);
    let sink = match req.remote {
        Some(remote) => {
            let send = UdpRtpSink::from_socket(socket.try_clone().map_err(io)?, remote);
            let mut out = OutSink::random(Arc::new(send), req.payload_type);
            out.payload_type = req.payload_type;
            Some(out)
        }
        None => None,
    };
    let socket = tokio::net::UdpSocket::from_std(socket).map_err(io)?;
    let stop = CancellationToken::new();
    let pt = req.payload_type;
    let stopped = stop.clone();
    ctx.spawn(async move {
        let mut buf = vec![0u8; 2048];
        loop {
            tokio::select! {
                _ = stopped.cancelled() => break,
                got = socket.recv_from(&mut buf) => {
                    let Ok((n, _from)) = got else { continue };
                    if let Some(packet) = parse_rtp(&buf[..n], pt) {
                        input.push(packet);
                    }
                }
            }
        }
    });
    Ok((
        PlainRtp {
            local,
            payload_type: req.payload_type,
            stop,
        },
        sink,
    ))
}

/// Reads an RTP packet (RFC 3550 §5.1: CSRCs, header extension and padding skipped) of
/// payload type `pt`; anything else (RTCP, other payload types, garbage) is `None`.
pub fn parse_rtp(data: &[u8], pt: u8) -> Option<AudioPacket> {
    if data.len() < 12 || data[0] >> 6 != 2 || data[1] & 0x7f != pt {
        return None;
    }
    let cc = usize::from(data[0] & 0x0f);
    let mut start = 12 + 4 * cc;
    if data[0] & 0x10 != 0 {
        let ext = data.get(start + 2..start + 4)?;
        start += 4 + 4 * usize::from(u16::from_be_bytes([ext[0], ext[1]]));
    }
    let mut end = data.len();
    if data[0] & 0x20 != 0 {
        end = end.checked_sub(usize::from(*data.last()?))?;
    }
    if start >= end {
        return None;
    }
    Some(AudioPacket {
        level: None,
        seq: u16::from_be_bytes([data[2], data[3]]),
        timestamp: u32::from_be_bytes([data[4], data[5], data[6], data[7]]),
        payload: Bytes::copy_from_slice(&data[start..end]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rtp_with_csrcs_extension_and_padding_is_read() {
        let mut p = vec![0xb1, 0x00, 0x00, 0x07, 0, 0, 0x01, 0x40, 1, 2, 3, 4];
        p.extend_from_slice(&[9, 9, 9, 9]); // one CSRC
        p.extend_from_slice(&[0xbe, 0xde, 0x00, 0x01, 0x10, 0xaa, 0, 0]); // one-word extension
        p.extend_from_slice(&[5, 6, 7, 0, 0, 3]); // payload 5 6 7 + padding of 3
        let got = parse_rtp(&p, 0).unwrap();
        assert_eq!((got.seq, got.timestamp), (7, 320));
        assert_eq!(&got.payload[..], &[5, 6, 7]);
        assert!(parse_rtp(&p, 8).is_none(), "other payload type");
        assert!(parse_rtp(&p[..11], 0).is_none());
    }

    #[test]
    fn the_rtp_object_is_checked_as_janus_does() {
        let obj = |v: Value| v.as_object().unwrap().clone();
        let r = read(
            &obj(json!({"ip": "127.0.0.1", "port": 5004})),
            MixCodec::Pcmu,
        )
        .unwrap();
        assert_eq!((r.remote.unwrap().port(), r.payload_type), (5004, 0));
        assert_eq!(
            read(&obj(json!({"port": "x"})), MixCodec::Opus)
                .unwrap_err()
                .code,
            484
        );
        assert_eq!(
            read(&obj(json!({"ip": "nope", "port": 1})), MixCodec::Opus)
                .unwrap_err()
                .code,
            484
        );
        assert!(read(&obj(json!({})), MixCodec::Opus)
            .unwrap()
            .remote
            .is_none());
    }

    proptest! {
        #[test]
        fn any_datagram_parses_or_is_refused_without_panicking(data in proptest::collection::vec(any::<u8>(), 0..64), pt in 0u8..128) {
            if let Some(p) = parse_rtp(&data, pt) {
                prop_assert!(p.payload.len() < data.len());
            }
        }
    }
}
