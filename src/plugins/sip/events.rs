//! The JSON of `janus.plugin.sip` events: `{"sip":"event","call_id"?:…,"result":{"event":…}}`,
//! and errors `{"sip":"event","error_code":N,"error":"…"}` (Janus' shapes).

use serde_json::{json, Map, Value};

use super::requests::SipError;

/// An event named `event` with the extra `fields` in `result`, tied to `call_id` if any.
pub fn result(call_id: Option<&str>, event: &str, fields: Value) -> Value {
    let mut result = Map::new();
    result.insert("event".into(), Value::String(event.into()));
    if let Value::Object(extra) = fields {
        result.extend(extra);
    }
    let mut data = Map::new();
    data.insert("sip".into(), Value::String("event".into()));
    if let Some(id) = call_id {
        data.insert("call_id".into(), Value::String(id.into()));
    }
    data.insert("result".into(), Value::Object(result));
    Value::Object(data)
}

/// An event with no extra fields.
pub fn simple(call_id: Option<&str>, event: &str) -> Value {
    result(call_id, event, json!({}))
}

/// A plugin error event.
pub fn error(error: &SipError, call_id: Option<&str>) -> Value {
    let mut data = json!({ "sip": "event", "error_code": error.code, "error": error.message });
    if let Some(id) = call_id {
        data["call_id"] = Value::String(id.into());
    }
    data
}

/// `hangup` with the SIP status that ended the call and its reason phrase.
pub fn hangup(call_id: Option<&str>, code: u16, reason: &str) -> Value {
    result(call_id, "hangup", json!({ "code": code, "reason": reason }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_match_janus() {
        assert_eq!(
            hangup(Some("c1"), 200, "Session Terminated"),
            json!({"sip":"event","call_id":"c1","result":{"event":"hangup","code":200,"reason":"Session Terminated"}})
        );
        assert_eq!(
            error(&SipError::new(447, "Wrong state (not in a call?)"), None),
            json!({"sip":"event","error_code":447,"error":"Wrong state (not in a call?)"})
        );
        assert_eq!(
            result(
                None,
                "registered",
                json!({"username":"sip:a@b","register_sent":true})
            ),
            json!({"sip":"event","result":{"event":"registered","username":"sip:a@b","register_sent":true}})
        );
    }
}
