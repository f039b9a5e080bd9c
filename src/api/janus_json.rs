//! The one place that writes Janus JSON for events (reference/janus-protocol.md §events):
//! typed [`Event`]s in, `{"janus": …}` objects out, as Janus 1.x shapes them.

use serde_json::{json, Map, Value};

use crate::events::{Event, HandleEvent};
use crate::media::Jsep;

/// The Janus JSON of an event.
pub fn event(event: &Event) -> Value {
    match event {
        Event::Timeout { session } => json!({ "janus": "timeout", "session_id": session.0 }),
        Event::Handle {
            session,
            handle,
            event,
        } => {
            let (kind, fields) = handle_event(event);
            let mut out = Map::new();
            out.insert("janus".into(), json!(kind));
            out.insert("session_id".into(), json!(session.0));
            out.insert("sender".into(), json!(handle.0));
            out.extend(fields);
            Value::Object(out)
        }
    }
}

/// A JSEP object as clients read it (`{"type","sdp"}`).
pub fn jsep(jsep: &Jsep) -> Value {
    jsep.to_json()
}

/// The `keepalive` a long poll answers with when no event came in time.
pub fn keepalive() -> Value {
    json!({ "janus": "keepalive" })
}

fn handle_event(event: &HandleEvent) -> (&'static str, Map<String, Value>) {
    let mut f = Map::new();
    let kind = match event {
        HandleEvent::WebrtcUp => "webrtcup",
        HandleEvent::Media {
            mid,
            kind,
            receiving,
        } => {
            f.insert("mid".into(), json!(mid.as_str()));
            f.insert("type".into(), json!(kind.as_str()));
            f.insert("receiving".into(), json!(receiving));
            "media"
        }
        HandleEvent::Slowlink {
            mid,
            kind,
            uplink,
            lost,
        } => {
            f.insert("mid".into(), json!(mid.as_str()));
            f.insert("media".into(), json!(kind.as_str()));
            f.insert("uplink".into(), json!(uplink));
            f.insert("lost".into(), json!(lost));
            "slowlink"
        }
        HandleEvent::Hangup { reason } => {
            f.insert("reason".into(), json!(reason));
            "hangup"
        }
        HandleEvent::Trickle(candidate) => {
            let value = match candidate {
                Some(c) => json!({
                    "candidate": c.candidate,
                    "sdpMid": c.sdp_mid,
                    "sdpMLineIndex": c.sdp_mline_index.unwrap_or(0),
                }),
                None => json!({ "completed": true }),
            };
            f.insert("candidate".into(), value);
            "trickle"
        }
        HandleEvent::Detached => "detached",
        HandleEvent::Plugin {
            plugin,
            transaction,
            data,
            jsep: sdp,
        } => {
            if let Some(t) = transaction {
                f.insert("transaction".into(), json!(t));
            }
            f.insert(
                "plugindata".into(),
                json!({ "plugin": plugin, "data": data }),
            );
            if let Some(j) = sdp {
                f.insert("jsep".into(), jsep(j));
            }
            "event"
        }
    };
    (kind, f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{HandleId, Mid, SessionId};
    use crate::media::MediaKind;

    fn on_handle(event: HandleEvent) -> Value {
        super::event(&Event::Handle {
            session: SessionId(1),
            handle: HandleId(2),
            event,
        })
    }

    #[test]
    fn events_have_janus_shapes() {
        assert_eq!(
            super::event(&Event::Timeout {
                session: SessionId(9)
            }),
            json!({"janus":"timeout","session_id":9})
        );
        assert_eq!(
            on_handle(HandleEvent::Media {
                mid: Mid::from("0"),
                kind: MediaKind::Audio,
                receiving: true
            }),
            json!({"janus":"media","session_id":1,"sender":2,"mid":"0","type":"audio","receiving":true})
        );
        assert_eq!(
            on_handle(HandleEvent::Slowlink {
                mid: Mid::from("1"),
                kind: MediaKind::Video,
                uplink: false,
                lost: 12
            }),
            json!({"janus":"slowlink","session_id":1,"sender":2,"mid":"1","media":"video","uplink":false,"lost":12})
        );
        assert_eq!(
            on_handle(HandleEvent::Trickle(None)),
            json!({"janus":"trickle","session_id":1,"sender":2,"candidate":{"completed":true}})
        );
        assert_eq!(
            on_handle(HandleEvent::Plugin {
                plugin: "janus.plugin.echotest",
                transaction: Some("t1".into()),
                data: json!({"echotest":"event","result":"ok"}),
                jsep: Some(Jsep::answer("v=0".into())),
            }),
            json!({"janus":"event","session_id":1,"sender":2,"transaction":"t1",
                   "plugindata":{"plugin":"janus.plugin.echotest","data":{"echotest":"event","result":"ok"}},
                   "jsep":{"type":"answer","sdp":"v=0"}})
        );
        assert_eq!(
            on_handle(HandleEvent::Detached),
            json!({"janus":"detached","session_id":1,"sender":2})
        );
        assert_eq!(
            on_handle(HandleEvent::Hangup {
                reason: "Close PC".into()
            }),
            json!({"janus":"hangup","session_id":1,"sender":2,"reason":"Close PC"})
        );
    }
}
