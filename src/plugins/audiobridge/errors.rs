//! Error codes of `janus.plugin.audiobridge` (480–499, as Janus numbers them) and the one
//! error type every request returns, sent as `{"audiobridge":"event","error_code":N,"error":"…"}`.

use serde_json::{json, Value};

/// No message (Janus: `JANUS_AUDIOBRIDGE_ERROR_NO_MESSAGE`).
pub const NO_MESSAGE: u16 = 480;
/// The body is not valid JSON.
pub const INVALID_JSON: u16 = 481;
/// Unknown request.
pub const INVALID_REQUEST: u16 = 482;
/// A mandatory field is missing.
pub const MISSING_ELEMENT: u16 = 483;
/// A field has the wrong type or value.
pub const INVALID_ELEMENT: u16 = 484;
/// No room with that id.
pub const NO_SUCH_ROOM: u16 = 485;
/// A room with that id exists already.
pub const ROOM_EXISTS: u16 = 486;
/// The handle has not joined a room.
pub const NOT_JOINED: u16 = 487;
/// An Opus encoder or decoder could not be made.
pub const LIBOPUS_ERROR: u16 = 488;
/// Wrong secret, PIN or token.
pub const UNAUTHORIZED: u16 = 489;
/// A participant (or file, forwarder) id is taken.
pub const ID_EXISTS: u16 = 490;
/// The handle is in a room already.
pub const ALREADY_JOINED: u16 = 491;
/// No participant with that id in the room.
pub const NO_SUCH_USER: u16 = 492;
/// The SDP could not be handled.
pub const INVALID_SDP: u16 = 493;
/// No such group in the room.
pub const NO_SUCH_GROUP: u16 = 494;
/// Anything else.
pub const UNKNOWN_ERROR: u16 = 499;

/// An application error of the audio bridge: a code from this module and Janus' text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code} {message}")]
pub struct AbError {
    /// The code, 480–499.
    pub code: u16,
    /// The reason, worded as Janus words it.
    pub message: String,
}

impl AbError {
    /// An error with `code` and `message`.
    pub fn new(code: u16, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// The plugin data clients receive.
    pub fn to_event(&self) -> Value {
        json!({ "audiobridge": "event", "error_code": self.code, "error": self.message })
    }
}

/// Result of a request handler.
pub type AbResult<T> = Result<T, AbError>;
