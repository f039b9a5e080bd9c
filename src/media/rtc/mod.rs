//! The loop media engine, on webrtc-rs's sans-I/O core (the `rtc` crate).
//!
//! One [`EventLoop`] thread per core owns one UDP socket shared by all of its
//! PeerConnections: a datagram goes to its PeerConnection by remote address, or, for the STUN
//! Binding request that opens a path, by our ICE ufrag in `USERNAME` ([`demux`]). Every
//! PeerConnection's timers sit in one deadline heap ([`timers`]); nothing is spawned per
//! PeerConnection, there is no per-PeerConnection socket or task, and one DTLS certificate
//! serves them all ([`PeerTemplate`]).
//!
//! What a PeerConnection receives goes to a [`PeerHandler`] on the loop thread, which may send
//! on the same PeerConnection at once through its [`Outbox`] (an echo needs no queue hop).
//!
//! This is the engine's core, tested against `rtc` clients (`tests.rs`) and Chromium
//! (`tests/e2e/media_loop.browser.test.js` through `examples/loop_echo`); it is not yet behind
//! a `[media]` engine choice: the Janus-facing contract ([`crate::media::Peer`]) still runs on
//! webrtc-rs 0.17.
//!
//! # Mapping onto the media contract (the next step)
//! [`crate::media::Peer`] becomes a handle on (loop, [`PeerKey`]): `answer`, `offer`,
//! `accept_answer`, `add_remote_candidate`, `sdps`, `stats` and `close` are loop commands
//! with a oneshot reply (what [`EventLoop::answer`] already is); a [`PeerHandler`] on the loop
//! calls the handle's `PeerListener` (`on_rtp`, `on_rtcp`, `on_data`, `on_connected`,
//! `on_failed`), whose contract already says "must not block"; `MediaSender`'s queue is
//! drained by the loop after a wake; `media`/`slowlink` checks become entries in the loop's
//! timer heap; `Negotiated::from_answer` and `mirror_offer` are reused as they are. New
//! PeerConnections go to the loop with the lowest [`EventLoop::load`].
//!
//! # What `rtc` 0.21.1 offers for it
//! Exercised here: BUNDLE and rtcp-mux with Chromium, Opus and VP8 both ways, DTLS-SRTP with
//! one shared certificate, a host candidate of our choosing in a half-trickle answer, our own
//! ICE credentials per PeerConnection (`with_ice_credentials`, what the demux keys on), NACK
//! with a bounded responder buffer, PLI through `RTCRtpReceiver::write_rtcp`, data channels
//! opened by Chromium, text and binary (SCTP starts only once an `m=application` is
//! negotiated). In the API but not exercised yet: H.264/VP9/AV1/G.722/G.711 in the default
//! codecs, FIR and REMB packet types, ICE-lite (`with_lite`), `restart_ice`, trickled remote
//! candidates (`add_remote_candidate`), `get_stats`. Not provided, by design of a sans-I/O core: candidate gathering
//! (the loop names its socket's address; server-reflexive and relay candidates need the loop
//! to run the STUN/TURN exchanges), RFC 4733 `telephone-event` is not among the default codecs
//! (registered by hand as the webrtc engine does), and sending a plugin's packet means
//! rewriting its SSRC and payload type to the sender's ([`Outbox::send_rtp`]).

mod activity;
pub mod demux;
mod event_loop;
mod handle;
mod loop_peer;
mod outbox;
mod pool;
mod stats;
pub mod timers;

pub use event_loop::{AnswerResult, EventLoop, PeerKey};
pub use handle::LoopHandle;
pub use loop_peer::{
    host_candidate, udp_datagram, LoopPeer, PeerHandler, PeerShared, PeerTemplate,
};
pub use outbox::Outbox;
pub use pool::LoopPool;

#[cfg(test)]
mod tests;
