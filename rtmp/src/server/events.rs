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

/// Something that happened on the server. `app`/`key` name the stream, `peer` the remote end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerEvent {
    /// A publisher went live on `app`/`key`.
    PublishStarted {
        /// RTMP application.
        app: String,
        /// Stream key.
        key: String,
        /// Encoder address.
        peer: SocketAddr,
    },
    /// The publisher of `app`/`key` stopped (disconnect, deleteStream, replaced, stalled...).
    PublishStopped {
        /// RTMP application.
        app: String,
        /// Stream key.
        key: String,
        /// Encoder address.
        peer: SocketAddr,
        /// Why it stopped.
        reason: String,
    },
    /// A publish was refused (authorizer said no, or the key is busy).
    PublishRefused {
        /// RTMP application.
        app: String,
        /// Stream key.
        key: String,
        /// Encoder address.
        peer: SocketAddr,
        /// NetStream code and description sent to the encoder.
        reason: String,
    },
    /// The publisher sent a codec Bifrons does not carry; it was disconnected.
    UnsupportedCodec {
        /// RTMP application.
        app: String,
        /// Stream key.
        key: String,
        /// Encoder address.
        peer: SocketAddr,
        /// The codec, as recognised (e.g. "HEVC (hvc1)").
        codec: String,
    },
    /// An RTMP player started pulling `app`/`key`.
    PlayStarted {
        /// RTMP application.
        app: String,
        /// Stream key.
        key: String,
        /// Player address.
        peer: SocketAddr,
    },
    /// An RTMP player stopped.
    PlayStopped {
        /// RTMP application.
        app: String,
        /// Stream key.
        key: String,
        /// Player address.
        peer: SocketAddr,
    },
    /// A connection was dropped because of a protocol or I/O error.
    ConnectionFailed {
        /// Remote address.
        peer: SocketAddr,
        /// What went wrong.
        error: String,
    },
}
