//! The client side of WebRTC tests: a second webrtc-rs PeerConnection on loopback, as a
//! browser would be, and the attach steps every plugin test starts with.

use std::sync::Arc;
use std::time::Duration;

use bifrons::config::{DtlsConfig, IceConfig, LoopbackMode};
use bifrons::media::{MediaEngine, Peer, PeerListener};

use super::gateway::TestGateway;

/// A client PeerConnection reporting to `listener` (its engine gathers loopback candidates).
pub async fn client_peer(listener: Arc<dyn PeerListener>) -> Arc<Peer> {
    let ice = IceConfig {
        loopback: LoopbackMode::Always,
        ..Default::default()
    };
    let engine = MediaEngine::new(&ice, &DtlsConfig::default(), Duration::from_secs(1), 0)
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
