//! Janus streaming error codes (`janus_streaming.c`) and the checks of request fields that
//! produce them, with Janus' own wording ("Missing element (id)", "Invalid element type (id
//! should be a positive integer)").

use serde_json::{json, Map, Value};

/// No message in the request.
pub const NO_MESSAGE: u16 = 450;
/// The body is not a JSON object.
pub const INVALID_JSON: u16 = 451;
/// Unknown request, or a request that makes no sense here.
pub const INVALID_REQUEST: u16 = 452;
/// A mandatory field is missing.
pub const MISSING_ELEMENT: u16 = 453;
/// A field has the wrong type or value.
pub const INVALID_ELEMENT: u16 = 454;
/// No mountpoint with that id (or the handle watches none).
pub const NO_SUCH_MOUNTPOINT: u16 = 455;
/// The mountpoint could not be created (id taken, bad media description, port in use).
pub const CANT_CREATE: u16 = 456;
/// Wrong secret or PIN.
pub const UNAUTHORIZED: u16 = 457;
/// `switch` between mountpoints whose media differ.
pub const CANT_SWITCH: u16 = 458;
/// A recording could not be started.
pub const CANT_RECORD: u16 = 459;
/// Not in a state where the request can be served.
pub const INVALID_STATE: u16 = 460;
/// The SDP could not be used.
pub const INVALID_SDP: u16 = 461;
/// Anything else.
pub const UNKNOWN_ERROR: u16 = 470;

/// An error answer of the streaming plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamingError {
    /// One of the codes above.
    pub code: u16,
    /// The `error` text.
    pub message: String,
}

impl StreamingError {
    /// An error with `code` and `message`.
    pub fn new(code: u16, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// The plugin data Janus sends for it.
    pub fn to_json(&self) -> Value {
        json!({ "streaming": "event", "error_code": self.code, "error": self.message })
    }
}

/// Result of the request helpers.
pub type Result<T> = std::result::Result<T, StreamingError>;

/// The JSON types Janus validates fields against, with the names its messages use.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// An integer ≥ 0.
    PositiveInteger,
    /// A string.
    String,
    /// `true`/`false`.
    Boolean,
    /// An array.
    Array,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::PositiveInteger => "a positive integer",
            Kind::String => "a string",
            Kind::Boolean => "a boolean",
            Kind::Array => "an array",
        }
    }

    fn accepts(self, value: &Value) -> bool {
        match self {
            Kind::PositiveInteger => value.as_u64().is_some(),
            Kind::String => value.is_string(),
            Kind::Boolean => value.is_boolean(),
            Kind::Array => value.is_array(),
        }
    }
}

/// Checks `fields` of `body` in order, as Janus does: the first missing required field gives
/// 453, the first of a wrong type 454.
pub fn validate(body: &Map<String, Value>, fields: &[(&str, Kind, bool)]) -> Result<()> {
    for (name, kind, required) in fields {
        match body.get(*name) {
            None if *required => {
                return Err(StreamingError::new(
                    MISSING_ELEMENT,
                    format!("Missing element ({name})"),
                ))
            }
            None => {}
            Some(v) if !kind.accepts(v) => {
                return Err(StreamingError::new(
                    INVALID_ELEMENT,
                    format!("Invalid element type ({name} should be {})", kind.name()),
                ))
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// The required `id` (a positive integer).
pub fn id(body: &Map<String, Value>) -> Result<u64> {
    validate(body, &[("id", Kind::PositiveInteger, true)])?;
    Ok(body.get("id").and_then(Value::as_u64).unwrap_or(0))
}

/// An optional string field (already validated).
pub fn string(body: &Map<String, Value>, name: &str) -> Option<String> {
    body.get(name).and_then(Value::as_str).map(str::to_string)
}

/// An optional boolean field (already validated).
pub fn boolean(body: &Map<String, Value>, name: &str) -> Option<bool> {
    body.get(name).and_then(Value::as_bool)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn janus_wording_for_missing_and_invalid_fields() {
        assert_eq!(
            id(&obj(json!({}))).unwrap_err(),
            StreamingError::new(453, "Missing element (id)")
        );
        assert_eq!(
            id(&obj(json!({"id": "7"}))).unwrap_err(),
            StreamingError::new(
                454,
                "Invalid element type (id should be a positive integer)"
            )
        );
        assert_eq!(id(&obj(json!({"id": -1}))).unwrap_err().code, 454);
        assert_eq!(id(&obj(json!({"id": 7}))).unwrap(), 7);
        assert_eq!(
            validate(&obj(json!({"pin": 1})), &[("pin", Kind::String, false)])
                .unwrap_err()
                .message,
            "Invalid element type (pin should be a string)"
        );
    }
}
