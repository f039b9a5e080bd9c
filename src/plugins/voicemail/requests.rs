//! The VoiceMail request body (Janus ≤ 1.1.2 `janus_voicemail.c`): which requests exist, which
//! keys they take and the error codes of wrong ones.

use serde_json::Value;

/// Plugin error code: the message has no body (Janus `JANUS_VOICEMAIL_ERROR_NO_MESSAGE`).
pub const ERROR_NO_MESSAGE: u16 = 460;
/// Plugin error code: the body is not a JSON object.
pub const ERROR_INVALID_JSON: u16 = 461;
/// Plugin error code: unknown `request`.
pub const ERROR_INVALID_REQUEST: u16 = 462;
/// Plugin error code: a mandatory element (`request`, the SDP offer) is missing.
pub const ERROR_MISSING_ELEMENT: u16 = 463;
/// Plugin error code: an element has the wrong type or value.
pub const ERROR_INVALID_ELEMENT: u16 = 464;
/// Plugin error code: `record` while a message is being recorded.
pub const ERROR_ALREADY_RECORDING: u16 = 465;
/// Plugin error code: the file could not be opened, written or closed.
pub const ERROR_IO_ERROR: u16 = 466;
/// Plugin error code: `stop` or `update` with no message being recorded.
pub const ERROR_INVALID_STATE: u16 = 468;
/// Plugin error code: anything else (negotiation failed).
pub const ERROR_UNKNOWN: u16 = 499;

/// A parsed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VoicemailRequest {
    /// Start recording the browser's audio (needs its offer). `mailbox` names the row's owner
    /// (default `voicemail`), `caller` the row's caller id; both optional Bifrons additions.
    Record {
        /// Owner of the message in the registry: 1..=64 characters.
        mailbox: Option<String>,
        /// Caller id written in the row: at most 256 characters.
        caller: Option<String>,
    },
    /// Renegotiation or ICE restart while recording (needs a new offer).
    Update,
    /// Stop recording: the message is closed and registered.
    Stop,
}

/// A request that could not be accepted: the plugin error code and text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoicemailError {
    /// One of the `ERROR_*` codes.
    pub code: u16,
    /// What was wrong, as Janus words it.
    pub message: String,
}

impl VoicemailError {
    /// An error with `code` and `message`.
    pub fn new(code: u16, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// Longest `caller` accepted, characters (the registry's text limit).
const MAX_CALLER_CHARS: usize = 256;
/// Longest `mailbox` accepted, characters (the registry's owner limit).
const MAX_MAILBOX_CHARS: usize = 64;

fn optional_text(
    map: &serde_json::Map<String, Value>,
    name: &str,
    max: usize,
) -> Result<Option<String>, VoicemailError> {
    match map.get(name) {
        None => Ok(None),
        Some(Value::String(s)) if !s.is_empty() && s.chars().count() <= max => Ok(Some(s.clone())),
        Some(Value::String(_)) => Err(VoicemailError::new(
            ERROR_INVALID_ELEMENT,
            format!("Invalid element ({name} should be 1 to {max} characters)"),
        )),
        Some(_) => Err(VoicemailError::new(
            ERROR_INVALID_ELEMENT,
            format!("Invalid element type ({name} should be a string)"),
        )),
    }
}

impl VoicemailRequest {
    /// Parses a message body; `has_offer` says whether a JSEP offer came with it (`record` and
    /// `update` need one: 463 `Missing SDP offer`).
    pub fn parse(body: &Value, has_offer: bool) -> Result<Self, VoicemailError> {
        let map = match body {
            Value::Null => {
                return Err(VoicemailError::new(ERROR_NO_MESSAGE, "No message??"));
            }
            Value::Object(map) => map,
            _ => {
                return Err(VoicemailError::new(
                    ERROR_INVALID_JSON,
                    "JSON error: not an object",
                ))
            }
        };
        let request = match map.get("request") {
            None => {
                return Err(VoicemailError::new(
                    ERROR_MISSING_ELEMENT,
                    "Missing element (request)",
                ))
            }
            Some(Value::String(r)) => r.to_ascii_lowercase(),
            Some(_) => {
                return Err(VoicemailError::new(
                    ERROR_INVALID_ELEMENT,
                    "Invalid element type (request should be a string)",
                ))
            }
        };
        let needs_offer = || {
            if has_offer {
                Ok(())
            } else {
                Err(VoicemailError::new(
                    ERROR_MISSING_ELEMENT,
                    "Missing SDP offer",
                ))
            }
        };
        match request.as_str() {
            "record" => {
                let mailbox = optional_text(map, "mailbox", MAX_MAILBOX_CHARS)?;
                let caller = optional_text(map, "caller", MAX_CALLER_CHARS)?;
                needs_offer()?;
                Ok(Self::Record { mailbox, caller })
            }
            "update" => {
                needs_offer()?;
                Ok(Self::Update)
            }
            "stop" => Ok(Self::Stop),
            other => Err(VoicemailError::new(
                ERROR_INVALID_REQUEST,
                format!("Unknown request '{other}'"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn requests_parse_with_their_offer() {
        assert_eq!(
            VoicemailRequest::parse(&json!({"request":"record"}), true),
            Ok(VoicemailRequest::Record {
                mailbox: None,
                caller: None
            })
        );
        assert_eq!(
            VoicemailRequest::parse(&json!({"request":"STOP"}), false),
            Ok(VoicemailRequest::Stop)
        );
        assert_eq!(
            VoicemailRequest::parse(&json!({"request":"update"}), true),
            Ok(VoicemailRequest::Update)
        );
    }

    #[test]
    fn wrong_bodies_get_janus_codes() {
        let code = |body: Value, offer| VoicemailRequest::parse(&body, offer).unwrap_err().code;
        assert_eq!(
            code(json!({"request":"record"}), false),
            ERROR_MISSING_ELEMENT
        );
        assert_eq!(
            code(json!({"request":"update"}), false),
            ERROR_MISSING_ELEMENT
        );
        assert_eq!(code(json!({}), true), ERROR_MISSING_ELEMENT);
        assert_eq!(code(json!({"request":1}), true), ERROR_INVALID_ELEMENT);
        assert_eq!(code(json!({"request":"fly"}), true), ERROR_INVALID_REQUEST);
        assert_eq!(code(json!([1]), true), ERROR_INVALID_JSON);
        assert_eq!(code(Value::Null, true), ERROR_NO_MESSAGE);
        assert_eq!(
            code(json!({"request":"record","caller":5}), true),
            ERROR_INVALID_ELEMENT
        );
        assert_eq!(
            code(json!({"request":"record","mailbox":"x".repeat(65)}), true),
            ERROR_INVALID_ELEMENT
        );
    }

    proptest! {
        /// Any JSON body gets an answer (a request or a coded error), never a panic.
        #[test]
        fn any_body_gets_an_answer(request in ".{0,12}", caller in proptest::option::of(".{0,300}"), offer: bool) {
            let mut body = json!({ "request": request });
            if let Some(c) = caller {
                body["caller"] = json!(c);
            }
            match VoicemailRequest::parse(&body, offer) {
                Ok(_) => {}
                Err(e) => prop_assert!((460..=499).contains(&e.code)),
            }
        }
    }
}
