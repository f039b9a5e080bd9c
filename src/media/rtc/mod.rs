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
//! This is the engine's core, tested against an `rtc` client over loopback; it is not yet
//! behind `[media]`'s engine choice: the Janus-facing contract ([`crate::media::Peer`]) still
//! runs on webrtc-rs 0.17.

pub mod demux;
mod event_loop;
mod loop_peer;
pub mod timers;

pub use event_loop::{AnswerResult, EventLoop, PeerKey};
pub use loop_peer::{LoopPeer, Outbox, PeerHandler, PeerTemplate};

#[cfg(test)]
mod tests;
