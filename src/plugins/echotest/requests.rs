//! The EchoTest request body: which keys it takes and how wrong ones are reported.

use serde_json::Value;

/// Plugin error code of `janus.plugin.echotest`: the body is not a JSON object.
pub const ERROR_INVALID_JSON: u16 = 412;
/// Plugin error code: a key has the wrong type or is not supported.
pub const ERROR_INVALID_ELEMENT: u16 = 413;
/// Plugin error code: the offer could not be negotiated.
pub const ERROR_INVALID_SDP: u16 = 414;
/// Plugin error code: anything else (e.g. the recorder could not start).
pub const ERROR_UNKNOWN: u16 = 499;

/// Settings a request may change; `None` leaves a setting as it is.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct EchoRequest {
    /// Echo audio.
    pub audio: Option<bool>,
    /// Echo video.
    pub video: Option<bool>,
    /// Echo data-channel messages.
    pub data: Option<bool>,
    /// REMB cap, bit/s (0 = none).
    pub bitrate: Option<u64>,
    /// Start (`true`) or stop (`false`) recording the audio the browser sends.
    pub record: Option<bool>,
    /// Name of the recording, relative to the recordings directory (`.opus` is added).
    pub filename: Option<String>,
}

/// A request that could not be accepted: the plugin error code and text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EchoError {
    /// One of the `ERROR_*` codes.
    pub code: u16,
    /// What was wrong, as Janus words it.
    pub message: String,
}

impl EchoError {
    fn new(code: u16, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// Keys Janus' EchoTest knows that this one does not implement yet: refused by name so a
/// client is not left wondering why nothing changed.
const NOT_SUPPORTED: &[&str] = &[
    "substream",
    "temporal",
    "fallback",
    "svc",
    "spatial_layer",
    "temporal_layer",
    "audiocodec",
    "videocodec",
    "videoprofile",
    "opusred",
    "min_delay",
    "max_delay",
];

impl EchoRequest {
    /// Parses a message body; `has_jsep` allows a body with no known key.
    pub fn parse(body: &Value, has_jsep: bool) -> Result<Self, EchoError> {
        let Some(map) = body.as_object() else {
            return Err(EchoError::new(
                ERROR_INVALID_JSON,
                "JSON error: not an object",
            ));
        };
        if let Some(key) = NOT_SUPPORTED.iter().find(|k| map.contains_key(**k)) {
            return Err(EchoError::new(
                ERROR_INVALID_ELEMENT,
                format!("Unsupported element ({key}): not implemented"),
            ));
        }
        let flag = |name: &str| -> Result<Option<bool>, EchoError> {
            match map.get(name) {
                None => Ok(None),
                Some(Value::Bool(b)) => Ok(Some(*b)),
                Some(_) => Err(EchoError::new(
                    ERROR_INVALID_ELEMENT,
                    format!("Invalid element type ({name} should be a boolean)"),
                )),
            }
        };
        let bitrate = match map.get("bitrate") {
            None => None,
            Some(v) => Some(v.as_u64().ok_or_else(|| {
                EchoError::new(
                    ERROR_INVALID_ELEMENT,
                    "Invalid element type (bitrate should be a positive integer)",
                )
            })?),
        };
        let filename = match map.get("filename") {
            None => None,
            Some(Value::String(name)) => Some(name.clone()),
            Some(_) => {
                return Err(EchoError::new(
                    ERROR_INVALID_ELEMENT,
                    "Invalid element type (filename should be a string)",
                ))
            }
        };
        let request = Self {
            audio: flag("audio")?,
            video: flag("video")?,
            data: flag("data")?,
            bitrate,
            record: flag("record")?,
            filename,
        };
        if request == Self::default() && !has_jsep {
            return Err(EchoError::new(
                ERROR_INVALID_ELEMENT,
                "Message error: no supported attributes found",
            ));
        }
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn known_keys_parse() {
        let r = EchoRequest::parse(&json!({"audio":false,"video":true,"bitrate":256000}), false)
            .unwrap();
        assert_eq!(
            r,
            EchoRequest {
                audio: Some(false),
                video: Some(true),
                data: None,
                bitrate: Some(256000),
                record: None,
                filename: None,
            }
        );
    }

    #[test]
    fn empty_body_needs_a_jsep() {
        assert_eq!(
            EchoRequest::parse(&json!({}), false).unwrap_err().code,
            ERROR_INVALID_ELEMENT
        );
        assert!(EchoRequest::parse(&json!({}), true).is_ok());
    }

    #[test]
    fn wrong_types_and_unsupported_keys_are_named() {
        let e = EchoRequest::parse(&json!({"audio":"yes"}), false).unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            (413, "Invalid element type (audio should be a boolean)")
        );
        let e = EchoRequest::parse(&json!({"bitrate":-1}), false).unwrap_err();
        assert_eq!(e.code, 413);
        let e = EchoRequest::parse(&json!({"substream":1}), false).unwrap_err();
        assert!(e.message.contains("substream"));
        let e = EchoRequest::parse(&json!({"record":true,"filename":7}), false).unwrap_err();
        assert_eq!(
            e.message,
            "Invalid element type (filename should be a string)"
        );
        let r = EchoRequest::parse(&json!({"record":true,"filename":"take1"}), false).unwrap();
        assert_eq!(
            (r.record, r.filename.as_deref()),
            (Some(true), Some("take1"))
        );
    }
}
