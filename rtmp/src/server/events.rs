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

impl ServerEvent {
    /// The event's name (`PublishStarted`...), for logs that must not show the stream key.
    pub fn kind(&self) -> &'static str {
        match self {
            ServerEvent::PublishStarted { .. } => "PublishStarted",
            ServerEvent::PublishStopped { .. } => "PublishStopped",
            ServerEvent::PublishRefused { .. } => "PublishRefused",
            ServerEvent::UnsupportedCodec { .. } => "UnsupportedCodec",
            ServerEvent::PlayStarted { .. } => "PlayStarted",
            ServerEvent::PlayStopped { .. } => "PlayStopped",
            ServerEvent::ConnectionFailed { .. } => "ConnectionFailed",
        }
    }

    /// The RTMP application, when the event concerns a stream.
    pub fn app(&self) -> Option<&str> {
        match self {
            ServerEvent::PublishStarted { app, .. }
            | ServerEvent::PublishStopped { app, .. }
            | ServerEvent::PublishRefused { app, .. }
            | ServerEvent::UnsupportedCodec { app, .. }
            | ServerEvent::PlayStarted { app, .. }
            | ServerEvent::PlayStopped { app, .. } => Some(app),
            ServerEvent::ConnectionFailed { .. } => None,
        }
    }

    /// The remote address.
    pub fn peer(&self) -> SocketAddr {
        match self {
            ServerEvent::PublishStarted { peer, .. }
            | ServerEvent::PublishStopped { peer, .. }
            | ServerEvent::PublishRefused { peer, .. }
            | ServerEvent::UnsupportedCodec { peer, .. }
            | ServerEvent::PlayStarted { peer, .. }
            | ServerEvent::PlayStopped { peer, .. }
            | ServerEvent::ConnectionFailed { peer, .. } => *peer,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_fields_leave_the_key_out() {
        let e = ServerEvent::PublishRefused {
            app: "live".into(),
            key: "secret-key".into(),
            peer: SocketAddr::from(([127, 0, 0, 1], 9)),
            reason: "no".into(),
        };
        let shown = format!("{} {:?} {}", e.kind(), e.app(), e.peer());
        assert!(!shown.contains("secret-key"));
        assert_eq!(e.app(), Some("live"));
    }
}
