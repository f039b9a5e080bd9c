//! What one answering PeerConnection costs in each media engine: create → answer time and
//! resident memory, for N PeerConnections answering the same kind of offer (Opus + VP8,
//! BUNDLE, rtcp-mux, one host candidate on 127.0.0.1) and kept alive, unconnected.
//!
//!   cargo run --example answer_cost -- webrtc 100
//!   cargo run --example answer_cost -- rtc 100
//!
//! One engine per process, so the RSS figures do not mix. The offers come from `rtc` client
//! PeerConnections made (and dropped) before the baseline is read. Not a test: figures only.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bifrons::config::{DtlsConfig, IceConfig, LoopbackMode, MediaConfig};
use bifrons::ids::Mid;
use bifrons::media::rtc::{EventLoop, Outbox, PeerHandler, PeerTemplate};
use bifrons::media::{
    AnswerPlan, DataMessage, Jsep, LocalCandidate, MediaEngine, MediaKind, PeerListener,
    RtcpFeedback, RtpPacket, StreamInfo,
};

/// Resident set size of this process, KiB (`/proc/self/statm`, second field, in pages).
fn rss_kib() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4
}

/// An `rtc` offer with Opus and VP8 send-receive and a host candidate.
fn offer() -> String {
    use bifrons::media::rtc::host_candidate;
    use rtc::interceptor::Registry;
    use rtc::media_stream::MediaStreamTrack;
    use rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors;
    use rtc::peer_connection::configuration::media_engine::{
        MediaEngine, MIME_TYPE_OPUS, MIME_TYPE_VP8,
    };
    use rtc::peer_connection::RTCPeerConnectionBuilder;
    use rtc::rtp_transceiver::rtp_sender::{
        RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
    };
    let mut media = MediaEngine::default();
    media.register_default_codecs().unwrap();
    let registry = register_default_interceptors(Registry::new(), &mut media).unwrap();
    let mut pc = RTCPeerConnectionBuilder::new()
        .with_media_engine(media)
        .with_interceptor_registry(registry)
        .build(Instant::now())
        .unwrap();
    for (kind, mime, clock_rate, channels) in [
        (RtpCodecKind::Audio, MIME_TYPE_OPUS, 48_000, 2),
        (RtpCodecKind::Video, MIME_TYPE_VP8, 90_000, 0),
    ] {
        let track = MediaStreamTrack::new(
            format!("s-{kind}"),
            format!("t-{kind}"),
            format!("l-{kind}"),
            kind,
            vec![RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters {
                    ssrc: Some(rand::random()),
                    ..Default::default()
                },
                codec: RTCRtpCodec {
                    mime_type: mime.to_owned(),
                    clock_rate,
                    channels,
                    sdp_fmtp_line: String::new(),
                    rtcp_feedback: vec![],
                },
                ..Default::default()
            }],
        );
        pc.add_track(track).unwrap();
    }
    pc.add_local_candidate(host_candidate("127.0.0.1:50000".parse().unwrap()).unwrap())
        .unwrap();
    let offer = pc.create_offer(None).unwrap();
    pc.set_local_description(Instant::now(), offer).unwrap();
    pc.local_description().unwrap().sdp
}

struct Quiet;

impl PeerListener for Quiet {
    fn on_connected(&self) {}
    fn on_media(&self, _: MediaKind, _: &Mid, _: bool) {}
    fn on_rtp(&self, _: &StreamInfo, _: RtpPacket) {}
    fn on_rtcp(&self, _: MediaKind, _: RtcpFeedback) {}
    fn on_data(&self, _: &str, _: DataMessage) {}
    fn on_local_candidate(&self, _: LocalCandidate) {}
    fn on_slowlink(&self, _: MediaKind, _: &Mid, _: bool, _: u64) {}
    fn on_failed(&self, _: &'static str) {}
}

impl PeerHandler for Quiet {
    fn on_rtp(&mut self, _: &StreamInfo, _: RtpPacket, _: &mut Outbox<'_>) {}
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let engine = args.next().unwrap_or_else(|| "rtc".into());
    let n: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(100);
    let offers: Vec<String> = (0..n).map(|_| offer()).collect();
    let mut times = Vec::with_capacity(n);
    let (before, after);
    match engine.as_str() {
        "webrtc" => {
            let ice = IceConfig {
                loopback: LoopbackMode::Always,
                bind_addresses: vec![Ipv4Addr::LOCALHOST.into()],
                ..Default::default()
            };
            let engine = MediaEngine::new(
                &ice,
                &DtlsConfig::default(),
                &MediaConfig::default(),
                Duration::from_secs(1),
                0,
            )
            .unwrap();
            let listener: Arc<dyn PeerListener> = Arc::new(Quiet);
            let mut peers = Vec::new();
            before = rss_kib();
            for sdp in offers {
                let started = Instant::now();
                let peer = engine.create_peer(listener.clone()).await.unwrap();
                peer.answer(&Jsep::offer(sdp), &AnswerPlan::echo())
                    .await
                    .unwrap();
                times.push(started.elapsed());
                peers.push(peer);
            }
            after = rss_kib();
            for peer in peers {
                peer.close().await;
            }
        }
        _ => {
            let template = PeerTemplate::generate().unwrap();
            let event_loop =
                EventLoop::start("media-0".into(), Ipv4Addr::LOCALHOST.into(), 0, template)
                    .unwrap();
            before = rss_kib();
            for sdp in offers {
                let started = Instant::now();
                event_loop.answer(sdp, Box::new(Quiet)).await.unwrap();
                times.push(started.elapsed());
            }
            after = rss_kib();
        }
    }
    times.sort();
    println!(
        "{engine}: {n} PeerConnections, create→answer p50 {:.2} ms p99 {:.2} ms, RSS {} → {} KiB, {} KiB per PeerConnection",
        percentile(&times, 0.5),
        percentile(&times, 0.99),
        before,
        after,
        after.saturating_sub(before) / n as u64,
    );
}
