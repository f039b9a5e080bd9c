//! [`HandleCtx`]: the gateway as one handle's plugin sees it: events to the client, the
//! PeerConnection (negotiation, sending, closing), tasks tied to the handle, and the handle's
//! own end.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock, Weak};
use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::erased::BoundHandle;
use super::PluginMessage;
use super::PluginResult;
use crate::events::HandleEvent;
use crate::ids::{HandleId, Mid, SessionId};
use crate::media::{
    AnswerPlan, DataMessage, Jsep, LocalCandidate, MediaEngine, MediaError, MediaKind, MediaSender,
    Negotiated, OfferPlan, Peer, PeerListener, RemoteCandidate, RtcpFeedback, RtpPacket,
    StreamInfo,
};

/// What owns a handle (its session): where its events go and who can end it.
pub trait HandleOwner: Send + Sync {
    /// Delivers `event` about `handle` to the client.
    fn deliver(&self, handle: HandleId, event: HandleEvent);
    /// Detaches `handle` at its plugin's request (Janus `end_session`): `detached` follows.
    fn end_handle(&self, handle: HandleId);
}

/// One handle's view of the gateway.
///
/// Per-packet calls (`incoming_rtp` dispatch, [`HandleCtx::send_rtp`]) touch only this
/// handle's state: no lock is shared between handles on the media path.
pub struct HandleCtx {
    handle_id: HandleId,
    session_id: SessionId,
    package: &'static str,
    owner: Weak<dyn HandleOwner>,
    engine: Arc<MediaEngine>,
    this: Weak<HandleCtx>,
    peer: RwLock<Option<Arc<Peer>>>,
    negotiated: Mutex<Option<Negotiated>>,
    pending_candidates: Mutex<Vec<(Instant, RemoteCandidate)>>,
    candidates_timeout: Duration,
    webrtc_up: AtomicBool,
    bound: OnceLock<Arc<dyn BoundHandle>>,
    tasks: CancellationToken,
    span: tracing::Span,
}

/// A weak reference to a handle, for what outlives or does not own it (rooms, ringing
/// groups, mountpoint viewers): upgrade it when needed; `None` once the handle is gone.
#[derive(Clone)]
pub struct HandleRef {
    id: HandleId,
    ctx: Weak<HandleCtx>,
}

impl HandleRef {
    /// The handle's id.
    pub fn id(&self) -> HandleId {
        self.id
    }

    /// The handle's context, while it is attached.
    pub fn upgrade(&self) -> Option<Arc<HandleCtx>> {
        self.ctx.upgrade()
    }
}

impl std::fmt::Debug for HandleRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HandleRef({})", self.id)
    }
}

impl HandleCtx {
    pub(crate) fn new(
        handle_id: HandleId,
        session_id: SessionId,
        package: &'static str,
        owner: Weak<dyn HandleOwner>,
        engine: Arc<MediaEngine>,
        candidates_timeout: Duration,
    ) -> Arc<Self> {
        let span = tracing::info_span!("handle", session_id = %session_id, handle_id = %handle_id, plugin = package);
        Arc::new_cyclic(|this| Self {
            handle_id,
            session_id,
            package,
            owner,
            engine,
            this: this.clone(),
            peer: RwLock::new(None),
            negotiated: Mutex::new(None),
            pending_candidates: Mutex::new(Vec::new()),
            candidates_timeout,
            webrtc_up: AtomicBool::new(false),
            bound: OnceLock::new(),
            tasks: CancellationToken::new(),
            span,
        })
    }

    /// Binds the plugin's per-handle state (once, at attach).
    pub(crate) fn bind(&self, bound: Arc<dyn BoundHandle>) {
        let _ = self.bound.set(bound);
    }

    fn bound(&self) -> Option<&Arc<dyn BoundHandle>> {
        self.bound.get()
    }

    /// The handle this context belongs to.
    pub fn handle_id(&self) -> HandleId {
        self.handle_id
    }

    /// The handle's session.
    pub fn session_id(&self) -> SessionId {
        self.session_id
    }

    /// The package of the handle's plugin.
    pub fn package(&self) -> &'static str {
        self.package
    }

    /// The tracing span of this handle (`session_id`, `handle_id`, `plugin`).
    pub fn span(&self) -> &tracing::Span {
        &self.span
    }

    /// A weak reference to this handle.
    pub fn weak(&self) -> HandleRef {
        HandleRef {
            id: self.handle_id,
            ctx: self.this.clone(),
        }
    }

    /// Pushes a plugin `event` to the client; `transaction` ties it to the request that
    /// caused it, `jsep` carries an offer or answer.
    pub fn push_event(&self, transaction: Option<&str>, data: Value, jsep: Option<Jsep>) {
        self.push(HandleEvent::Plugin {
            plugin: self.package,
            transaction: transaction.map(str::to_string),
            data,
            jsep,
        });
    }

    /// Delivers a core event about this handle.
    pub(crate) fn push(&self, event: HandleEvent) {
        if let Some(owner) = self.owner.upgrade() {
            owner.deliver(self.handle_id, event);
        }
    }

    /// Ends this handle (Janus `end_session`): the core detaches it as if the client had,
    /// and the client gets `detached`.
    pub fn end(&self) {
        if let Some(owner) = self.owner.upgrade() {
            owner.end_handle(self.handle_id);
        }
    }

    /// Runs `task` on the runtime until it finishes or the handle is detached, whichever
    /// comes first, inside the handle's tracing span.
    pub fn spawn<F>(&self, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let cancelled = self.tasks.clone();
        tokio::spawn(
            async move {
                tokio::select! {
                    _ = cancelled.cancelled() => {}
                    _ = task => {}
                }
            }
            .instrument(self.span.clone()),
        );
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

    fn remember(&self, negotiated: &Negotiated) {
        *self.negotiated.lock().unwrap_or_else(|e| e.into_inner()) = Some(negotiated.clone());
    }

    /// Answers a client's offer (first offer or renegotiation), creating the PeerConnection
    /// on first use. Returns the answer for the plugin's event and what was negotiated per
    /// stream, so the plugin can choose passthrough or transcoding.
    pub async fn answer_offer(
        &self,
        offer: &Jsep,
        plan: &AnswerPlan,
    ) -> Result<(Jsep, Negotiated), MediaError> {
        let peer = self.peer_or_create().await?;
        let (answer, negotiated) = peer.answer(offer, plan).await?;
        self.apply_pending_candidates(&peer).await;
        self.remember(&negotiated);
        Ok((answer, negotiated))
    }

    /// Makes a gateway offer, creating the PeerConnection on first use (streaming `watch`,
    /// SIP `incomingcall`); on an existing one it is a renegotiation. The client's answer
    /// comes back as a `message` with a JSEP answer, which the core applies (see
    /// [`HandleCtx::negotiated`]) before the plugin sees the message.
    pub async fn create_offer(&self, plan: &OfferPlan) -> Result<Jsep, MediaError> {
        self.peer_or_create().await?.offer(plan, false).await
    }

    /// Like [`HandleCtx::create_offer`] on the existing PeerConnection, with new ICE
    /// credentials (RFC 8445 §9), e.g. after the client's network changed.
    pub async fn ice_restart(&self, plan: &OfferPlan) -> Result<Jsep, MediaError> {
        let peer = self.current_peer().ok_or(MediaError::NoPeer)?;
        peer.offer(plan, true).await
    }

    /// Applies the client's answer to an offer this handle sent; returns what it settled.
    pub async fn accept_answer(&self, answer: &Jsep) -> Result<Negotiated, MediaError> {
        let peer = self.current_peer().ok_or(MediaError::UnexpectedAnswer)?;
        let negotiated = peer.accept_answer(answer).await?;
        self.apply_pending_candidates(&peer).await;
        self.remember(&negotiated);
        Ok(negotiated)
    }

    /// What the last finished offer/answer settled, if any.
    pub fn negotiated(&self) -> Option<Negotiated> {
        self.negotiated
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// A trickled candidate: applied now, or queued until the remote description is known
    /// (queued ones older than `candidates_timeout` are dropped then).
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

    /// The sending side of the current PeerConnection, for other handles and worker
    /// threads (see [`MediaSender`]); `None` before the first negotiation or after hangup.
    pub fn media_sender(&self) -> Option<MediaSender> {
        self.current_peer().map(|p| p.sender())
    }

    /// Sends an RTP packet to this handle's peer, on the outgoing stream of `kind`.
    pub fn send_rtp(&self, kind: MediaKind, packet: RtpPacket) {
        if let Some(peer) = &*self.peer.read().unwrap_or_else(|e| e.into_inner()) {
            peer.send_rtp(kind, packet);
        }
    }

    /// Asks this handle's peer for a video keyframe (PLI).
    pub fn request_keyframe(&self) {
        if let Some(peer) = self.current_peer() {
            peer.request_keyframe();
        }
    }

    /// Caps this handle's peer sending bitrate (REMB), bit/s.
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
    pub(crate) async fn hangup(&self, reason: &str) -> bool {
        let Some(peer) = self.peer.write().unwrap_or_else(|e| e.into_inner()).take() else {
            return false;
        };
        peer.close().await;
        self.webrtc_up.store(false, Ordering::Relaxed);
        self.push(HandleEvent::Hangup {
            reason: reason.to_string(),
        });
        if let Some(bound) = self.bound() {
            let _entered = self.span.enter();
            bound.hangup_media(self);
        }
        true
    }

    /// A `message` for the plugin, inside the handle's span.
    pub(crate) async fn dispatch(self: &Arc<Self>, message: PluginMessage) -> PluginResult {
        let Some(bound) = self.bound() else {
            return PluginResult::Error("handle not bound to a plugin".into());
        };
        let result = bound
            .handle_message(self, message)
            .instrument(self.span.clone())
            .await;
        match result {
            PluginResult::Async { hint, work } => PluginResult::Async {
                hint,
                work: Box::pin(work.instrument(self.span.clone())),
            },
            other => other,
        }
    }

    /// The plugin's state for `handle_info`.
    pub(crate) fn query(&self) -> Value {
        self.bound()
            .map(|b| b.query())
            .unwrap_or_else(|| Value::Object(Default::default()))
    }

    /// Tears the handle down: tasks cancelled, media closed without a `hangup` event (Janus
    /// sends none while detaching), the plugin told, then `detached`.
    pub(crate) async fn detach(self: &Arc<Self>) {
        self.tasks.cancel();
        let peer = self.peer.write().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(peer) = peer {
            peer.close().await;
        }
        if let Some(bound) = self.bound() {
            bound.destroy(self).instrument(self.span.clone()).await;
        }
        tracing::info!(parent: &self.span, "handle detached");
        self.push(HandleEvent::Detached);
    }
}

impl PeerListener for HandleCtx {
    fn on_connected(&self) {
        if self.webrtc_up.swap(true, Ordering::AcqRel) {
            return;
        }
        let _entered = self.span.enter();
        tracing::info!("WebRTC up");
        self.push(HandleEvent::WebrtcUp);
        if let Some(bound) = self.bound() {
            bound.setup_media(self);
        }
    }

    fn on_media(&self, kind: MediaKind, mid: &Mid, receiving: bool) {
        self.push(HandleEvent::Media {
            mid: mid.clone(),
            kind,
            receiving,
        });
    }

    fn on_rtp(&self, stream: &StreamInfo, packet: RtpPacket) {
        if let Some(bound) = self.bound() {
            bound.incoming_rtp(self, stream, packet);
        }
    }

    fn on_rtcp(&self, kind: MediaKind, feedback: RtcpFeedback) {
        if let Some(bound) = self.bound() {
            bound.incoming_rtcp(self, kind, feedback);
        }
    }

    fn on_data(&self, label: &str, message: DataMessage) {
        if let Some(bound) = self.bound() {
            bound.incoming_data(self, label, message);
        }
    }

    fn on_slowlink(&self, kind: MediaKind, mid: &Mid, uplink: bool, lost: u64) {
        self.push(HandleEvent::Slowlink {
            mid: mid.clone(),
            kind,
            uplink,
            lost,
        });
    }

    fn on_local_candidate(&self, candidate: LocalCandidate) {
        self.push(HandleEvent::Trickle(candidate));
    }

    fn on_failed(&self, reason: &'static str) {
        if let Some(this) = self.this.upgrade() {
            tokio::spawn(async move {
                this.hangup(reason).await;
            });
        }
    }
}
