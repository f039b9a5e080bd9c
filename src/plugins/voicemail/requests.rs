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
/// Plugin error code (Bifrons): wrong mailbox or web secret, as HTTP 403.
pub const ERROR_UNAUTHORIZED: u16 = 403;
/// Plugin error code (Bifrons): no such message in this mailbox, as HTTP 404.
pub const ERROR_NO_SUCH_MESSAGE: u16 = 404;

/// Who asks for a mailbox's messages: the account's extension and its web secret (the one the
/// SIP plugin's `register` with `type: "account"` takes). `Debug` hides the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct MailboxAuth {
    /// Extension of the account: 1..=64 characters.
    pub mailbox: String,
    /// The account's web secret: 1..=256 characters.
    pub secret: String,
}

impl std::fmt::Debug for MailboxAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailboxAuth")
            .field("mailbox", &self.mailbox)
            .field("secret", &"***")
            .finish()
    }
}

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
    /// Stop recording (the message is closed and registered) or playing.
    Stop,
    /// The mailbox's messages, newest first, each with a download token (Bifrons).
    List(MailboxAuth),
    /// Play message `id` to the browser: a gateway offer follows (Bifrons).
    Play(MailboxAuth, i64),
    /// The browser's answer to `play`'s offer came with this request: playback starts.
    Start,
    /// Delete message `id`: its file and row (Bifrons).
    Delete(MailboxAuth, i64),
    /// Mark message `id` heard (`heard`, default true) or unheard (Bifrons).
    Mark(MailboxAuth, i64, bool),
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

/// Longest web secret accepted, characters (the registry's limit).
const MAX_SECRET_CHARS: usize = 256;

fn required_text(
    map: &serde_json::Map<String, Value>,
    name: &str,
    max: usize,
) -> Result<String, VoicemailError> {
    optional_text(map, name, max)?.ok_or_else(|| {
        VoicemailError::new(ERROR_MISSING_ELEMENT, format!("Missing element ({name})"))
    })
}

fn auth(map: &serde_json::Map<String, Value>) -> Result<MailboxAuth, VoicemailError> {
    Ok(MailboxAuth {
        mailbox: required_text(map, "mailbox", MAX_MAILBOX_CHARS)?,
        secret: required_text(map, "secret", MAX_SECRET_CHARS)?,
    })
}

/// The message `id`: a positive integer (a registry row id).
fn message_id(map: &serde_json::Map<String, Value>) -> Result<i64, VoicemailError> {
    match map.get("id") {
        None => Err(VoicemailError::new(
            ERROR_MISSING_ELEMENT,
            "Missing element (id)",
        )),
        Some(v) => v
            .as_u64()
            .and_then(|n| i64::try_from(n).ok())
            .filter(|n| *n > 0)
            .ok_or_else(|| {
                VoicemailError::new(
                    ERROR_INVALID_ELEMENT,
                    "Invalid element type (id should be a positive integer)",
                )
            }),
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
            "list" => Ok(Self::List(auth(map)?)),
            "play" => Ok(Self::Play(auth(map)?, message_id(map)?)),
            "start" => Ok(Self::Start),
            "delete" => Ok(Self::Delete(auth(map)?, message_id(map)?)),
            "mark" => {
                let heard = match map.get("heard") {
                    None => true,
                    Some(Value::Bool(b)) => *b,
                    Some(_) => {
                        return Err(VoicemailError::new(
                            ERROR_INVALID_ELEMENT,
                            "Invalid element type (heard should be a boolean)",
                        ))
                    }
                };
                Ok(Self::Mark(auth(map)?, message_id(map)?, heard))
            }
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

    #[test]
    fn mailbox_requests_need_mailbox_secret_and_id() {
        let auth = MailboxAuth {
            mailbox: "1001".into(),
            secret: "s3cret-web".into(),
        };
        let ok = |body: Value| VoicemailRequest::parse(&body, false).unwrap();
        assert_eq!(
            ok(json!({"request":"list","mailbox":"1001","secret":"s3cret-web"})),
            VoicemailRequest::List(auth.clone())
        );
        assert_eq!(
            ok(json!({"request":"play","mailbox":"1001","secret":"s3cret-web","id":7})),
            VoicemailRequest::Play(auth.clone(), 7)
        );
        assert_eq!(
            ok(
                json!({"request":"mark","mailbox":"1001","secret":"s3cret-web","id":7,"heard":false})
            ),
            VoicemailRequest::Mark(auth.clone(), 7, false)
        );
        assert_eq!(
            ok(json!({"request":"delete","mailbox":"1001","secret":"s3cret-web","id":7})),
            VoicemailRequest::Delete(auth.clone(), 7)
        );
        assert!(!format!("{auth:?}").contains("s3cret"));
        let code = |body: Value| VoicemailRequest::parse(&body, false).unwrap_err().code;
        assert_eq!(
            code(json!({"request":"list","mailbox":"1001"})),
            ERROR_MISSING_ELEMENT
        );
        assert_eq!(
            code(json!({"request":"list","secret":"x"})),
            ERROR_MISSING_ELEMENT
        );
        assert_eq!(
            code(json!({"request":"play","mailbox":"1001","secret":"x"})),
            ERROR_MISSING_ELEMENT
        );
        for id in [json!(0), json!(-1), json!("7"), json!(1.5), json!(u64::MAX)] {
            assert_eq!(
                code(json!({"request":"play","mailbox":"1001","secret":"x","id":id})),
                ERROR_INVALID_ELEMENT
            );
        }
        assert_eq!(
            code(json!({"request":"mark","mailbox":"1001","secret":"x","id":1,"heard":"yes"})),
            ERROR_INVALID_ELEMENT
        );
        assert_eq!(
            code(json!({"request":"list","mailbox":"","secret":"x"})),
            ERROR_INVALID_ELEMENT
        );
    }

    proptest! {
        /// Any mailbox request body gets a request or a coded error, never a panic.
        #[test]
        fn any_mailbox_body_gets_an_answer(
            request in "(list|play|delete|mark|start)",
            mailbox in proptest::option::of(".{0,80}"),
            secret in proptest::option::of(".{0,300}"),
            id in proptest::option::of(any::<i64>()),
            heard in proptest::option::of(any::<bool>()),
        ) {
            let mut body = json!({ "request": request });
            if let Some(m) = mailbox { body["mailbox"] = json!(m); }
            if let Some(s) = secret { body["secret"] = json!(s); }
            if let Some(i) = id { body["id"] = json!(i); }
            if let Some(h) = heard { body["heard"] = json!(h); }
            match VoicemailRequest::parse(&body, false) {
                Ok(VoicemailRequest::Play(_, id) | VoicemailRequest::Delete(_, id) | VoicemailRequest::Mark(_, id, _)) => prop_assert!(id > 0),
                Ok(_) => {}
                Err(e) => prop_assert!((460..=499).contains(&e.code)),
            }
        }

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
