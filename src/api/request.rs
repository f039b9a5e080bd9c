//! Typed access to the fields of a Janus request, with Janus' exact error texts.

use serde_json::{Map, Value};

use super::error::{ApiError, ErrorCode};

/// A request object with helpers that produce 456/467 errors named after the field.
pub struct Fields<'a> {
    map: &'a Map<String, Value>,
    /// Prefix for error texts (`"JSEP error: "` inside a jsep object).
    context: &'static str,
}

impl<'a> Fields<'a> {
    /// Fields of a top-level request: errors use Janus' plain texts
    /// (`Missing mandatory element (x)`).
    pub fn new(map: &'a Map<String, Value>) -> Self {
        Self { map, context: "" }
    }

    /// Fields of a nested object whose errors carry a prefix and a lower-case text, as Janus
    /// words them: `with_context(jsep, "JSEP error: ")` yields `JSEP error: missing mandatory
    /// element (sdp)`.
    pub fn with_context(map: &'a Map<String, Value>, context: &'static str) -> Self {
        Self { map, context }
    }

    fn missing(&self, name: &str) -> ApiError {
        if self.context.is_empty() {
            ApiError::missing(name)
        } else {
            ApiError::new(
                ErrorCode::MissingMandatoryElement,
                format!("{}missing mandatory element ({name})", self.context),
            )
        }
    }

    fn wrong(&self, name: &str, expected: &str) -> ApiError {
        if self.context.is_empty() {
            ApiError::invalid_type(name, expected)
        } else {
            ApiError::new(
                ErrorCode::InvalidElementType,
                format!(
                    "{}invalid element type ({name} should be {expected})",
                    self.context
                ),
            )
        }
    }

    /// The raw value of `name`, unchecked; `None` when absent.
    pub fn get(&self, name: &str) -> Option<&'a Value> {
        self.map.get(name)
    }

    /// Whether `name` is present at all (an explicit `null` counts).
    pub fn has(&self, name: &str) -> bool {
        self.map.contains_key(name)
    }

    /// A required string: 456 when absent, 467 when not a string.
    pub fn string(&self, name: &str) -> Result<&'a str, ApiError> {
        self.opt_string(name)?.ok_or_else(|| self.missing(name))
    }

    /// An optional string; an explicit `null` is the wrong type (467), as in Janus.
    pub fn opt_string(&self, name: &str) -> Result<Option<&'a str>, ApiError> {
        match self.map.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(self.wrong(name, "a string")),
        }
    }

    /// An optional non-negative integer; negative numbers, floats and non-numbers are 467.
    pub fn opt_u64(&self, name: &str) -> Result<Option<u64>, ApiError> {
        match self.map.get(name) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .map(Some)
                .ok_or_else(|| self.wrong(name, "a positive integer")),
        }
    }

    /// An optional integer (may be negative); floats, numbers beyond `i64` and non-numbers
    /// are 467.
    pub fn opt_i64(&self, name: &str) -> Result<Option<i64>, ApiError> {
        match self.map.get(name) {
            None => Ok(None),
            Some(v) => v
                .as_i64()
                .map(Some)
                .ok_or_else(|| self.wrong(name, "an integer")),
        }
    }

    /// An optional boolean; anything else, `null` included, is 467.
    pub fn opt_bool(&self, name: &str) -> Result<Option<bool>, ApiError> {
        match self.map.get(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(self.wrong(name, "a boolean")),
        }
    }

    /// A required object: 456 when absent, 467 when not an object.
    pub fn object(&self, name: &str) -> Result<&'a Map<String, Value>, ApiError> {
        match self.map.get(name) {
            None => Err(self.missing(name)),
            Some(Value::Object(o)) => Ok(o),
            Some(_) => Err(self.wrong(name, "an object")),
        }
    }

    /// An optional array of strings; 467 when not an array or when any item is not a string.
    pub fn opt_string_array(&self, name: &str) -> Result<Option<Vec<String>>, ApiError> {
        match self.map.get(name) {
            None => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| self.wrong(name, "an array"))
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(_) => Err(self.wrong(name, "an array")),
        }
    }
}

/// Parses a transport frame into a request object (454 bad JSON, 455 not an object).
pub fn parse_request(text: &str) -> Result<Map<String, Value>, ApiError> {
    let value: Value = serde_json::from_str(text).map_err(|e| {
        ApiError::new(
            ErrorCode::InvalidJson,
            format!("JSON error: on line {}: {}", e.line(), e),
        )
    })?;
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(ApiError::new(
            ErrorCode::InvalidJsonObject,
            "JSON error: not an object",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    proptest! {
        #[test]
        fn any_text_parses_or_fails_with_a_json_error(text in ".{0,200}") {
            if let Err(e) = parse_request(&text) {
                prop_assert!(matches!(e.code, ErrorCode::InvalidJson | ErrorCode::InvalidJsonObject));
            }
        }

        #[test]
        fn any_object_field_access_is_total(value in proptest::collection::hash_map("[a-z_]{1,12}", any::<i64>(), 0..8)) {
            let map: Map<String, Value> = value.into_iter().map(|(k, v)| (k, json!(v))).collect();
            let f = Fields::new(&map);
            let _ = (f.string("janus"), f.opt_u64("session_id"), f.object("body"), f.opt_bool("trickle"));
        }
    }

    #[test]
    fn parse_errors_map_to_454_and_455() {
        assert_eq!(
            parse_request("{nope").unwrap_err().code,
            ErrorCode::InvalidJson
        );
        assert_eq!(
            parse_request("[1,2]").unwrap_err().code,
            ErrorCode::InvalidJsonObject
        );
        assert!(parse_request("{\"janus\":\"ping\"}").is_ok());
    }

    #[test]
    fn field_errors_name_the_field() {
        let v = json!({"transaction": 5, "body": "x", "n": -1, "flag": null});
        let f = Fields::new(v.as_object().unwrap());
        assert_eq!(
            f.string("transaction").unwrap_err().reason,
            "Invalid element type (transaction should be a string)"
        );
        assert_eq!(
            f.string("janus").unwrap_err().reason,
            "Missing mandatory element (janus)"
        );
        assert_eq!(
            f.object("body").unwrap_err().code,
            ErrorCode::InvalidElementType
        );
        assert_eq!(
            f.opt_u64("n").unwrap_err().code,
            ErrorCode::InvalidElementType
        );
        assert_eq!(
            f.opt_bool("flag").unwrap_err().code,
            ErrorCode::InvalidElementType
        );
        let jsep = json!({"type":"offer"});
        let j = Fields::with_context(jsep.as_object().unwrap(), "JSEP error: ");
        assert_eq!(
            j.string("sdp").unwrap_err().reason,
            "JSEP error: missing mandatory element (sdp)"
        );
    }
}
