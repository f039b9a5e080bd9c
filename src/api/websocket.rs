//! The WebSocket transport (`janus-protocol`) and the Admin API over WebSocket
//! (`janus-admin-protocol`).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use axum::routing::any;
use axum::Router;
use futures::{SinkExt, StreamExt};
use serde_json::{Map, Value};
use tokio::sync::{mpsc, oneshot};

use super::admin::handle_admin;
use super::error::{ApiError, ErrorCode};
use super::janus_json;
use super::router::{handle_request, RequestContext};
use super::WEBSOCKET_TRANSPORT;
use crate::core::Core;
use crate::events::Event;
use crate::session::{Session, Sink};

/// How long a closing connection may take to send what is queued and its Close frame.
const CLOSE_FLUSH: Duration = Duration::from_secs(2);
/// Initial read buffer of a connection, bytes. Janus requests are small (an SDP is a few KiB)
/// and the buffer grows for a larger frame; tungstenite's default, 128 KiB per connection,
/// was the largest single part of a session's memory when each session has its own socket.
const READ_BUFFER: usize = 8 * 1024;

/// The Janus API over WebSocket; any URL path is accepted, like Janus.
pub fn janus_router(core: Arc<Core>) -> Router {
    Router::new()
        .route("/", any(janus_upgrade))
        .route("/{*path}", any(janus_upgrade))
        .with_state(core)
}

/// The Admin API over WebSocket.
pub fn admin_router(core: Arc<Core>) -> Router {
    Router::new()
        .route("/", any(admin_upgrade))
        .route("/{*path}", any(admin_upgrade))
        .with_state(core)
}

async fn janus_upgrade(State(core): State<Arc<Core>>, ws: WebSocketUpgrade) -> Response {
    ws.protocols(["janus-protocol"])
        .read_buffer_size(READ_BUFFER)
        .on_upgrade(move |socket| serve(core, socket, false))
}

async fn admin_upgrade(State(core): State<Arc<Core>>, ws: WebSocketUpgrade) -> Response {
    ws.protocols(["janus-admin-protocol"])
        .read_buffer_size(READ_BUFFER)
        .on_upgrade(move |socket| serve(core, socket, true))
}

/// Splits a frame into the JSON objects it holds (a frame may carry several in a row).
fn frame_requests(text: &str) -> Vec<Result<Map<String, Value>, ApiError>> {
    let mut out = Vec::new();
    for item in serde_json::Deserializer::from_str(text).into_iter::<Value>() {
        match item {
            Ok(Value::Object(map)) => out.push(Ok(map)),
            // Janus' WebSocket transport refuses anything but an object as unparseable (454).
            Ok(_) => out.push(Err(ApiError::new(
                ErrorCode::InvalidJson,
                "Invalid Janus API request - not a JSON object",
            ))),
            Err(e) => {
                out.push(Err(ApiError::new(
                    ErrorCode::InvalidJson,
                    format!("Invalid Janus API request - {e}"),
                )));
                break;
            }
        }
    }
    out
}

async fn serve(core: Arc<Core>, socket: WebSocket, admin: bool) {
    let connection = core.next_connection_id();
    tracing::debug!(connection, admin, "WebSocket connected");
    let (mut sender, mut receiver) = socket.split();
    // Replies and session events travel on two queues; the writer serves replies first, so
    // an `ack` queued before its request's work started always precedes that work's events.
    let (tx, mut replies) = mpsc::unbounded_channel::<Value>();
    let (events_tx, mut events) = mpsc::unbounded_channel::<Event>();
    // The reader tells the writer, which owns the sending half, whether the peer sent a Close
    // frame (rather than just going away): answering it completes the closing handshake
    // (RFC 6455 §5.5.1), so a client closing with 1000 sees 1000 back, not 1006.
    let (close_tx, mut close_rx) = oneshot::channel::<bool>();
    let writer = tokio::spawn(async move {
        loop {
            let message = tokio::select! {
                biased;
                Some(reply) = replies.recv() => reply,
                close = &mut close_rx => {
                    if close == Ok(true) {
                        // The socket queued the echo of the peer's frame (same code) when it
                        // read it, but writes nothing more by itself: closing the sink
                        // flushes that echo (sending a Close message would be refused now).
                        let _ = sender.close().await;
                    }
                    break;
                }
                Some(event) = events.recv() => janus_json::event(&event),
                else => break,
            };
            if sender
                .send(Message::Text(message.to_string().into()))
                .await
                .is_err()
            {
                break;
            }
        }
    });
    let ctx = RequestContext {
        sink: Sink::Socket {
            connection,
            tx: events_tx,
        },
        transport: WEBSOCKET_TRANSPORT,
        path_session: None,
        path_handle: None,
    };
    let mut peer_closed = false;
    while let Some(Ok(frame)) = receiver.next().await {
        let text = match frame {
            Message::Text(t) => t.to_string(),
            Message::Binary(b) => String::from_utf8_lossy(&b).into_owned(),
            Message::Close(_) => {
                peer_closed = true;
                break;
            }
            _ => continue,
        };
        for request in frame_requests(&text) {
            let request = match request {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(connection, reason = %e.reason, "malformed WebSocket request");
                    let _ = tx.send(e.to_reply(0, None));
                    continue;
                }
            };
            if admin {
                let _ = tx.send(handle_admin(&core, request, None, None).await);
                continue;
            }
            let outcome = handle_request(&core, request, &ctx).await;
            let _ = tx.send(outcome.reply);
            if let Some(after) = outcome.after {
                tokio::spawn(after);
            }
        }
    }
    drop(ctx);
    drop(tx);
    if !admin {
        connection_closed(&core, connection);
    }
    // Replies already queued go out first (the writer serves them before the close), then
    // the Close answer; a peer that stopped reading does not hold the task for long.
    let _ = close_tx.send(peer_closed);
    let abort = writer.abort_handle();
    if tokio::time::timeout(CLOSE_FLUSH, writer).await.is_err() {
        abort.abort();
    }
    tracing::debug!(connection, "WebSocket closed");
}

/// A WebSocket closed: its sessions survive, their events queued, so that a new connection
/// can `claim` them; unclaimed, they go after `reclaim_session_timeout` seconds when that is
/// set, else at the ordinary session timeout.
fn connection_closed(core: &Arc<Core>, connection: u64) {
    let owned: Vec<Arc<Session>> = core
        .sessions
        .all()
        .into_iter()
        .filter(|s| s.connection() == Some(connection))
        .collect();
    let reclaim = core.config.general.reclaim_session_timeout;
    for session in owned {
        session.unbind_connection(connection);
        if reclaim == 0 {
            continue;
        }
        let sessions = core.sessions.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(reclaim)).await;
            if session.connection().is_none() && session.transport() == WEBSOCKET_TRANSPORT {
                sessions.destroy(&session).await;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concatenated_objects_in_one_frame_are_all_read() {
        let r = frame_requests(r#"{"a":1}{"b":2} {"c":3}"#);
        assert_eq!(r.len(), 3);
        assert!(r.iter().all(Result::is_ok));
        let r = frame_requests(r#"{"a":1}{oops"#);
        assert_eq!(r.len(), 2);
        assert_eq!(r[1].as_ref().unwrap_err().code, ErrorCode::InvalidJson);
        assert_eq!(
            frame_requests("\"text\"")[0].as_ref().unwrap_err().code,
            ErrorCode::InvalidJson
        );
    }
}
