//! Janus API error codes and the one error type every request path returns.

use serde_json::{json, Value};

/// A Janus API error code (`src/apierror.h` numbering, which clients rely on).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub enum ErrorCode {
    /// Wrong or missing `apisecret` / `token` (Janus API) or `admin_secret` (Admin API).
    Unauthorized = 403,
    /// The token is valid but not allowed to attach to the requested plugin (token auth only).
    UnauthorizedPlugin = 405,
    /// An error of the transport rather than of the request (e.g. an HTTP method the endpoint
    /// does not serve).
    TransportSpecific = 450,
    /// The `janus` request name is not one the core knows.
    UnknownRequest = 453,
    /// The frame is not valid JSON.
    InvalidJson = 454,
    /// The frame is valid JSON but not an object.
    InvalidJsonObject = 455,
    /// A required field is absent; the reason names it.
    MissingMandatoryElement = 456,
    /// A known request sent where it does not apply (e.g. `attach` on a handle path), or a
    /// session/handle id in the body that contradicts the one in the URL.
    InvalidRequestPath = 457,
    /// The `session_id` names no live session.
    SessionNotFound = 458,
    /// The `handle_id` names no handle in that session.
    HandleNotFound = 459,
    /// `attach` named a plugin package that is not loaded.
    PluginNotFound = 460,
    /// The plugin refused or failed to create its side of a new handle.
    PluginAttach = 461,
    /// The plugin answered a `message` with an error.
    PluginMessage = 462,
    /// The plugin failed to tear down a handle on `detach`.
    PluginDetach = 463,
    /// A `jsep` whose `type` is neither `offer` nor `answer`.
    JsepUnknownType = 464,
    /// The SDP in a `jsep` does not parse or cannot be applied.
    JsepInvalidSdp = 465,
    /// A trickled candidate refers to an m-line (`sdpMid` / `sdpMLineIndex`) that does not exist.
    TrickleInvalidStream = 466,
    /// A field has the wrong JSON type (e.g. a number where a string is expected).
    InvalidElementType = 467,
    /// `create` asked for a session `id` that is already in use.
    SessionConflict = 468,
    /// An SDP answer arrived while no offer of ours was pending.
    UnexpectedAnswer = 469,
    /// Admin API: `allow_token`, `disallow_token` or `remove_token` named an unknown token.
    TokenNotFound = 470,
    /// The request does not fit the PeerConnection's current state.
    WebrtcState = 471,
    /// `create` refused because the server is set not to accept new sessions
    /// (Admin API `accept_new_sessions`).
    NotAcceptingSessions = 472,
    /// Anything else (Janus' "unknown/undocumented error").
    Unknown = 490,
}

/// An error answered to a Janus API request: a code and the reason text clients show.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} {reason}", *code as u16)]
pub struct ApiError {
    /// Numeric code sent as `error.code`.
    pub code: ErrorCode,
    /// Human-readable text sent as `error.reason`, worded as Janus words the same error.
    pub reason: String,
}

impl ApiError {
    /// An error with a free-form reason.
    pub fn new(code: ErrorCode, reason: impl Into<String>) -> Self {
        Self {
            code,
            reason: reason.into(),
        }
    }

    /// 456 `Missing mandatory element (<element>)`, Janus' text for an absent field.
    pub fn missing(element: &str) -> Self {
        Self::new(
            ErrorCode::MissingMandatoryElement,
            format!("Missing mandatory element ({element})"),
        )
    }

    /// 467 `Invalid element type (<element> should be <expected>)`; `expected` reads like
    /// "a string" or "a positive integer".
    pub fn invalid_type(element: &str, expected: &str) -> Self {
        Self::new(
            ErrorCode::InvalidElementType,
            format!("Invalid element type ({element} should be {expected})"),
        )
    }

    /// 403 for a wrong or missing `apisecret`, `token` or `admin_secret`, with Janus' text
    /// (which does not say which credential failed).
    pub fn unauthorized() -> Self {
        Self::new(
            ErrorCode::Unauthorized,
            "Unauthorized request (wrong or missing secret/token)",
        )
    }

    /// 458 `No such session <id>`.
    pub fn session_not_found(id: u64) -> Self {
        Self::new(ErrorCode::SessionNotFound, format!("No such session {id}"))
    }

    /// 459 `No such handle <handle> in session <session>`.
    pub fn handle_not_found(handle: u64, session: u64) -> Self {
        Self::new(
            ErrorCode::HandleNotFound,
            format!("No such handle {handle} in session {session}"),
        )
    }

    /// 457 `Unhandled request '<request>' at this path`: the request exists but not at this
    /// level (session vs handle, Janus vs Admin API).
    pub fn unhandled_at_path(request: &str) -> Self {
        Self::new(
            ErrorCode::InvalidRequestPath,
            format!("Unhandled request '{request}' at this path"),
        )
    }

    /// The `{"janus":"error",...}` reply; `session_id` only when non-zero, `transaction` only when known.
    pub fn to_reply(&self, session_id: u64, transaction: Option<&str>) -> Value {
        let mut reply = json!({
            "janus": "error",
            "error": { "code": self.code as u16, "reason": self.reason },
        });
        if session_id != 0 {
            reply["session_id"] = json!(session_id);
        }
        if let Some(t) = transaction {
            reply["transaction"] = json!(t);
        }
        reply
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_reply_omits_zero_session_and_unknown_transaction() {
        let reply = ApiError::missing("transaction").to_reply(0, None);
        assert_eq!(
            reply,
            json!({"janus":"error","error":{"code":456,"reason":"Missing mandatory element (transaction)"}})
        );
        let reply = ApiError::session_not_found(42).to_reply(42, Some("t"));
        assert_eq!(reply["session_id"], 42);
        assert_eq!(reply["transaction"], "t");
        assert_eq!(reply["error"]["reason"], "No such session 42");
    }
}
