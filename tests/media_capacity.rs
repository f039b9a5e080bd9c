//! `[media]` keys on the whole gateway: single-port mode (`udp_port`) carries every
//! PeerConnection's ICE on one UDP port, and `max_sessions` refuses new sessions with Janus 490
//! past capacity while the live one keeps echoing, counted in the Admin API's `get_status`.

mod support;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use bifrons::media::{MediaKind, Peer, PeerListener, RtpPacket};
use bifrons::plugins::echotest;
use support::client::{echotest_audio_call, wait_for, EchoListener, Seen};
use support::gateway::TestGateway;

/// An echo-test call whose client keeps sending Opus-sized packets; returns the client, its
/// events, the sender task and the gateway's answer SDP (as `handle_info` shows it).
async fn echo_call(
    gw: &TestGateway,
) -> (
    Arc<Peer>,
    mpsc::UnboundedReceiver<Seen>,
    tokio::task::JoinHandle<()>,
    Arc<dyn PeerListener>,
    (u64, u64),
) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let listener: Arc<dyn PeerListener> = Arc::new(EchoListener(tx));
    let (session, handle, client) = echotest_audio_call(gw, listener.clone()).await;
    wait_for(&mut rx, Seen::Connected).await;
    let sender = tokio::spawn({
        let client = client.clone();
        async move {
            for seq in 0..3000u16 {
                client.send_rtp(
                    MediaKind::Audio,
                    RtpPacket {
                        payload_type: 111,
                        sequence_number: seq,
                        timestamp: u32::from(seq) * 960,
                        ssrc: 7,
                        marker: false,
                        payload: Bytes::from_static(&[0xf8; 60]),
                    },
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    });
    (client, rx, sender, listener, (session, handle))
}

/// Ports of the `a=candidate` lines of an SDP.
fn candidate_ports(sdp: &str) -> Vec<u16> {
    sdp.lines()
        .filter_map(|l| l.trim().strip_prefix("a=candidate:"))
        .filter_map(|c| c.split_whitespace().nth(5)?.parse().ok())
        .collect()
}

async fn local_sdp(gw: &TestGateway, session: u64, handle: u64) -> String {
    let r = gw
        .admin(&json!({"janus":"handle_info","transaction":"i","session_id":session,"handle_id":handle}))
        .await;
    assert_eq!(r["janus"], "success", "{r}");
    r["info"]["sdps"]["local"]
        .as_str()
        .unwrap_or_else(|| panic!("no local SDP in {r}"))
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_port_mode_carries_every_peer_connection_on_the_configured_port() {
    // A free port now; the gateway binds it again right after.
    let port = std::net::UdpSocket::bind("0.0.0.0:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let gw = TestGateway::start_with(&[echotest::factory], |c| c.media.udp_port = port).await;
    let (_c1, mut rx1, s1, _l1, (session1, handle1)) = echo_call(&gw).await;
    let (_c2, mut rx2, s2, _l2, (session2, handle2)) = echo_call(&gw).await;
    wait_for(&mut rx1, Seen::Echo).await;
    wait_for(&mut rx2, Seen::Echo).await;
    for (session, handle) in [(session1, handle1), (session2, handle2)] {
        let ports = candidate_ports(&local_sdp(&gw, session, handle).await);
        assert!(!ports.is_empty(), "no candidates");
        assert!(ports.iter().all(|p| *p == port), "{ports:?} not all {port}");
    }
    s1.abort();
    s2.abort();
    gw.stop().await;
}

async fn status(gw: &TestGateway) -> Value {
    let r = gw
        .admin(&json!({"janus":"get_status","transaction":"s"}))
        .await;
    assert_eq!(r["janus"], "success", "{r}");
    r["status"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_max_sessions_create_and_attach_get_490_and_the_live_session_keeps_echoing() {
    let gw = TestGateway::start_with(&[echotest::factory], |c| c.media.max_sessions = 1).await;
    let (_client, mut rx, sender, _listener, (session, _)) = echo_call(&gw).await;
    wait_for(&mut rx, Seen::Echo).await;
    assert_eq!(status(&gw).await["media_sessions"], 1);

    let created = gw
        .post("/janus", &json!({"janus":"create","transaction":"c"}))
        .await;
    assert_eq!(created["janus"], "error", "{created}");
    assert_eq!(created["error"]["code"], 490, "{created}");
    let attached = gw.attach(session, "janus.plugin.echotest").await;
    assert_eq!(attached["error"]["code"], 490, "{attached}");

    let s = status(&gw).await;
    assert_eq!(
        (s["max_sessions"].clone(), s["refused_sessions"].clone()),
        (json!(1), json!(2)),
        "{s}"
    );
    // The live call is untouched: echoes keep coming.
    while rx.try_recv().is_ok() {}
    wait_for(&mut rx, Seen::Echo).await;

    // Once it ends, its place is free again.
    let r = gw
        .post(
            &format!("/janus/{session}"),
            &json!({"janus":"destroy","transaction":"d"}),
        )
        .await;
    assert_eq!(r["janus"], "success", "{r}");
    sender.abort();
    tokio::time::timeout(Duration::from_secs(30), async {
        while status(&gw).await["media_sessions"] != 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the PeerConnection's place is given back");
    assert!(gw.create_session().await > 0);
    gw.stop().await;
}
