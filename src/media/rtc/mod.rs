//! The loop media engine (`[media] engine = "loop"`), on webrtc-rs's sans-I/O core (the `rtc`
//! crate).
//!
//! [`LoopPool`] starts one [`EventLoop`] thread per core; each owns one UDP socket shared by all
//! of its PeerConnections: a datagram goes to its PeerConnection by remote address, or, for the
//! STUN Binding request that opens a path, by our ICE ufrag in `USERNAME` ([`demux`]). The
//! socket is read and written in batches, `recvmmsg` and `sendmmsg` on Linux ([`batch`]). Every
//! PeerConnection's timers (`rtc`'s own, and the `media`/`slowlink` checks of `activity`) sit
//! in one deadline heap ([`timers`]); nothing is spawned per PeerConnection, there is no
//! per-PeerConnection socket or task, and one DTLS certificate serves them all
//! ([`PeerTemplate`]). A new PeerConnection goes to the loop with the fewest and stays there.
//!
//! # The media contract on a loop
//! `media::Peer` on this engine is a [`LoopHandle`]: `answer`, `offer`, `accept_answer`,
//! `add_remote_candidate`, `sdps` and `stats` are loop commands with a reply
//! ([`EventLoop::with`]), run on the loop thread against the [`LoopPeer`]. What the
//! PeerConnection reports reaches the handle's `PeerListener` from the loop thread (whose
//! contract already says "must not block"). The handle's `MediaSender` queues as on the other
//! engine; its first item after a drain schedules one `Flush` command and wakes the loop (a
//! zero-length datagram from the loop's waker socket, skipped when the sender runs on the
//! loop's own thread, as an echo does), and the loop drains the queue into `rtc`.
//!
//! Answers follow the plugins' plans as the webrtc-rs 0.17 engine's do: the plan's codec first
//! under the offer's payload type ([`LoopPeer::answer`]), telephone-event at 48 and 8 kHz,
//! RFC 6464 audio levels, `mirror_offer` for the answer's shape.
//!
//! # What `rtc` 0.21.1 offers for it
//! Exercised against Chromium through the whole end-to-end suite: BUNDLE and rtcp-mux, Opus,
//! G.711, VP8 and H.264 both ways, DTLS-SRTP with one shared certificate, a host candidate of
//! the loop's socket, trickled remote candidates, ICE restarts either way, NACK generation, PLI,
//! REMB, data channels (SCTP starts only once an `m=application` is negotiated). NACKs are
//! answered by an interceptor of ours whose history follows the round trip, as Janus' does
//! (`retransmit.rs`, `[media] min_nack_queue`), where `rtc`'s keeps a fixed ring of packets.
//!
//! Not provided, by design of a sans-I/O core: candidate gathering. The loop names its socket's
//! address (or, with `[ice] nat_1_1_mapping`, the mapped address as a server-reflexive
//! candidate based on it); candidates from STUN or TURN servers would need the loop to run those
//! exchanges, so `[ice] stun_servers` and `turn_servers` are refused with this engine (and
//! `engine = "auto"` picks webrtc-rs 0.17 for them).
//!
//! Sending a plugin's packet means rewriting its SSRC and payload type to the sender's
//! ([`Outbox::send_rtp`]), as webrtc-rs' tracks do.

mod activity;
mod batch;
pub mod demux;
mod event_loop;
mod feedback;
mod handle;
mod loop_peer;
mod outbox;
mod pool;
mod retransmit;
mod setup;
mod stats;
pub mod stun;
pub mod timers;

pub use event_loop::{AnswerResult, EventLoop, PeerKey};
pub use handle::LoopHandle;
pub use loop_peer::{LoopPeer, PeerHandler, PeerShared};
pub use outbox::Outbox;
pub use pool::LoopPool;
pub use setup::{host_candidate, udp_datagram, PeerTemplate};

#[cfg(test)]
mod tests;
