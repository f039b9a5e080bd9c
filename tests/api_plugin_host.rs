//! The plugin host end to end, in-process: a fake plugin attached, messaged and detached
//! over the real Janus HTTP API, showing what the contract promises (sync and async answers
//! with their transactions, typed per-handle state, events on the bus, tasks cancelled on
//! detach, `end()`, attach refusals, shutdown).

mod support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use futures::future::BoxFuture;
use serde_json::{json, Value};

use bifrons::events::{Event, HandleEvent};
use bifrons::plugins::{
    AttachError, HandleCtx, Plugin, PluginDescriptor, PluginHost, PluginMessage, PluginResult,
    RegisteredPlugin,
};
use support::gateway::TestGateway;

const PACKAGE: &str = "janus.plugin.probe";

/// What the test reads back from the plugin after the gateway ran it.
#[derive(Default)]
struct Seen {
    destroyed: AtomicU64,
    task_dropped: AtomicBool,
    shut_down: AtomicBool,
}

fn seen() -> &'static Seen {
    static SEEN: OnceLock<Seen> = OnceLock::new();
    SEEN.get_or_init(Seen::default)
}

struct Probe {
    descriptor: PluginDescriptor,
}

/// The probe's typed per-handle state.
struct ProbeHandle {
    messages: AtomicU64,
}

/// Flags `task_dropped` when the task holding it is dropped (cancelled).
struct DropFlag;

impl Drop for DropFlag {
    fn drop(&mut self) {
        seen().task_dropped.store(true, Ordering::SeqCst);
    }
}

fn factory(host: &PluginHost) -> BoxFuture<'_, anyhow::Result<RegisteredPlugin>> {
    // The host hands the plugin the registry and the services.
    assert!(host.services.streams.names().is_empty());
    Box::pin(async {
        Ok(RegisteredPlugin::new(Probe {
            descriptor: PluginDescriptor {
                package: PACKAGE,
                name: "Probe",
                author: "tests",
                description: "answers what the tests ask",
                version: 1,
                version_string: "0.0.1",
            },
        }))
    })
}

#[async_trait::async_trait]
impl Plugin for Probe {
    type Handle = ProbeHandle;

    fn descriptor(&self) -> &PluginDescriptor {
        &self.descriptor
    }

    fn create_handle(&self, _ctx: &HandleCtx) -> Result<ProbeHandle, AttachError> {
        Ok(ProbeHandle {
            messages: AtomicU64::new(0),
        })
    }

    async fn handle_message(
        &self,
        handle: &Arc<ProbeHandle>,
        ctx: &Arc<HandleCtx>,
        message: PluginMessage,
    ) -> PluginResult {
        let n = handle.messages.fetch_add(1, Ordering::SeqCst) + 1;
        match message.body["request"].as_str() {
            Some("echo") => PluginResult::Ok(json!({ "echo": message.body, "count": n })),
            Some("later") => {
                let ctx = ctx.clone();
                PluginResult::Async {
                    hint: Some("soon".into()),
                    work: Box::pin(async move {
                        ctx.push_event(Some(&message.transaction), json!({ "done": n }), None);
                    }),
                }
            }
            Some("spawn") => {
                ctx.spawn(async {
                    let _flag = DropFlag;
                    std::future::pending::<()>().await;
                });
                PluginResult::Ok(json!({ "spawned": true }))
            }
            Some("end") => {
                ctx.end();
                PluginResult::Ok(json!({ "ending": true }))
            }
            _ => PluginResult::Error("unknown request".into()),
        }
    }

    async fn destroy_handle(&self, _handle: &Arc<ProbeHandle>, _ctx: &HandleCtx) {
        seen().destroyed.fetch_add(1, Ordering::SeqCst);
    }

    fn query_handle(&self, handle: &ProbeHandle) -> Value {
        json!({ "messages": handle.messages.load(Ordering::SeqCst) })
    }

    async fn shutdown(&self) {
        seen().shut_down.store(true, Ordering::SeqCst);
    }
}

fn is_detached(handle: u64) -> impl FnMut(&Value) -> bool {
    move |e| e["janus"] == "detached" && e["sender"] == handle
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attach_message_event_detach_through_a_fake_plugin() {
    let gw = TestGateway::start(&[factory]).await;
    let mut bus = gw.core.events.subscribe();

    let info = gw.get("/janus/info").await;
    assert_eq!(info["plugins"][PACKAGE]["name"], "Probe", "{info}");

    let session = gw.create_session().await;
    let attached = gw.attach(session, PACKAGE).await;
    let handle = attached["data"]["id"]
        .as_u64()
        .unwrap_or_else(|| panic!("{attached}"));
    assert_eq!(
        gw.attach(session, "janus.plugin.nothere").await["error"]["code"],
        460
    );

    // Synchronous answer: success with plugindata, state kept per handle.
    let r = gw
        .message(session, handle, "t1", json!({"request":"echo","x":1}))
        .await;
    assert_eq!(r["janus"], "success", "{r}");
    assert_eq!(r["plugindata"]["plugin"], PACKAGE);
    assert_eq!(r["plugindata"]["data"]["echo"]["x"], 1);
    assert_eq!(r["plugindata"]["data"]["count"], 1);

    // Asynchronous: ack with hint, then the event carrying the same transaction.
    let r = gw
        .message(session, handle, "t2", json!({"request":"later"}))
        .await;
    assert_eq!(
        (r["janus"].as_str(), r["hint"].as_str()),
        (Some("ack"), Some("soon"))
    );
    let event = gw.wait_event(session, |e| e["janus"] == "event").await;
    assert_eq!(event["transaction"], "t2");
    assert_eq!(event["sender"], handle);
    assert_eq!(
        event["plugindata"],
        json!({"plugin": PACKAGE, "data": {"done": 2}})
    );
    // The same event, typed, on the bus.
    let observed = loop {
        match bus.recv().await.unwrap() {
            Event::Handle {
                event: e @ HandleEvent::Plugin { .. },
                handle: h,
                ..
            } => break (h.0, e),
            _ => continue,
        }
    };
    assert_eq!(observed.0, handle);
    assert!(
        matches!(observed.1, HandleEvent::Plugin { transaction: Some(ref t), .. } if t == "t2")
    );

    // A plugin error is Janus 462.
    let r = gw
        .message(session, handle, "t3", json!({"request":"nonsense"}))
        .await;
    assert_eq!(r["error"]["code"], 462, "{r}");

    // Spawned tasks end with the handle; destroy_handle runs once; `detached` follows.
    let r = gw
        .message(session, handle, "t4", json!({"request":"spawn"}))
        .await;
    assert_eq!(r["plugindata"]["data"]["spawned"], true);
    assert!(!seen().task_dropped.load(Ordering::SeqCst));
    let destroyed_before = seen().destroyed.load(Ordering::SeqCst);
    let r = gw
        .post(
            &format!("/janus/{session}/{handle}"),
            &json!({"janus":"detach","transaction":"d"}),
        )
        .await;
    assert_eq!(r["janus"], "success");
    gw.wait_event(session, is_detached(handle)).await;
    assert!(
        seen().task_dropped.load(Ordering::SeqCst),
        "spawned task cancelled on detach"
    );
    assert_eq!(
        seen().destroyed.load(Ordering::SeqCst),
        destroyed_before + 1
    );

    // A plugin ends its own handle: detached as if the client had asked.
    let second = gw.attach(session, PACKAGE).await["data"]["id"]
        .as_u64()
        .unwrap();
    gw.message(session, second, "t5", json!({"request":"end"}))
        .await;
    gw.wait_event(session, is_detached(second)).await;
    let r = gw
        .message(session, second, "t6", json!({"request":"echo"}))
        .await;
    assert_eq!(r["error"]["code"], 459, "the handle is gone: {r}");

    gw.stop().await;
    assert!(
        seen().shut_down.load(Ordering::SeqCst),
        "plugins shut down with the gateway"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destroyed_session_is_gone_for_the_next_request_before_its_teardown_runs() {
    // Janus takes the session out of its table before it answers `destroy`. The teardown is
    // the outcome's `after`, which the transport runs once the success is sent; a request
    // right behind that success must already get 458.
    use bifrons::api::router::{handle_request, RequestContext};
    use bifrons::api::HTTP_TRANSPORT;
    use bifrons::session::Sink;

    let gw = TestGateway::start(&[]).await;
    let session = gw.create_session().await;
    let ctx = RequestContext {
        sink: Sink::Queue,
        transport: HTTP_TRANSPORT,
        path_session: None,
        path_handle: None,
    };
    let request = |body: Value| match body {
        Value::Object(map) => map,
        _ => unreachable!(),
    };
    let destroyed = handle_request(
        &gw.core,
        request(json!({"janus": "destroy", "session_id": session, "transaction": "d"})),
        &ctx,
    )
    .await;
    assert_eq!(destroyed.reply["janus"], "success", "{}", destroyed.reply);
    let keepalive = handle_request(
        &gw.core,
        request(json!({"janus": "keepalive", "session_id": session, "transaction": "k"})),
        &ctx,
    )
    .await;
    assert_eq!(keepalive.reply["error"]["code"], 458, "{}", keepalive.reply);
    if let Some(teardown) = destroyed.after {
        teardown.await;
    }
    gw.stop().await;
}
