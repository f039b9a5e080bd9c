//! Admin API `handle_info` on a live PeerConnection: a webrtc-rs client on loopback sends
//! Opus to the echo test; `handle_info` must show, as Janus' does, the DTLS state, the
//! selected candidate pair, both sides' candidates and the audio stream's counters.

mod support;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use bifrons::media::{MediaKind, PeerListener, RtpPacket};
use bifrons::plugins::echotest;
use support::client::{echotest_audio_call, wait_for, EchoListener, Seen};
use support::gateway::TestGateway;

/// `handle_info`'s `info`, over the Admin API's HTTP transport.
async fn handle_info(gw: &TestGateway, session: u64, handle: u64) -> Value {
    let r = gw
        .admin(&json!({"janus":"handle_info","transaction":"i","session_id":session,"handle_id":handle}))
        .await;
    assert_eq!(r["janus"], "success", "{r}");
    r["info"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handle_info_reports_dtls_selected_pair_candidates_and_stream_counters() {
    let gw = TestGateway::start(&[echotest::factory]).await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let listener: Arc<dyn PeerListener> = Arc::new(EchoListener(tx));
    let (session, handle, client) = echotest_audio_call(&gw, listener.clone()).await;
    wait_for(&mut rx, Seen::Connected).await;

    // Audio both ways, so that the counters move.
    let sender = tokio::spawn({
        let client = client.clone();
        async move {
            for i in 0..u16::MAX {
                client.send_rtp(
                    MediaKind::Audio,
                    RtpPacket {
                        payload_type: 111,
                        sequence_number: i,
                        timestamp: u32::from(i) * 960,
                        ssrc: 0x5eed,
                        marker: false,
                        payload: Bytes::from_static(&[0xf8, 0xff, 0xfe]),
                    },
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    });
    wait_for(&mut rx, Seen::Echo).await;

    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let info = loop {
        let info = handle_info(&gw, session, handle).await;
        let audio = info["webrtc"]["media"]
            .as_object()
            .and_then(|m| m.values().find(|s| s["type"] == "audio"))
            .cloned()
            .unwrap_or_default();
        let done = audio["stats"]["in"]["packets"].as_u64().unwrap_or(0) >= 50
            && audio["stats"]["out"]["packets"].as_u64().unwrap_or(0) >= 50;
        if done || tokio::time::Instant::now() > deadline {
            break info;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    sender.abort();
    let webrtc = &info["webrtc"];

    assert_eq!(webrtc["dtls"]["dtls-state"], "connected", "{webrtc:#}");
    assert_eq!(webrtc["dtls"]["valid"], true);
    assert!(webrtc["dtls"]["fingerprint"]
        .as_str()
        .is_some_and(|f| f.contains(':')));

    let ice = &webrtc["ice"];
    assert_eq!(ice["state"], "connected", "{ice:#}");
    let pair = ice["selected-pair"].as_str().expect("a selected pair");
    let (local, remote) = pair.split_once(" <-> ").expect("Janus' `a <-> b` notation");
    assert!(
        local.ends_with(",udp]") && remote.ends_with(",udp]"),
        "{pair}"
    );
    let listed = |key: &str| -> Vec<String> {
        ice[key]
            .as_array()
            .unwrap_or_else(|| panic!("{key}: {ice:#}"))
            .iter()
            .map(|c| c.as_str().unwrap().to_string())
            .collect()
    };
    let local_candidates = listed("local-candidates");
    let remote_candidates = listed("remote-candidates");
    assert!(local_candidates.iter().any(|c| c == local), "{ice:#}");
    assert!(remote_candidates.iter().any(|c| c == remote), "{ice:#}");

    let media = webrtc["media"].as_object().expect("media by mid");
    let (mid, audio) = media
        .iter()
        .find(|(_, m)| m["type"] == "audio")
        .expect("an audio medium");
    assert_eq!(audio["mid"], mid.as_str());
    for direction in ["in", "out"] {
        let stats = &audio["stats"][direction];
        let packets = stats["packets"].as_u64().unwrap_or(0);
        assert!(packets >= 50, "{direction}: {audio:#}");
        // RTP headers (12 bytes) and the 3-byte payload, at least.
        assert!(
            stats["bytes"].as_u64().unwrap_or(0) >= packets * 15,
            "{audio:#}"
        );
        assert!(stats["nacks"].is_u64(), "{audio:#}");
    }
    assert!(audio["ssrc"]["ssrc"].is_u64() && audio["ssrc"]["ssrc-peer"].is_u64());
    // What the peer's receiver reports say about our stream; the RTT only when they carry
    // what it takes (LSR/DLSR), which webrtc-rs' client does not always fill in.
    assert_eq!(audio["rtcp"]["main"]["lost-by-remote"], 0, "{audio:#}");
    if let Some(rtt) = audio["rtcp"]["main"]["rtt"].as_u64() {
        assert!(rtt < 1000, "loopback RTT of {rtt} ms");
    }

    client.close().await;
    gw.stop().await;
}
