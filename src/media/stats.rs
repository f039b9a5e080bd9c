//! A PeerConnection's transport and stream statistics as Bifrons types, read from webrtc-rs'
//! `get_stats()` and its ICE and DTLS transports, for the Admin API's `handle_info`.
//!
//! The figures are webrtc-rs' own: RTP counters come from its stats interceptor (payload and
//! header bytes together, as Janus counts them), NACK counts from its NACK interceptors, the
//! RTT from RTCP receiver reports about what we send (RFC 3550 §6.4.1) and, for the selected
//! pair, from ICE connectivity checks.

use std::fmt;

use webrtc::peer_connection::RTCPeerConnection;
use webrtc::stats::StatsReportType;

use super::types::MediaKind;
use crate::ids::Mid;

/// State of the DTLS transport (W3C `RTCDtlsTransportState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DtlsState {
    /// No handshake started yet.
    #[default]
    New,
    /// Handshake under way.
    Connecting,
    /// Handshake done, SRTP keys exported.
    Connected,
    /// Closed by either side.
    Closed,
    /// Handshake or certificate check failed.
    Failed,
}

impl DtlsState {
    /// The name Janus' `handle_info` gives (`janus_get_dtls_srtp_state`): `created`, `trying`,
    /// `connected`, `failed`; Janus has no `closed` (it frees the DTLS context instead), so
    /// that one keeps the W3C name.
    pub fn janus_name(self) -> &'static str {
        match self {
            DtlsState::New => "created",
            DtlsState::Connecting => "trying",
            DtlsState::Connected => "connected",
            DtlsState::Closed => "closed",
            DtlsState::Failed => "failed",
        }
    }
}

/// One ICE candidate as the agent knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CandidateSummary {
    /// IP address (or the name it was given as).
    pub address: String,
    /// Port.
    pub port: u16,
    /// `host`, `srflx`, `prflx` or `relay` (RFC 8445 §5.1.1).
    pub kind: String,
    /// `udp` or `tcp`.
    pub protocol: String,
    /// ICE priority (RFC 8445 §5.1.2).
    pub priority: u32,
}

impl fmt::Display for CandidateSummary {
    /// Janus' notation for one side of its `selected-pair`: `addr:port [type,transport]`,
    /// with an IPv6 address in brackets (`[::1]:5000`) so that the port stays readable.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.address.contains(':') {
            write!(f, "[{}]", self.address)?;
        } else {
            write!(f, "{}", self.address)?;
        }
        write!(f, ":{} [{},{}]", self.port, self.kind, self.protocol)
    }
}

/// The candidate pair ICE selected.
#[derive(Debug, Clone, PartialEq)]
pub struct CandidatePair {
    /// Our side.
    pub local: CandidateSummary,
    /// The peer's side.
    pub remote: CandidateSummary,
    /// Round-trip time of the last connectivity check on this pair, milliseconds.
    pub rtt_ms: Option<f64>,
}

impl fmt::Display for CandidatePair {
    /// Janus' `selected-pair`: `local <-> remote`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} <-> {}", self.local, self.remote)
    }
}

/// What a stream carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamType {
    /// An RTP stream of this kind.
    Media(MediaKind),
    /// The SCTP data channels.
    Data,
}

impl StreamType {
    /// `audio`, `video` or `data`, Janus' `type` of a medium.
    pub fn as_str(self) -> &'static str {
        match self {
            StreamType::Media(kind) => kind.as_str(),
            StreamType::Data => "data",
        }
    }
}

/// Counters of one direction of a stream, since the PeerConnection started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// RTP packets (data channels: messages).
    pub packets: u64,
    /// Bytes, RTP headers included (data channels: message payload bytes).
    pub bytes: u64,
    /// NACKs: inbound, the ones we sent asking for packets lost on the way to us; outbound,
    /// the ones the peer sent about what we send. Always 0 for data channels.
    pub nacks: u64,
}

/// Statistics of one negotiated stream (one m-line).
#[derive(Debug, Clone, PartialEq)]
pub struct StreamStats {
    /// The m-line's mid; empty when it could not be told.
    pub mid: Mid,
    /// What it carries.
    pub stream_type: StreamType,
    /// SSRC of what we send, once sending started.
    pub ssrc: Option<u32>,
    /// SSRC of what the peer sends, once it arrived.
    pub ssrc_peer: Option<u32>,
    /// From the peer to us.
    pub inbound: Counters,
    /// From us to the peer.
    pub outbound: Counters,
    /// RTT the peer's RTCP receiver reports give for what we send, milliseconds.
    pub rtt_ms: Option<f64>,
    /// Packets of ours the peer reports lost (cumulative, RFC 3550 §6.4.1).
    pub lost_by_remote: Option<i64>,
}

/// A snapshot of one PeerConnection's transport and streams.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PeerStats {
    /// DTLS transport state.
    pub dtls_state: DtlsState,
    /// Our certificate's fingerprints, `algorithm value` each (as in `a=fingerprint`).
    pub fingerprints: Vec<String>,
    /// The pair ICE selected, once there is one.
    pub selected_pair: Option<CandidatePair>,
    /// Candidates we gathered.
    pub local_candidates: Vec<CandidateSummary>,
    /// Candidates of the peer: signalled, trickled or discovered (peer-reflexive).
    pub remote_candidates: Vec<CandidateSummary>,
    /// One entry per stream with RTP or data-channel activity, ordered by mid.
    pub streams: Vec<StreamStats>,
}

/// Reads the snapshot of `pc`; `data_mid` is the mid of the data-channel m-line, if any.
pub(super) async fn collect(pc: &RTCPeerConnection, data_mid: Option<Mid>) -> PeerStats {
    let dtls = pc.dtls_transport();
    let dtls_state = match dtls.state() {
        webrtc::dtls_transport::dtls_transport_state::RTCDtlsTransportState::Connecting => {
            DtlsState::Connecting
        }
        webrtc::dtls_transport::dtls_transport_state::RTCDtlsTransportState::Connected => {
            DtlsState::Connected
        }
        webrtc::dtls_transport::dtls_transport_state::RTCDtlsTransportState::Closed => {
            DtlsState::Closed
        }
        webrtc::dtls_transport::dtls_transport_state::RTCDtlsTransportState::Failed => {
            DtlsState::Failed
        }
        _ => DtlsState::New,
    };
    let fingerprints = dtls
        .get_local_parameters()
        .map(|p| {
            p.fingerprints
                .into_iter()
                .map(|f| format!("{} {}", f.algorithm, f.value))
                .collect()
        })
        .unwrap_or_default();
    let selected = dtls.ice_transport().get_selected_candidate_pair().await;
    let report = pc.get_stats().await;

    let mut local_candidates = Vec::new();
    let mut remote_candidates = Vec::new();
    let mut streams: Vec<StreamStats> = Vec::new();
    let mut remote_inbound = Vec::new();
    let mut data = None;
    let mut selected_pair = None;
    for entry in report.reports.values() {
        match entry {
            StatsReportType::LocalCandidate(c) | StatsReportType::RemoteCandidate(c) => {
                let summary = CandidateSummary {
                    address: c.ip.clone(),
                    port: c.port,
                    kind: c.candidate_type.to_string(),
                    protocol: if c.network_type.to_string().starts_with("tcp") {
                        "tcp".into()
                    } else {
                        "udp".into()
                    },
                    priority: c.priority,
                };
                if matches!(entry, StatsReportType::LocalCandidate(_)) {
                    local_candidates.push(summary);
                } else {
                    remote_candidates.push(summary);
                }
            }
            StatsReportType::InboundRTP(s) => {
                let st = stream_entry(&mut streams, &s.mid, media_kind(&s.kind));
                st.ssrc_peer = Some(s.ssrc);
                st.inbound.packets += s.packets_received;
                st.inbound.bytes += s.bytes_received + s.header_bytes_received;
                st.inbound.nacks += s.nack_count;
            }
            StatsReportType::OutboundRTP(s) => {
                let st = stream_entry(&mut streams, &s.mid, media_kind(&s.kind));
                st.ssrc = Some(s.ssrc);
                st.outbound.packets += s.packets_sent;
                st.outbound.bytes += s.bytes_sent + s.header_bytes_sent;
                st.outbound.nacks += s.nack_count;
            }
            StatsReportType::RemoteInboundRTP(s) => {
                remote_inbound.push((s.ssrc, s.round_trip_time, s.packets_lost));
            }
            StatsReportType::DataChannel(d) => {
                let counters: &mut (Counters, Counters) = data.get_or_insert_default();
                counters.0.packets += d.messages_received as u64;
                counters.0.bytes += d.bytes_received as u64;
                counters.1.packets += d.messages_sent as u64;
                counters.1.bytes += d.bytes_sent as u64;
            }
            _ => {}
        }
    }
    if let Some(pair) = selected {
        let id = format!("{}-{}", pair.local.stats_id, pair.remote.stats_id);
        let rtt_ms = report.reports.get(&id).and_then(|r| match r {
            StatsReportType::CandidatePair(p) if p.current_round_trip_time > 0.0 => {
                Some(p.current_round_trip_time * 1000.0)
            }
            _ => None,
        });
        let side = |c: &webrtc::ice_transport::ice_candidate::RTCIceCandidate| CandidateSummary {
            address: c.address.clone(),
            port: c.port,
            kind: c.typ.to_string(),
            protocol: c.protocol.to_string(),
            priority: c.priority,
        };
        selected_pair = Some(CandidatePair {
            local: side(&pair.local),
            remote: side(&pair.remote),
            rtt_ms,
        });
    }
    assemble(
        dtls_state,
        fingerprints,
        selected_pair,
        (local_candidates, remote_candidates),
        streams,
        // webrtc-rs 0.17 fills `round_trip_time` with its interceptor's milliseconds.
        remote_inbound,
        data.map(|counters| (data_mid.unwrap_or_default(), counters)),
    )
}

fn media_kind(kind: &str) -> MediaKind {
    if kind == "video" {
        MediaKind::Video
    } else {
        MediaKind::Audio
    }
}

/// The entry of `mid` in `streams`, added as media of `kind` when missing.
pub(super) fn stream_entry<'a>(
    streams: &'a mut Vec<StreamStats>,
    mid: &str,
    kind: MediaKind,
) -> &'a mut StreamStats {
    let index = match streams.iter().position(|s| s.mid.0 == mid) {
        Some(i) => i,
        None => {
            streams.push(StreamStats {
                mid: Mid(mid.to_string()),
                stream_type: StreamType::Media(kind),
                ssrc: None,
                ssrc_peer: None,
                inbound: Counters::default(),
                outbound: Counters::default(),
                rtt_ms: None,
                lost_by_remote: None,
            });
            streams.len() - 1
        }
    };
    &mut streams[index]
}

/// The snapshot as `handle_info` lists it: each outgoing stream with what the peer reports of
/// it (`remote_inbound`: SSRC, round-trip time in ms, packets lost), the data channels'
/// counters (mid, inbound, outbound) as one more stream, streams by mid, candidates by
/// priority, highest first.
pub(super) fn assemble(
    dtls_state: DtlsState,
    fingerprints: Vec<String>,
    selected_pair: Option<CandidatePair>,
    (mut local_candidates, mut remote_candidates): (Vec<CandidateSummary>, Vec<CandidateSummary>),
    mut streams: Vec<StreamStats>,
    remote_inbound: Vec<(u32, Option<f64>, i64)>,
    data: Option<(Mid, (Counters, Counters))>,
) -> PeerStats {
    for (ssrc, rtt_ms, lost) in remote_inbound {
        if let Some(st) = streams.iter_mut().find(|s| s.ssrc == Some(ssrc)) {
            st.rtt_ms = rtt_ms;
            st.lost_by_remote = Some(lost);
        }
    }
    if let Some((mid, (inbound, outbound))) = data {
        streams.push(StreamStats {
            mid,
            stream_type: StreamType::Data,
            ssrc: None,
            ssrc_peer: None,
            inbound,
            outbound,
            rtt_ms: None,
            lost_by_remote: None,
        });
    }
    streams.sort_by(|a, b| a.mid.0.cmp(&b.mid.0));
    local_candidates.sort_by_key(|c| std::cmp::Reverse(c.priority));
    remote_candidates.sort_by_key(|c| std::cmp::Reverse(c.priority));
    PeerStats {
        dtls_state,
        fingerprints,
        selected_pair,
        local_candidates,
        remote_candidates,
        streams,
    }
}

/// The mid of the `m=application` section of `sdp`, if it has one.
pub(super) fn data_mid(sdp: &str) -> Option<Mid> {
    let mut in_application = false;
    for line in sdp.lines() {
        if let Some(m) = line.strip_prefix("m=") {
            in_application = m.starts_with("application");
        } else if let (true, Some(mid)) = (in_application, line.strip_prefix("a=mid:")) {
            return Some(Mid(mid.trim().to_string()));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selected_pair_reads_like_janus() {
        let side = |address: &str, port, kind: &str| CandidateSummary {
            address: address.into(),
            port,
            kind: kind.into(),
            protocol: "udp".into(),
            priority: 1,
        };
        let pair = CandidatePair {
            local: side("127.0.0.1", 40000, "host"),
            remote: side("127.0.0.1", 50000, "prflx"),
            rtt_ms: None,
        };
        assert_eq!(
            pair.to_string(),
            "127.0.0.1:40000 [host,udp] <-> 127.0.0.1:50000 [prflx,udp]"
        );
        assert_eq!(
            side("::1", 5000, "host").to_string(),
            "[::1]:5000 [host,udp]"
        );
    }

    #[test]
    fn data_mid_is_the_application_sections() {
        let sdp = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:1\r\n";
        assert_eq!(data_mid(sdp), Some(Mid("1".into())));
        assert_eq!(data_mid("v=0\r\nm=audio 9 x 0\r\na=mid:0\r\n"), None);
    }
}
