//! The Admin API's snapshot ([`PeerStats`]) of a loop PeerConnection, from `rtc`'s W3C
//! statistics (webrtc-stats: transport, candidate pair, candidates, RTP streams, data channels).

use std::time::Instant;

use rtc::peer_connection::transport::RTCDtlsTransportState;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use rtc::statistics::report::RTCStatsReportEntry;
use rtc::statistics::stats::ice_candidate::RTCIceCandidateStats;
use rtc::statistics::StatsSelector;

use super::loop_peer::LoopPeer;
use crate::media::stats::{assemble, data_mid, stream_entry};
use crate::media::{
    CandidatePair, CandidateSummary, Counters, DtlsState, MediaKind, PeerStats, StreamStats,
};

fn candidate(c: &RTCIceCandidateStats) -> CandidateSummary {
    CandidateSummary {
        address: c.address.clone().unwrap_or_default(),
        port: c.port,
        kind: c.candidate_type.to_string(),
        protocol: c.protocol.clone(),
        priority: u32::from(c.priority),
    }
}

fn media_kind(kind: RtpCodecKind) -> MediaKind {
    if kind == RtpCodecKind::Video {
        MediaKind::Video
    } else {
        MediaKind::Audio
    }
}

/// Reads the snapshot of `peer` at `now`.
pub fn collect(peer: &mut LoopPeer, now: Instant) -> PeerStats {
    let (local_sdp, _) = peer.sdps();
    let local_sdp = local_sdp.unwrap_or_default();
    let fingerprints = local_sdp
        .lines()
        .filter_map(|l| l.strip_prefix("a=fingerprint:"))
        .map(|f| f.trim().to_owned())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let report = peer.pc_mut().get_stats(now, StatsSelector::None);

    let mut dtls_state = DtlsState::New;
    let mut selected_id = String::new();
    let mut local_candidates = Vec::new();
    let mut remote_candidates = Vec::new();
    let mut streams: Vec<StreamStats> = Vec::new();
    let mut remote_inbound = Vec::new();
    let mut data: Option<(Counters, Counters)> = None;
    for entry in report.iter() {
        match entry {
            RTCStatsReportEntry::Transport(t) => {
                dtls_state = match t.dtls_state {
                    RTCDtlsTransportState::Connecting => DtlsState::Connecting,
                    RTCDtlsTransportState::Connected => DtlsState::Connected,
                    RTCDtlsTransportState::Closed => DtlsState::Closed,
                    RTCDtlsTransportState::Failed => DtlsState::Failed,
                    _ => DtlsState::New,
                };
                selected_id = t.selected_candidate_pair_id.clone();
            }
            RTCStatsReportEntry::LocalCandidate(c) => local_candidates.push(candidate(c)),
            RTCStatsReportEntry::RemoteCandidate(c) => remote_candidates.push(candidate(c)),
            RTCStatsReportEntry::InboundRtp(s) => {
                let received = &s.received_rtp_stream_stats;
                let st = stream_entry(
                    &mut streams,
                    &s.mid,
                    media_kind(received.rtp_stream_stats.kind),
                );
                st.ssrc_peer = Some(received.rtp_stream_stats.ssrc);
                st.inbound.packets += received.packets_received;
                st.inbound.bytes += s.bytes_received + s.header_bytes_received;
                st.inbound.nacks += u64::from(s.nack_count);
            }
            RTCStatsReportEntry::OutboundRtp(s) => {
                let sent = &s.sent_rtp_stream_stats;
                let st = stream_entry(&mut streams, &s.mid, media_kind(sent.rtp_stream_stats.kind));
                st.ssrc = Some(sent.rtp_stream_stats.ssrc);
                st.outbound.packets += sent.packets_sent;
                st.outbound.bytes += sent.bytes_sent + s.header_bytes_sent;
                st.outbound.nacks += u64::from(s.nack_count);
            }
            RTCStatsReportEntry::RemoteInboundRtp(s) => {
                let received = &s.received_rtp_stream_stats;
                // webrtc-stats gives seconds.
                let rtt = s.round_trip_time;
                remote_inbound.push((
                    received.rtp_stream_stats.ssrc,
                    (rtt > 0.0).then_some(rtt * 1000.0),
                    received.packets_lost,
                ));
            }
            RTCStatsReportEntry::DataChannel(d) => {
                let (inbound, outbound) = data.get_or_insert_default();
                inbound.packets += u64::from(d.messages_received);
                inbound.bytes += d.bytes_received;
                outbound.packets += u64::from(d.messages_sent);
                outbound.bytes += d.bytes_sent;
            }
            _ => {}
        }
    }
    // `rtc` may leave the transport's selected pair id empty: the nominated pair is the one.
    if selected_id.is_empty() {
        selected_id = report
            .iter()
            .find_map(|e| match e {
                RTCStatsReportEntry::IceCandidatePair(p) if p.nominated => Some(p.stats.id.clone()),
                _ => None,
            })
            .unwrap_or_default();
    }
    let selected_pair = match report.get(&selected_id) {
        Some(RTCStatsReportEntry::IceCandidatePair(pair)) => {
            let side = |id: &str| match report.get(id) {
                Some(RTCStatsReportEntry::LocalCandidate(c))
                | Some(RTCStatsReportEntry::RemoteCandidate(c)) => Some(candidate(c)),
                _ => None,
            };
            // A peer-reflexive remote (learnt from a STUN request before its trickled
            // candidate came) is not among `rtc`'s candidates: the address media comes from is.
            let address = |addr: std::net::SocketAddr, kind: &str| CandidateSummary {
                address: addr.ip().to_string(),
                port: addr.port(),
                kind: kind.to_owned(),
                protocol: "udp".to_owned(),
                priority: 0,
            };
            let local = side(&pair.local_candidate_id)
                .unwrap_or_else(|| address(peer.local_addr(), "host"));
            let remote = side(&pair.remote_candidate_id)
                .or_else(|| peer.remote_addr().map(|a| address(a, "prflx")));
            remote.map(|remote| CandidatePair {
                local,
                remote,
                rtt_ms: (pair.current_round_trip_time > 0.0)
                    .then_some(pair.current_round_trip_time * 1000.0),
            })
        }
        _ => None,
    };
    // The selected pair's ends are candidates too, as Janus lists them: a peer-reflexive
    // remote is otherwise in no list.
    if let Some(pair) = &selected_pair {
        for (list, end) in [
            (&mut local_candidates, &pair.local),
            (&mut remote_candidates, &pair.remote),
        ] {
            if !list
                .iter()
                .any(|c| c.address == end.address && c.port == end.port)
            {
                list.push(end.clone());
            }
        }
    }
    assemble(
        dtls_state,
        fingerprints,
        selected_pair,
        (local_candidates, remote_candidates),
        streams,
        remote_inbound,
        data.map(|counters| (data_mid(&local_sdp).unwrap_or_default(), counters)),
    )
}
