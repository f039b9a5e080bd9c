//! The error type of the user agent API.

use crate::digest::DigestError;
use crate::rtp::RtpError;
use crate::sdp::SdpError;

/// Why a registration's credentials were not accepted.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthFailure {
    /// The server challenged again after we answered its challenge: wrong user or password.
    #[error("credentials refused (challenged again with {code})")]
    WrongCredentials {
        /// 401 or 407.
        code: u16,
    },
    /// 403 Forbidden.
    #[error("forbidden")]
    Forbidden,
    /// A challenge we cannot answer.
    #[error("unsupported challenge: {0}")]
    Unsupported(#[from] DigestError),
    /// Challenged but no account (user/password) is configured.
    #[error("challenged without credentials")]
    NoCredentials,
}

/// Every failure of the user agent API.
#[derive(Debug, thiserror::Error)]
pub enum SipError {
    /// Socket failure.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// Authentication failed.
    #[error("authentication failed: {0}")]
    Auth(#[from] AuthFailure),
    /// The peer answered with a final error response.
    #[error("rejected with {code} {reason}")]
    Rejected {
        /// Status code.
        code: u16,
        /// Reason phrase.
        reason: String,
    },
    /// No final response in time (timer B/F).
    #[error("transaction timed out")]
    Timeout,
    /// Bad or incompatible SDP.
    #[error("sdp: {0}")]
    Sdp(#[from] SdpError),
    /// Media endpoint failure.
    #[error("rtp: {0}")]
    Rtp(#[from] RtpError),
    /// A URI we cannot use.
    #[error("invalid uri {0}")]
    InvalidUri(String),
    /// The call is not in a state allowing this.
    #[error("invalid call state: {0}")]
    InvalidState(&'static str),
    /// The user agent has stopped.
    #[error("user agent closed")]
    Closed,
}
