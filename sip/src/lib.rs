//! `bifrons-sip`: the SIP user agent of Bifrons.
//!
//! Layers, bottom up: [`message`] (framing and parsing on `rsip`), [`transport`] (UDP/TCP),
//! [`transaction`] (RFC 3261 §17 state machines in injectable time), the protocol task that
//! holds dialogs and registration, and the typed async API in [`ua`]. Media: [`sdp`]
//! offer/answer and the [`rtp`] endpoint with RFC 4733 [`dtmf`], plain or SDES-[`srtp`].

#![warn(missing_docs)]

pub mod body;
mod core;
pub mod digest;
pub mod dtmf;
pub mod error;
pub mod event;
pub mod media;
pub mod message;
pub mod rtp;
pub mod sdp;
pub mod srtp;
pub mod transaction;
pub mod transport;
pub mod ua;
pub mod wav;

/// G.711 (ITU-T G.711 μ-law and A-law), re-exported from `bifrons-transcoding` so SIP code
/// and the transcoder share one implementation.
pub use bifrons_transcoding::g711;
pub use digest::DigestSecret;
pub use error::{AuthFailure, SipError};
pub use sdp::{Codec, Direction, Sdp};
pub use transport::Transport;
pub use ua::{
    Account, Call, CallEvent, CallEvents, DtmfVia, EndReason, RegistrationEvent, Ua, UaConfig,
    UaEvent, UaEvents,
};
