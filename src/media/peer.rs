//! [`Peer`]: one handle's PeerConnection, whichever engine drives it (`[media] engine`), and
//! [`PeerListener`], what it reports. Plugins see only this: the engines behind it are
//! `webrtc_peer` (webrtc-rs 0.17) and `rtc` (one event loop per core on webrtc-rs's
//! sans-I/O core).

use super::capacity::Slot;
use super::error::MediaError;
use super::negotiated::{Negotiated, StreamInfo};
use super::plan::{AnswerPlan, OfferPlan};
use super::rtc::LoopHandle;
use super::sender::MediaSender;
use super::stats::PeerStats;
use super::types::*;
use super::webrtc_peer::WebrtcPeer;
use crate::ids::Mid;

/// Receives what happens on a PeerConnection. Called from media tasks or an event-loop thread: must not block.
pub trait PeerListener: Send + Sync {
    /// ICE and DTLS are connected.
    fn on_connected(&self);
    /// Media of `kind` started (`true`) or stopped (`false`) arriving on `mid`.
    fn on_media(&self, kind: MediaKind, mid: &Mid, receiving: bool);
    /// An RTP packet of the remote stream `stream` (the same `StreamInfo` for the stream's life).
    fn on_rtp(&self, stream: &StreamInfo, packet: RtpPacket);
    /// RTCP feedback about the outgoing stream of `kind`.
    fn on_rtcp(&self, kind: MediaKind, feedback: RtcpFeedback);
    /// A data-channel message on the channel `label`.
    fn on_data(&self, label: &str, message: DataMessage);
    /// A local candidate to trickle (full-trickle mode only); `None` once gathering is over.
    fn on_local_candidate(&self, candidate: LocalCandidate);
    /// `lost` packets in about a second reached the slow-link threshold: `uplink` when the peer
    /// reports losing what we send, else we are losing what it sends.
    fn on_slowlink(&self, kind: MediaKind, mid: &Mid, uplink: bool, lost: u64);
    /// The connection failed; `reason` is a Janus hangup reason.
    fn on_failed(&self, reason: &'static str);
}

/// Label of the data channel a gateway offer opens (the one janus.js uses by default).
pub const DATA_CHANNEL_LABEL: &str = "JanusDataChannel";

/// A PeerConnection owned by one handle.
pub struct Peer {
    engine: Engine,
    /// This PeerConnection's place in `[media] max_sessions`, given back when it is dropped.
    _slot: Slot,
}

enum Engine {
    Webrtc(WebrtcPeer),
    Loop(LoopHandle),
}

impl Peer {
    pub(super) fn webrtc(peer: WebrtcPeer, slot: Slot) -> Self {
        Self {
            engine: Engine::Webrtc(peer),
            _slot: slot,
        }
    }

    pub(super) fn on_loop(handle: LoopHandle, slot: Slot) -> Self {
        Self {
            engine: Engine::Loop(handle),
            _slot: slot,
        }
    }

    /// Applies a remote offer and returns our answer (with our candidates unless
    /// full-trickle) and what it settled.
    ///
    /// Errors: [`MediaError::InvalidSdp`] when the offer cannot be applied,
    /// [`MediaError::NoCommonCodec`] when a sending stream's plan names codecs and the offer
    /// has a section of that kind with none of them.
    pub async fn answer(
        &self,
        offer: &Jsep,
        plan: &AnswerPlan,
    ) -> Result<(Jsep, Negotiated), MediaError> {
        match &self.engine {
            Engine::Webrtc(p) => p.answer(offer, plan).await,
            Engine::Loop(p) => p.answer(offer, plan).await,
        }
    }

    /// Makes a gateway offer (with our candidates unless full-trickle); the client answers it
    /// and [`Peer::accept_answer`] tells what was settled. `ice_restart` asks for new ICE
    /// credentials (RFC 8445 §9), for a client whose network changed.
    pub async fn offer(&self, plan: &OfferPlan, ice_restart: bool) -> Result<Jsep, MediaError> {
        match &self.engine {
            Engine::Webrtc(p) => p.offer(plan, ice_restart).await,
            Engine::Loop(p) => p.offer(plan, ice_restart).await,
        }
    }

    /// Applies the client's answer to an offer we made, and returns what it settled.
    ///
    /// Errors: [`MediaError::UnexpectedAnswer`] without an offer of ours pending,
    /// [`MediaError::InvalidSdp`] when the answer cannot be applied.
    pub async fn accept_answer(&self, answer: &Jsep) -> Result<Negotiated, MediaError> {
        match &self.engine {
            Engine::Webrtc(p) => p.accept_answer(answer).await,
            Engine::Loop(p) => p.accept_answer(answer).await,
        }
    }

    /// Whether a remote description is set, i.e. remote candidates can be applied.
    pub async fn has_remote_description(&self) -> bool {
        match &self.engine {
            Engine::Webrtc(p) => p.has_remote_description().await,
            Engine::Loop(p) => p.has_remote_description().await,
        }
    }

    /// Adds a trickled remote candidate.
    ///
    /// Errors: a candidate the ICE agent refuses, as [`MediaError::Rtc`].
    pub async fn add_remote_candidate(&self, candidate: RemoteCandidate) -> Result<(), MediaError> {
        match &self.engine {
            Engine::Webrtc(p) => p.add_remote_candidate(candidate).await,
            Engine::Loop(p) => p.add_remote_candidate(candidate).await,
        }
    }

    /// The sending side of this PeerConnection, for any thread.
    pub fn sender(&self) -> MediaSender {
        match &self.engine {
            Engine::Webrtc(p) => p.sender(),
            Engine::Loop(p) => p.sender(),
        }
    }

    /// Queues an RTP packet for the outgoing track of `kind`; dropped when the queue is full
    /// (the receiver's NACK/PLI recovers, and a slow peer must not stall the sender).
    pub fn send_rtp(&self, kind: MediaKind, packet: RtpPacket) {
        self.sender().send_rtp(kind, packet);
    }

    /// Asks the remote sender for a video keyframe (PLI).
    pub fn request_keyframe(&self) {
        self.sender().request_keyframe();
    }

    /// Caps the remote sender's bitrate (REMB), bits per second.
    pub fn send_remb(&self, bitrate: u64) {
        self.sender().send_remb(bitrate);
    }

    /// Sends a message on the data channel `label`.
    pub fn send_data(&self, label: &str, message: DataMessage) {
        self.sender().send_data(label, message);
    }

    /// Whether the first packet of `kind` has arrived and media is still flowing.
    pub fn receiving(&self, kind: MediaKind) -> bool {
        match &self.engine {
            Engine::Webrtc(p) => p.receiving(kind),
            Engine::Loop(p) => p.receiving(kind),
        }
    }

    /// Current ICE, PeerConnection and signaling state names, for the Admin API.
    pub fn state_summary(&self) -> (String, String, String) {
        match &self.engine {
            Engine::Webrtc(p) => p.state_summary(),
            Engine::Loop(p) => p.state_summary(),
        }
    }

    /// Local and remote SDPs, for the Admin API.
    pub async fn sdps(&self) -> (Option<String>, Option<String>) {
        match &self.engine {
            Engine::Webrtc(p) => p.sdps().await,
            Engine::Loop(p) => p.sdps().await,
        }
    }

    /// A snapshot of the transport (DTLS state, selected pair, candidates) and of every
    /// stream's counters, for the Admin API's `handle_info`.
    pub async fn stats(&self) -> PeerStats {
        match &self.engine {
            Engine::Webrtc(p) => p.stats().await,
            Engine::Loop(p) => p.stats().await,
        }
    }

    /// Closes the PeerConnection; no listener call follows.
    pub async fn close(&self) {
        match &self.engine {
            Engine::Webrtc(p) => p.close().await,
            Engine::Loop(p) => p.close(),
        }
    }
}
