//! The WebRTC media core: ICE, DTLS-SRTP, RTP/RTCP and data channels, on webrtc-rs.
//!
//! This module is the only place that imports webrtc-rs types; the rest of Bifrons speaks in
//! its own ([`RtpPacket`], [`MediaKind`], [`Jsep`]...), so the engine can be replaced.

mod capacity;
mod codec_choice;
mod engine;
mod error;
mod interfaces;
mod mirror;
mod nack_queue;
mod negotiated;
mod peer;
mod plan;
pub mod rtc;
mod sender;
mod stats;
mod types;
mod webrtc_peer;

pub use capacity::Capacity;
pub use codec_choice::{offered_formats, OfferedCodec, OfferedFormat};
pub use engine::MediaEngine;
pub use error::MediaError;
pub use nack_queue::MinNackQueue;
pub use negotiated::{Negotiated, NegotiatedStream, StreamInfo};
pub use peer::{Peer, PeerListener, DATA_CHANNEL_LABEL};
pub use plan::{AnswerPlan, Codec, Direction, OfferPlan, StreamPlan};
pub use sender::{DetachedReceiver, MediaSender};
pub use stats::{
    CandidatePair, CandidateSummary, Counters, DtlsState, PeerStats, StreamStats, StreamType,
};
pub use types::*;

/// Checks that an SDP parses, so a broken offer is refused before any plugin sees it.
pub fn validate_sdp(sdp: &str) -> Result<(), String> {
    let mut reader = std::io::Cursor::new(sdp.as_bytes());
    webrtc::sdp::SessionDescription::unmarshal(&mut reader)
        .map(|_| ())
        .map_err(|e| e.to_string())
}
