//! [`Gateway`]: the gateway as one handle's plugin sees it.

use std::any::Any;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock, Weak};
use std::time::Duration;

use serde_json::{json, Map, Value};
use tokio::time::Instant;

use super::Plugin;
use crate::media::{
    AnswerPlan, DataMessage, Jsep, LocalCandidate, MediaEngine, MediaError, MediaKind, OfferPlan,
    Peer, PeerListener, RemoteCandidate, RtcpFeedback, RtpPacket,
};
use crate::session::{HandleId, SessionId};

/// Where a handle's events go: its session.
pub trait EventTarget: Send + Sync {
    fn push(&self, event: Value);
    fn session_id(&self) -> SessionId;
}

/// One handle's view of the gateway: events to its client and its PeerConnection.
///
/// Per-packet calls (`send_rtp`, ...) touch only this handle's state: no lock is shared
/// between handles on the media path.
pub struct Gateway {
    handle_id: HandleId,
    session_id: SessionId,
    plugin: Arc<dyn Plugin>,
    events: Weak<dyn EventTarget>,
    engine: Arc<MediaEngine>,
    this: Weak<Gateway>,
    peer: RwLock<Option<Arc<Peer>>>,
    pending_candidates: Mutex<Vec<(Instant, RemoteCandidate)>>,
    candidates_timeout: Duration,
    webrtc_up: AtomicBool,
    state: OnceLock<Box<dyn Any + Send + Sync>>,
}

impl Gateway {
    pub(crate) fn new(
        handle_id: HandleId,
        plugin: Arc<dyn Plugin>,
        events: Weak<dyn EventTarget>,
        session_id: SessionId,
        engine: Arc<MediaEngine>,
        candidates_timeout: Duration,
    ) -> Arc<Self> {
        Arc::new_cyclic(|this| Self {
            handle_id,
            session_id,
            plugin,
            events,
            engine,
            this: this.clone(),
            peer: RwLock::new(None),
            pending_candidates: Mutex::new(Vec::new()),
            candidates_timeout,
            webrtc_up: AtomicBool::new(false),
            state: OnceLock::new(),
        })
    }

    /// The handle this context belongs to.
    pub fn handle_id(&self) -> HandleId {
        self.handle_id
    }

    /// The handle's session.
    pub fn session_id(&self) -> SessionId {
        self.session_id
    }

    /// Stores the plugin's per-handle state (once, usually in `create_handle`).
    pub fn set_state<T: Any + Send + Sync>(&self, state: T) {
        let _ = self.state.set(Box::new(state));
    }

    /// The plugin's per-handle state, if set with this type.
    pub fn state<T: Any + Send + Sync>(&self) -> Option<&T> {
        self.state.get().and_then(|s| s.downcast_ref::<T>())
    }

    /// Pushes a plugin `event` to the client; `transaction` ties it to the request that caused it.
    pub fn push_event(&self, transaction: Option<&str>, data: Value, jsep: Option<&Jsep>) {
        let mut fields = Map::new();
        if let Some(t) = transaction {
            fields.insert("transaction".into(), json!(t));
        }
        fields.insert(
            "plugindata".into(),
            json!({ "plugin": self.plugin.package(), "data": data }),
        );
        if let Some(jsep) = jsep {
            fields.insert("jsep".into(), jsep.to_json());
        }
        self.push_core_event("event", fields);
    }

    /// Pushes a core event (`webrtcup`, `media`, `hangup`, `detached`, `trickle`) for this handle.
    pub(crate) fn push_core_event(&self, kind: &str, fields: Map<String, Value>) {
        let Some(target) = self.events.upgrade() else {
            return;
        };
        let mut event = Map::new();
        event.insert("janus".into(), json!(kind));
        event.insert("session_id".into(), json!(self.session_id.0));
        event.insert("sender".into(), json!(self.handle_id.0));
        event.extend(fields);
        target.push(Value::Object(event));
    }

    fn current_peer(&self) -> Option<Arc<Peer>> {
        self.peer.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    async fn peer_or_create(&self) -> Result<Arc<Peer>, MediaError> {
        if let Some(peer) = self.current_peer() {
            return Ok(peer);
        }
        let this = self.this.upgrade().ok_or(MediaError::NoPeer)?;
        let peer = self
            .engine
            .create_peer(this as Arc<dyn PeerListener>)
            .await?;
        *self.peer.write().unwrap_or_else(|e| e.into_inner()) = Some(peer.clone());
        Ok(peer)
    }

    /// Answers a client's offer, creating the PeerConnection on first use; the returned JSEP
    /// goes back to the client in the plugin's event.
    pub async fn answer_offer(&self, offer: &Jsep, plan: AnswerPlan) -> Result<Jsep, MediaError> {
        let peer = self.peer_or_create().await?;
        let answer = peer.answer(offer, plan).await?;
        self.apply_pending_candidates(&peer).await;
        Ok(answer)
    }

    /// Makes a gateway offer, creating the PeerConnection on first use; the client's answer
    /// comes back as a `message` with a JSEP answer, which the core applies before the plugin
    /// sees the message.
    pub async fn create_offer(&self, plan: OfferPlan) -> Result<Jsep, MediaError> {
        self.peer_or_create().await?.offer(plan).await
    }

    /// Applies the client's answer to an offer this handle sent.
    pub async fn accept_answer(&self, answer: &Jsep) -> Result<(), MediaError> {
        let peer = self.current_peer().ok_or(MediaError::UnexpectedAnswer)?;
        peer.accept_answer(answer).await?;
        self.apply_pending_candidates(&peer).await;
        Ok(())
    }

    /// A trickled candidate: applied now, or queued until the remote description is known.
    pub async fn add_remote_candidate(&self, candidate: RemoteCandidate) -> Result<(), MediaError> {
        match self.current_peer() {
            Some(peer) if peer.has_remote_description().await => {
                peer.add_remote_candidate(candidate).await
            }
            _ => {
                self.pending_candidates
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((Instant::now(), candidate));
                Ok(())
            }
        }
    }

    async fn apply_pending_candidates(&self, peer: &Peer) {
        let pending: Vec<_> = self
            .pending_candidates
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
            .collect();
        for (queued_at, candidate) in pending {
            if queued_at.elapsed() > self.candidates_timeout {
                continue;
            }
            if let Err(e) = peer.add_remote_candidate(candidate).await {
                tracing::debug!(handle_id = %self.handle_id, error = %e, "queued candidate refused");
            }
        }
    }

    /// Sends an RTP packet to this handle's peer, on the outgoing track of `kind`.
    pub fn send_rtp(&self, kind: MediaKind, packet: RtpPacket) {
        if let Some(peer) = self.current_peer() {
            peer.send_rtp(kind, packet);
        }
    }

    /// Asks this handle's peer for a video keyframe.
    pub fn request_keyframe(&self) {
        if let Some(peer) = self.current_peer() {
            peer.request_keyframe();
        }
    }

    /// Caps this handle's peer sending bitrate (REMB).
    pub fn send_remb(&self, bitrate: u64) {
        if let Some(peer) = self.current_peer() {
            peer.send_remb(bitrate);
        }
    }

    /// Sends a data-channel message to this handle's peer.
    pub fn send_data(&self, label: &str, message: DataMessage) {
        if let Some(peer) = self.current_peer() {
            peer.send_data(label, message);
        }
    }

    /// Whether there is a PeerConnection, and whether it is up.
    pub fn media_status(&self) -> (bool, bool) {
        (
            self.current_peer().is_some(),
            self.webrtc_up.load(Ordering::Relaxed),
        )
    }

    /// The PeerConnection, for the Admin API's view of it.
    pub(crate) fn peer(&self) -> Option<Arc<Peer>> {
        self.current_peer()
    }

    /// Closes the PeerConnection at the plugin's request (`hangup` reason `Close PC`).
    pub fn close_pc(&self) {
        if let Some(this) = self.this.upgrade() {
            tokio::spawn(async move {
                this.hangup("Close PC").await;
            });
        }
    }

    /// Closes the PeerConnection, tells the plugin and the client (`hangup` event with
    /// `reason`). Returns whether there was one.
    pub async fn hangup(&self, reason: &str) -> bool {
        let Some(peer) = self.peer.write().unwrap_or_else(|e| e.into_inner()).take() else {
            return false;
        };
        peer.close().await;
        self.webrtc_up.store(false, Ordering::Relaxed);
        let mut fields = Map::new();
        fields.insert("reason".into(), json!(reason));
        self.push_core_event("hangup", fields);
        if let Some(this) = self.this.upgrade() {
            self.plugin.hangup_media(&this);
        }
        true
    }

    /// Closes the PeerConnection silently (the handle is going away).
    pub(crate) async fn shutdown_media(&self) {
        let peer = self.peer.write().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(peer) = peer {
            peer.close().await;
        }
    }

    fn with_this(&self, f: impl FnOnce(&Arc<Gateway>)) {
        if let Some(this) = self.this.upgrade() {
            f(&this);
        }
    }
}

impl PeerListener for Gateway {
    fn on_connected(&self) {
        if self.webrtc_up.swap(true, Ordering::AcqRel) {
            return;
        }
        tracing::info!(session_id = %self.session_id, handle_id = %self.handle_id, "WebRTC up");
        self.push_core_event("webrtcup", Map::new());
        self.with_this(|this| self.plugin.setup_media(this));
    }

    fn on_media(&self, kind: MediaKind, mid: &str, receiving: bool) {
        let mut fields = Map::new();
        fields.insert("mid".into(), json!(mid));
        fields.insert("type".into(), json!(kind.as_str()));
        fields.insert("receiving".into(), json!(receiving));
        self.push_core_event("media", fields);
    }

    fn on_rtp(&self, kind: MediaKind, packet: RtpPacket) {
        self.with_this(|this| self.plugin.incoming_rtp(this, kind, packet));
    }

    fn on_rtcp(&self, kind: MediaKind, feedback: RtcpFeedback) {
        self.with_this(|this| self.plugin.incoming_rtcp(this, kind, feedback));
    }

    fn on_data(&self, label: &str, message: DataMessage) {
        self.with_this(|this| self.plugin.incoming_data(this, label, message));
    }

    fn on_slowlink(&self, kind: MediaKind, mid: &str, uplink: bool, lost: u64) {
        let mut fields = Map::new();
        fields.insert("mid".into(), json!(mid));
        fields.insert("media".into(), json!(kind.as_str()));
        fields.insert("uplink".into(), json!(uplink));
        fields.insert("lost".into(), json!(lost));
        self.push_core_event("slowlink", fields);
    }

    fn on_local_candidate(&self, candidate: LocalCandidate) {
        let value = match candidate {
            Some(c) => json!({
                "candidate": c.candidate,
                "sdpMid": c.sdp_mid,
                "sdpMLineIndex": c.sdp_mline_index.unwrap_or(0),
            }),
            None => json!({ "completed": true }),
        };
        let mut fields = Map::new();
        fields.insert("candidate".into(), value);
        self.push_core_event("trickle", fields);
    }

    fn on_failed(&self, reason: &'static str) {
        self.with_this(|this| {
            let this = this.clone();
            tokio::spawn(async move {
                this.hangup(reason).await;
            });
        });
    }
}
