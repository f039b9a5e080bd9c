//! Errors of the RTMP server and client.

use thiserror::Error;

use crate::flv::FlvError;

/// Why an RTMP connection failed.
#[derive(Debug, Error)]
pub enum RtmpError {
    /// Socket error.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The peer closed the connection.
    #[error("connection closed by peer")]
    Closed,
    /// The handshake failed (malformed or unexpected bytes).
    #[error("handshake failed: {0}")]
    Handshake(String),
    /// The peer sent chunks or messages that could not be parsed, or a session-level error.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The peer sent nothing for longer than the configured timeout.
    #[error("peer silent for {0:?}")]
    Timeout(std::time::Duration),
    /// A media tag could not be used.
    #[error("media: {0}")]
    Media(#[from] FlvError),
    /// The URL is not `rtmp://host[:port]/app/key`.
    #[error("invalid RTMP URL {0:?}")]
    InvalidUrl(String),
    /// The remote server refused the request.
    #[error("refused by server: {0}")]
    Refused(String),
    /// `rtmps://`: the TLS session could not be set up (certificate not trusted or not for
    /// this host, no common protocol version, a CA file that cannot be read).
    #[error("TLS: {0}")]
    Tls(String),
}
