use std::net::SocketAddr;

/// A publisher asking to go live, handed to the [`super::PublishAuthorizer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishRequest {
    /// RTMP application name (`live` in `rtmp://host/live/key`).
    pub app: String,
    /// Stream key.
    pub key: String,
    /// Encoder address.
    pub peer: SocketAddr,
}

/// Something that happened on the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerEvent {
    /// A publisher went live on `app`/`key`.
    PublishStarted {
        app: String,
        key: String,
        peer: SocketAddr,
    },
    /// The publisher of `app`/`key` stopped (disconnect, deleteStream, replaced, stalled...).
    PublishStopped {
        app: String,
        key: String,
        peer: SocketAddr,
        reason: String,
    },
    /// A publish was refused (authorizer said no, or the key is busy).
    PublishRefused {
        app: String,
        key: String,
        peer: SocketAddr,
        reason: String,
    },
    /// The publisher sent a codec Bifrons does not carry; it was disconnected.
    UnsupportedCodec {
        app: String,
        key: String,
        peer: SocketAddr,
        codec: String,
    },
    /// An RTMP player started pulling `app`/`key`.
    PlayStarted {
        app: String,
        key: String,
        peer: SocketAddr,
    },
    /// An RTMP player stopped.
    PlayStopped {
        app: String,
        key: String,
        peer: SocketAddr,
    },
    /// A connection was dropped because of a protocol or I/O error.
    ConnectionFailed { peer: SocketAddr, error: String },
}
