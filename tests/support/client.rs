//! The client side of WebRTC tests: a second webrtc-rs PeerConnection on loopback, as a
//! browser would be, and the attach steps every plugin test starts with.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use bifrons::config::{DtlsConfig, IceConfig, LoopbackMode, MediaConfig};
use bifrons::ids::Mid;
use bifrons::media::{
    Codec, DataMessage, Direction, Jsep, LocalCandidate, MediaEngine, MediaKind, OfferPlan, Peer,
    PeerListener, RtcpFeedback, RtpPacket, StreamInfo, StreamPlan,
};
use tokio::sync::mpsc;

use super::gateway::TestGateway;

/// A client PeerConnection reporting to `listener` (its engine gathers loopback candidates).
pub async fn client_peer(listener: Arc<dyn PeerListener>) -> Arc<Peer> {
    let ice = IceConfig {
        loopback: LoopbackMode::Always,
        ..Default::default()
    };
    let engine = MediaEngine::new(
        &ice,
        &DtlsConfig::default(),
        &MediaConfig::default(),
        Duration::from_secs(1),
        0,
    )
    .expect("client media engine");
    engine
        .create_peer(listener)
        .await
        .expect("client PeerConnection")
}

/// A new session with one handle attached to `plugin`: (session id, handle id).
pub async fn session_with_handle(gw: &TestGateway, plugin: &str) -> (u64, u64) {
    let session = gw.create_session().await;
    let attached = gw.attach(session, plugin).await;
    let handle = attached["data"]["id"]
        .as_u64()
        .unwrap_or_else(|| panic!("attach to {plugin}: {attached}"));
    (session, handle)
}

/// An echo-test call carrying Opus audio from a client PeerConnection that reports to
/// `listener`: attaches, sends the offer with `{"audio": true}`, applies the answer. Returns
/// (session id, handle id, client); the caller waits for the connection through its listener.
pub async fn echotest_audio_call(
    gw: &TestGateway,
    listener: Arc<dyn PeerListener>,
) -> (u64, u64, Arc<Peer>) {
    let (session, handle) = session_with_handle(gw, "janus.plugin.echotest").await;
    let client = client_peer(listener).await;
    let plan = OfferPlan {
        audio: Some(StreamPlan::new(Direction::SendRecv, vec![Codec::Opus])),
        video: None,
        data: false,
    };
    let offer = client.offer(&plan, false).await.expect("client offer");
    let r = gw
        .message_jsep(
            session,
            handle,
            "offer",
            json!({"audio": true}),
            offer.to_json(),
        )
        .await;
    assert_eq!(r["janus"], "ack", "{r}");
    let event = gw
        .wait_event(session, |e| e["transaction"] == "offer")
        .await;
    let sdp = event["jsep"]["sdp"]
        .as_str()
        .unwrap_or_else(|| panic!("no answer in {event}"));
    client
        .accept_answer(&Jsep::answer(sdp.to_string()))
        .await
        .expect("client accepts the answer");
    (session, handle, client)
}

/// What an [`EchoListener`] saw of its PeerConnection.
#[derive(Debug, PartialEq)]
pub enum Seen {
    /// ICE and DTLS are up.
    Connected,
    /// An audio packet came back (the echo test's echo).
    Echo,
    /// The PeerConnection failed.
    Failed,
}

/// A client [`PeerListener`] reporting connection, echoed audio and failure on a channel.
pub struct EchoListener(pub mpsc::UnboundedSender<Seen>);

impl PeerListener for EchoListener {
    fn on_connected(&self) {
        let _ = self.0.send(Seen::Connected);
    }
    fn on_media(&self, _: MediaKind, _: &Mid, _: bool) {}
    fn on_rtp(&self, stream: &StreamInfo, _: RtpPacket) {
        if stream.kind == MediaKind::Audio {
            let _ = self.0.send(Seen::Echo);
        }
    }
    fn on_rtcp(&self, _: MediaKind, _: RtcpFeedback) {}
    fn on_data(&self, _: &str, _: DataMessage) {}
    fn on_local_candidate(&self, _: LocalCandidate) {}
    fn on_slowlink(&self, _: MediaKind, _: &Mid, _: bool, _: u64) {}
    fn on_failed(&self, _: &'static str) {
        let _ = self.0.send(Seen::Failed);
    }
}

/// Waits (at most 30 s) until `rx` reports `want`; panics if the PeerConnection fails first.
pub async fn wait_for(rx: &mut mpsc::UnboundedReceiver<Seen>, want: Seen) {
    tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(seen) = rx.recv().await {
            assert_ne!(seen, Seen::Failed, "client PeerConnection failed");
            if seen == want {
                return;
            }
        }
    })
    .await
    .expect("client event within 30 s");
}
