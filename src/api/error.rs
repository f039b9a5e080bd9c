//! Janus API error codes and the one error type every request path returns.

use serde_json::{json, Value};

/// A Janus API error code (`src/apierror.h` numbering, which clients rely on).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub enum ErrorCode {
    Unauthorized = 403,
    UnauthorizedPlugin = 405,
    TransportSpecific = 450,
    UnknownRequest = 453,
    InvalidJson = 454,
    InvalidJsonObject = 455,
    MissingMandatoryElement = 456,
    InvalidRequestPath = 457,
    SessionNotFound = 458,
    HandleNotFound = 459,
    PluginNotFound = 460,
    PluginAttach = 461,
    PluginMessage = 462,
    PluginDetach = 463,
    JsepUnknownType = 464,
    JsepInvalidSdp = 465,
    TrickleInvalidStream = 466,
    InvalidElementType = 467,
    SessionConflict = 468,
    UnexpectedAnswer = 469,
    TokenNotFound = 470,
    WebrtcState = 471,
    NotAcceptingSessions = 472,
    Unknown = 490,
}

/// An error answered to a Janus API request: a code and the reason text clients show.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} {reason}", *code as u16)]
pub struct ApiError {
    pub code: ErrorCode,
    pub reason: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, reason: impl Into<String>) -> Self {
        Self {
            code,
            reason: reason.into(),
        }
    }

    pub fn missing(element: &str) -> Self {
        Self::new(
            ErrorCode::MissingMandatoryElement,
            format!("Missing mandatory element ({element})"),
        )
    }

    pub fn invalid_type(element: &str, expected: &str) -> Self {
        Self::new(
            ErrorCode::InvalidElementType,
            format!("Invalid element type ({element} should be {expected})"),
        )
    }

    pub fn unauthorized() -> Self {
        Self::new(
            ErrorCode::Unauthorized,
            "Unauthorized request (wrong or missing secret/token)",
        )
    }

    pub fn session_not_found(id: u64) -> Self {
        Self::new(ErrorCode::SessionNotFound, format!("No such session {id}"))
    }

    pub fn handle_not_found(handle: u64, session: u64) -> Self {
        Self::new(
            ErrorCode::HandleNotFound,
            format!("No such handle {handle} in session {session}"),
        )
    }

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
