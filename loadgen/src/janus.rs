//! A minimal Janus API client over WebSocket (subprotocol `janus-protocol`): sessions,
//! handles, plugin messages with JSEP, keepalives. Generic over plugins: the scenarios decide
//! what the bodies and events mean.
//!
//! One connection per client; a reader task matches responses to requests by `transaction`
//! and routes events to their handle by `sender`.

use anyhow::{anyhow, bail, Context, Result};
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

type Pending = Arc<Mutex<HashMap<String, oneshot::Sender<Value>>>>;
type Routes = Arc<Mutex<HashMap<u64, mpsc::UnboundedSender<Value>>>>;

/// One WebSocket connection to a Janus API endpoint.
pub struct Janus {
    out: mpsc::UnboundedSender<Message>,
    pending: Pending,
    routes: Routes,
    next: AtomicU64,
    /// How long a request may wait for its response.
    pub timeout: Duration,
}

/// A plugin handle: its id and the events the gateway sent for it (`event`, `webrtcup`,
/// `media`, `hangup`...), whole.
pub struct Handle {
    /// Session id.
    pub session: u64,
    /// Handle id.
    pub id: u64,
    events: mpsc::UnboundedReceiver<Value>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Janus {
    /// Connects to `url` (e.g. `ws://127.0.0.1:8188/`).
    ///
    /// Errors: the connection or the WebSocket handshake failing.
    pub async fn connect(url: &str) -> Result<Arc<Janus>> {
        let mut req = url.into_client_request()?;
        req.headers_mut()
            .insert("Sec-WebSocket-Protocol", "janus-protocol".parse()?);
        let (ws, _) = tokio_tungstenite::connect_async(req)
            .await
            .with_context(|| format!("connecting to {url}"))?;
        let (mut sink, mut stream) = ws.split();
        let (out, mut queued) = mpsc::unbounded_channel::<Message>();
        let pending: Pending = Arc::default();
        let routes: Routes = Arc::default();
        tokio::spawn(async move {
            while let Some(m) = queued.recv().await {
                if sink.send(m).await.is_err() {
                    break;
                }
            }
            let _ = sink.close().await;
        });
        let (p, r) = (pending.clone(), routes.clone());
        tokio::spawn(async move {
            while let Some(Ok(msg)) = stream.next().await {
                let Message::Text(text) = msg else { continue };
                let Ok(v) = serde_json::from_str::<Value>(&text) else {
                    continue;
                };
                dispatch(&p, &r, v);
            }
            // Connection gone: every waiter fails.
            lock(&p).clear();
            lock(&r).clear();
        });
        Ok(Arc::new(Janus {
            out,
            pending,
            routes,
            next: AtomicU64::new(1),
            timeout: Duration::from_secs(30),
        }))
    }

    /// Sends `request` (a transaction is added) and returns the first response to it:
    /// `success`, `ack` or `error` (the latter as an `Err`).
    pub async fn request(&self, mut request: Value) -> Result<Value> {
        let tx = format!("t{}", self.next.fetch_add(1, Ordering::Relaxed));
        request["transaction"] = json!(tx);
        let (done, answer) = oneshot::channel();
        lock(&self.pending).insert(tx.clone(), done);
        self.out
            .send(Message::Text(request.to_string().into()))
            .map_err(|_| anyhow!("connection closed"))?;
        let v = tokio::time::timeout(self.timeout, answer)
            .await
            .map_err(|_| {
                lock(&self.pending).remove(&tx);
                anyhow!(
                    "no answer to {} within {:?}",
                    request["janus"],
                    self.timeout
                )
            })?
            .map_err(|_| anyhow!("connection closed"))?;
        if v["janus"] == "error" {
            bail!("janus error: {}", v["error"]);
        }
        Ok(v)
    }

    /// `create`: a new session id.
    pub async fn create_session(&self) -> Result<u64> {
        let v = self.request(json!({"janus": "create"})).await?;
        v["data"]["id"]
            .as_u64()
            .ok_or_else(|| anyhow!("create: {v}"))
    }

    /// `attach` to `plugin` (e.g. `janus.plugin.sip`).
    pub async fn attach(&self, session: u64, plugin: &str) -> Result<Handle> {
        let v = self
            .request(json!({"janus": "attach", "session_id": session, "plugin": plugin}))
            .await?;
        let id = v["data"]["id"]
            .as_u64()
            .ok_or_else(|| anyhow!("attach: {v}"))?;
        let (tx, events) = mpsc::unbounded_channel();
        lock(&self.routes).insert(id, tx);
        Ok(Handle {
            session,
            id,
            events,
        })
    }

    /// `message` with `body` and an optional JSEP to `handle`; returns the ack.
    pub async fn message(
        &self,
        handle: &Handle,
        body: Value,
        jsep: Option<Value>,
    ) -> Result<Value> {
        let mut m = json!({"janus": "message", "session_id": handle.session,
                           "handle_id": handle.id, "body": body});
        if let Some(j) = jsep {
            m["jsep"] = j;
        }
        self.request(m).await
    }

    /// `keepalive` for `session`.
    pub async fn keepalive(&self, session: u64) -> Result<()> {
        self.request(json!({"janus": "keepalive", "session_id": session}))
            .await
            .map(drop)
    }

    /// Sends a `keepalive` for `session` every 20 s until one fails or the task is aborted.
    pub fn spawn_keepalive(self: &Arc<Self>, session: u64) -> tokio::task::JoinHandle<()> {
        let janus = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(20)).await;
                if janus.keepalive(session).await.is_err() {
                    return;
                }
            }
        })
    }

    /// `destroy` of `session` (its handles go with it).
    pub async fn destroy(&self, session: u64) -> Result<()> {
        self.request(json!({"janus": "destroy", "session_id": session}))
            .await
            .map(drop)
    }
}

fn dispatch(pending: &Pending, routes: &Routes, v: Value) {
    let kind = v["janus"].as_str().unwrap_or_default();
    if matches!(kind, "success" | "ack" | "error") {
        if let Some(tx) = v["transaction"].as_str() {
            if let Some(waiter) = lock(pending).remove(tx) {
                let _ = waiter.send(v);
                return;
            }
        }
    }
    if let Some(sender) = v["sender"].as_u64() {
        if let Some(route) = lock(routes).get(&sender) {
            let _ = route.send(v);
        }
    }
}

impl Handle {
    /// Waits up to `within` for a plugin `event` whose `plugindata.data` satisfies `wanted`;
    /// returns that data and the event's JSEP. Other messages are skipped.
    ///
    /// Errors: the time passing, the connection closing, or a plugin `error` (an event whose
    /// data has `error_code`).
    pub async fn wait_event(
        &mut self,
        within: Duration,
        wanted: impl Fn(&Value) -> bool,
    ) -> Result<(Value, Option<Value>)> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let v = tokio::time::timeout_at(deadline, self.events.recv())
                .await
                .map_err(|_| anyhow!("no matching event within {within:?}"))?
                .ok_or_else(|| anyhow!("connection closed"))?;
            if v["janus"] != "event" {
                continue;
            }
            let data = &v["plugindata"]["data"];
            if data.get("error_code").is_some() {
                bail!("plugin error: {data}");
            }
            if wanted(data) {
                return Ok((data.clone(), v.get("jsep").cloned()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_go_to_their_transaction_and_events_to_their_handle() {
        let pending: Pending = Arc::default();
        let routes: Routes = Arc::default();
        let (done, mut answer) = oneshot::channel();
        lock(&pending).insert("t1".into(), done);
        let (tx, mut events) = mpsc::unbounded_channel();
        lock(&routes).insert(42, tx);

        // A message's ack, then its event with the same transaction: the ack answers the
        // request, the event goes to the handle.
        dispatch(
            &pending,
            &routes,
            json!({"janus": "ack", "transaction": "t1"}),
        );
        let event = json!({"janus": "event", "transaction": "t1", "sender": 42,
                           "plugindata": {"data": {"result": {"event": "accepted"}}}});
        dispatch(&pending, &routes, event.clone());
        // Another handle's event and an unknown transaction go nowhere.
        dispatch(&pending, &routes, json!({"janus": "webrtcup", "sender": 7}));
        dispatch(
            &pending,
            &routes,
            json!({"janus": "success", "transaction": "t9"}),
        );

        assert_eq!(answer.try_recv().unwrap()["janus"], "ack");
        assert_eq!(events.try_recv().unwrap(), event);
        assert!(events.try_recv().is_err());
        assert!(lock(&pending).is_empty());
    }
}
