//! Request-field validation worded as Janus words it: each request lists its fields with a
//! type and whether it is required; the first field that is missing gives 483 `Missing
//! mandatory element (<name>)`, the first of the wrong type 484 `Invalid element type (<name>
//! should be <type>)`. "Positive" integers are those ≥ 0, as in Janus.

use std::fmt;

use serde_json::{Map, Value};

use super::errors::{AbError, AbResult, INVALID_ELEMENT, MISSING_ELEMENT};

/// The JSON type a field must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A string.
    Str,
    /// An integer ≥ 0.
    UInt,
    /// `true` or `false`.
    Bool,
    /// An array.
    Array,
    /// An object.
    Object,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Str => "a string",
            Kind::UInt => "a positive integer",
            Kind::Bool => "a boolean",
            Kind::Array => "an array",
            Kind::Object => "an object",
        }
    }

    fn accepts(self, v: &Value) -> bool {
        match self {
            Kind::Str => v.is_string(),
            Kind::UInt => v.is_u64(),
            Kind::Bool => v.is_boolean(),
            Kind::Array => v.is_array(),
            Kind::Object => v.is_object(),
        }
    }
}

/// One field of a request: name, type, required.
pub type Field = (&'static str, Kind, bool);

/// Checks `body` against `fields` in order, as Janus' `JANUS_VALIDATE_JSON_OBJECT`.
pub fn validate(body: &Map<String, Value>, fields: &[Field]) -> AbResult<()> {
    for &(name, kind, required) in fields {
        match body.get(name) {
            None if required => {
                return Err(AbError::new(
                    MISSING_ELEMENT,
                    format!("Missing mandatory element ({name})"),
                ))
            }
            None => {}
            Some(v) if !kind.accepts(v) => {
                return Err(AbError::new(
                    INVALID_ELEMENT,
                    format!("Invalid element type ({name} should be {})", kind.name()),
                ))
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// A room or participant id: a number, or with `string_ids` a string (Janus' two modes).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Id {
    /// Numeric id (the default).
    Num(u64),
    /// String id (`string_ids = true`).
    Str(String),
}

impl Id {
    /// The id as it appears in JSON.
    pub fn to_json(&self) -> Value {
        match self {
            Id::Num(n) => Value::from(*n),
            Id::Str(s) => Value::from(s.clone()),
        }
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Id::Num(n) => write!(f, "{n}"),
            Id::Str(s) => f.write_str(s),
        }
    }
}

/// How ids are read: numbers (default) or strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdMode {
    /// Janus' `string_ids`.
    pub string_ids: bool,
}

impl IdMode {
    fn kind(self) -> Kind {
        if self.string_ids {
            Kind::Str
        } else {
            Kind::UInt
        }
    }

    /// Validates and reads the id field `name` (`room`, `id`): `None` when optional and absent.
    pub fn read(
        self,
        body: &Map<String, Value>,
        name: &'static str,
        required: bool,
    ) -> AbResult<Option<Id>> {
        validate(body, &[(name, self.kind(), required)])?;
        Ok(body.get(name).map(|v| match v {
            Value::String(s) => Id::Str(s.clone()),
            other => Id::Num(other.as_u64().unwrap_or(0)),
        }))
    }

    /// Like [`IdMode::read`] for a required field.
    pub fn require(self, body: &Map<String, Value>, name: &'static str) -> AbResult<Id> {
        self.read(body, name, true)?.ok_or_else(|| {
            AbError::new(
                MISSING_ELEMENT,
                format!("Missing mandatory element ({name})"),
            )
        })
    }

    /// A fresh random id (numeric: 53 bits so JavaScript keeps it exact; string: 16 hex digits).
    pub fn random(self) -> Id {
        if self.string_ids {
            Id::Str(format!("{:016x}", rand::random::<u64>()))
        } else {
            Id::Num((rand::random::<u64>() & 0x1F_FFFF_FFFF_FFFF).max(1))
        }
    }
}

/// A string field that passed [`validate`].
pub fn str_of<'a>(body: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    body.get(name).and_then(Value::as_str)
}

/// A boolean field that passed [`validate`].
pub fn bool_of(body: &Map<String, Value>, name: &str) -> Option<bool> {
    body.get(name).and_then(Value::as_bool)
}

/// An integer field that passed [`validate`].
pub fn u64_of(body: &Map<String, Value>, name: &str) -> Option<u64> {
    body.get(name).and_then(Value::as_u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn first_missing_or_mistyped_field_is_reported_as_janus_does() {
        let fields: &[Field] = &[("room", Kind::UInt, true), ("secret", Kind::Str, false)];
        assert_eq!(validate(&obj(json!({"room": 3})), fields), Ok(()));
        let e = validate(&obj(json!({})), fields).unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            (483, "Missing mandatory element (room)")
        );
        let e = validate(&obj(json!({"room": -1})), fields).unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            (
                484,
                "Invalid element type (room should be a positive integer)"
            )
        );
        let e = validate(&obj(json!({"room": 1, "secret": null})), fields).unwrap_err();
        assert_eq!(
            e.message,
            "Invalid element type (secret should be a string)"
        );
        assert!(validate(&obj(json!({"room": 1.5})), fields).is_err());
    }

    #[test]
    fn ids_follow_the_configured_mode() {
        let num = IdMode { string_ids: false };
        let st = IdMode { string_ids: true };
        let body = obj(json!({"room": 1234, "id": "abc"}));
        assert_eq!(num.require(&body, "room"), Ok(Id::Num(1234)));
        assert_eq!(st.require(&body, "id"), Ok(Id::Str("abc".into())));
        assert_eq!(num.require(&body, "id").unwrap_err().code, 484);
        assert_eq!(st.read(&obj(json!({})), "room", false), Ok(None));
        assert!(matches!(num.random(), Id::Num(n) if n > 0 && n < (1 << 53)));
        assert_eq!(Id::Num(7).to_string(), "7");
    }
}
