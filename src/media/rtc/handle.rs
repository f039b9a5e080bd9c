//! [`LoopHandle`]: the media contract's `Peer` on a loop PeerConnection. Every call is a loop
//! command with a reply; what the PeerConnection reports goes to the handle's
//! [`PeerListener`] from the loop thread ([`ListenerHandler`]).

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use super::event_loop::{EventLoop, PeerKey};
use super::loop_peer::{PeerHandler, PeerShared};
use super::outbox::Outbox;
use super::stats::collect;
use crate::ids::Mid;
use crate::media::{
    AnswerPlan, DataMessage, Jsep, LocalCandidate, MediaError, MediaKind, MediaSender, Negotiated,
    OfferPlan, PeerListener, PeerStats, RemoteCandidate, RtcpFeedback, RtpPacket, StreamInfo,
};

/// Forwards a loop PeerConnection's events to the handle's listener (held weakly: the
/// handle owns the PeerConnection, not the other way round).
pub struct ListenerHandler(pub Weak<dyn PeerListener>);

impl PeerHandler for ListenerHandler {
    fn on_connected(&mut self) {
        if let Some(l) = self.0.upgrade() {
            l.on_connected();
        }
    }

    fn on_rtp(&mut self, stream: &StreamInfo, packet: RtpPacket, _out: &mut Outbox<'_>) {
        if let Some(l) = self.0.upgrade() {
            l.on_rtp(stream, packet);
        }
    }

    fn on_rtcp(&mut self, kind: MediaKind, feedback: RtcpFeedback) {
        if let Some(l) = self.0.upgrade() {
            l.on_rtcp(kind, feedback);
        }
    }

    fn on_data(&mut self, label: &str, message: DataMessage, _out: &mut Outbox<'_>) {
        if let Some(l) = self.0.upgrade() {
            l.on_data(label, message);
        }
    }

    fn on_media(&mut self, kind: MediaKind, mid: &Mid, receiving: bool) {
        if let Some(l) = self.0.upgrade() {
            l.on_media(kind, mid, receiving);
        }
    }

    fn on_local_candidate(&mut self, candidate: LocalCandidate) {
        if let Some(l) = self.0.upgrade() {
            l.on_local_candidate(candidate);
        }
    }

    fn on_slowlink(&mut self, kind: MediaKind, mid: &Mid, uplink: bool, lost: u64) {
        if let Some(l) = self.0.upgrade() {
            l.on_slowlink(kind, mid, uplink, lost);
        }
    }

    fn on_failed(&mut self, reason: &'static str) {
        if let Some(l) = self.0.upgrade() {
            l.on_failed(reason);
        }
    }
}

/// One PeerConnection on an event loop, as a handle's `Peer` uses it. Dropping it closes the
/// PeerConnection.
pub struct LoopHandle {
    event_loop: Arc<EventLoop>,
    key: PeerKey,
    shared: Arc<PeerShared>,
    sender: MediaSender,
}

impl LoopHandle {
    /// Creates a PeerConnection on `event_loop` reporting to `listener`.
    ///
    /// Errors: the loop could not create it, as [`MediaError`].
    pub async fn create(
        event_loop: Arc<EventLoop>,
        listener: Weak<dyn PeerListener>,
    ) -> Result<Self, MediaError> {
        let shared = Arc::new(PeerShared::default());
        let (key, sender) = event_loop
            .create(Box::new(ListenerHandler(listener)), shared.clone(), true)
            .await?;
        Ok(Self {
            event_loop,
            key,
            shared,
            sender: sender.ok_or(MediaError::NoPeer)?,
        })
    }

    /// See `Peer::answer`.
    pub async fn answer(
        &self,
        offer: &Jsep,
        plan: &AnswerPlan,
    ) -> Result<(Jsep, Negotiated), MediaError> {
        let (offer, plan) = (offer.sdp.clone(), plan.clone());
        let (sdp, negotiated) = self
            .event_loop
            .with(self.key, move |peer, now| peer.answer(now, &offer, &plan))
            .await??;
        Ok((Jsep::answer(sdp), negotiated))
    }

    /// See `Peer::offer`.
    pub async fn offer(&self, plan: &OfferPlan, ice_restart: bool) -> Result<Jsep, MediaError> {
        let plan = plan.clone();
        let sdp = self
            .event_loop
            .with(self.key, move |peer, now| {
                peer.offer(now, &plan, ice_restart)
            })
            .await??;
        Ok(Jsep::offer(sdp))
    }

    /// See `Peer::accept_answer`.
    pub async fn accept_answer(&self, answer: &Jsep) -> Result<Negotiated, MediaError> {
        let sdp = answer.sdp.clone();
        self.event_loop
            .with(self.key, move |peer, now| peer.accept_answer(now, &sdp))
            .await?
    }

    /// See `Peer::has_remote_description`.
    pub async fn has_remote_description(&self) -> bool {
        self.event_loop
            .with(self.key, |peer, _| peer.has_remote_description())
            .await
            .unwrap_or(false)
    }

    /// See `Peer::add_remote_candidate`.
    pub async fn add_remote_candidate(&self, candidate: RemoteCandidate) -> Result<(), MediaError> {
        self.event_loop
            .with(self.key, move |peer, _| {
                peer.add_remote_candidate(candidate)
            })
            .await?
    }

    /// The sending side, for any thread.
    pub fn sender(&self) -> MediaSender {
        self.sender.clone()
    }

    /// See `Peer::receiving`.
    pub fn receiving(&self, kind: MediaKind) -> bool {
        self.shared.receiving[kind.index()].load(Ordering::Relaxed)
    }

    /// ICE, PeerConnection and signaling state names.
    pub fn state_summary(&self) -> (String, String, String) {
        let states = self
            .shared
            .states
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let name = |s: String| if s.is_empty() { "new".to_owned() } else { s };
        (
            name(states.ice),
            name(states.connection),
            if states.signaling.is_empty() {
                "stable".to_owned()
            } else {
                states.signaling
            },
        )
    }

    /// See `Peer::sdps`.
    pub async fn sdps(&self) -> (Option<String>, Option<String>) {
        self.event_loop
            .with(self.key, |peer, _| peer.sdps())
            .await
            .unwrap_or((None, None))
    }

    /// See `Peer::stats`.
    pub async fn stats(&self) -> PeerStats {
        self.event_loop
            .with(self.key, collect)
            .await
            .unwrap_or_default()
    }

    /// Closes the PeerConnection; no listener call follows.
    pub fn close(&self) {
        self.event_loop.close(self.key);
    }
}

impl Drop for LoopHandle {
    fn drop(&mut self) {
        self.event_loop.close(self.key);
    }
}
