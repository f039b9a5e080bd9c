//! [`MediaError`]: why a media operation failed, in Bifrons' own terms (no webrtc-rs type in
//! its shape, so callers never depend on the engine underneath).

/// Why a media operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MediaError {
    /// The SDP could not be parsed or applied (Janus answers 465 for a client's JSEP).
    #[error("invalid SDP: {0}")]
    InvalidSdp(String),
    /// An answer arrived but this side sent no offer (Janus 469).
    #[error("unexpected answer: no offer was sent")]
    UnexpectedAnswer,
    /// The handle has no PeerConnection (yet, or any more).
    #[error("no PeerConnection")]
    NoPeer,
    /// None of the codecs the plan accepts is in the remote offer for a stream that must send.
    #[error("no common codec for {0}")]
    NoCommonCodec(&'static str),
    /// The DTLS certificate could not be made or loaded (start-up only).
    #[error("DTLS certificate: {0}")]
    Certificate(String),
    /// `[media] max_sessions` PeerConnections are alive already (Janus 490).
    #[error("media engine at capacity")]
    Overloaded,
    /// The WebRTC engine refused the operation; the text is the engine's.
    #[error("WebRTC: {0}")]
    Rtc(String),
}

impl From<webrtc::Error> for MediaError {
    fn from(e: webrtc::Error) -> Self {
        MediaError::Rtc(e.to_string())
    }
}
