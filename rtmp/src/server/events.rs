use std::net::SocketAddr;

use crate::name::QueryParams;

/// A publisher asking to go live, handed to the [`super::PublishAuthorizer`].
///
/// For `rtmp://host/live?tenant=acme/cam1?token=abc123` (app `live?tenant=acme` in `connect`,
/// stream `cam1?token=abc123` in `publish`): `app` is `live`, `key` is `cam1`, `params` holds
/// `token=abc123` and `app_params` holds `tenant=acme`. Names are split by
/// [`crate::name::StreamName`]; the stream goes live, and is played, under `app`/`key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishRequest {
    /// RTMP application name without its query (`live` in `rtmp://host/live/key`).
    pub app: String,
    /// Stream key without its query (`cam1` in `rtmp://host/live/cam1?token=abc123`).
    pub key: String,
    /// Parameters of the stream name's query string (`token=abc123`), percent-decoded.
    pub params: QueryParams,
    /// Parameters of the app's query string (`connect` app `live?tenant=acme`).
    pub app_params: QueryParams,
    /// Encoder address.
    pub peer: SocketAddr,
}

impl PublishRequest {
    /// The first value of parameter `name`, from the stream name's query, else from the app's
    /// (`Some("")` for an empty value).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).or_else(|| self.app_params.get(name))
    }
}

/// Something that happened on the server. `app`/`key` name the stream (without query strings,
/// which may carry secrets), `peer` the remote end.
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
