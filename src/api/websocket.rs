//! The WebSocket transport (`janus-protocol`) and the Admin API over WebSocket
//! (`janus-admin-protocol`).

use std::sync::Arc;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use axum::routing::any;
use axum::Router;
use futures::{SinkExt, StreamExt};
use serde_json::{Map, Value};
use tokio::sync::mpsc;

use super::admin::handle_admin;
use super::error::{ApiError, ErrorCode};
use super::router::{handle_request, RequestContext};
use super::WEBSOCKET_TRANSPORT;
use crate::core::Core;
use crate::session::Sink;

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
        .on_upgrade(move |socket| serve(core, socket, false))
}

async fn admin_upgrade(State(core): State<Arc<Core>>, ws: WebSocketUpgrade) -> Response {
    ws.protocols(["janus-admin-protocol"])
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
    let (tx, mut rx) = mpsc::unbounded_channel::<Value>();
    let writer = tokio::spawn(async move {
        while let Some(message) = rx.recv().await {
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
            tx: tx.clone(),
        },
        transport: WEBSOCKET_TRANSPORT,
        path_session: None,
        path_handle: None,
    };
    while let Some(Ok(frame)) = receiver.next().await {
        let text = match frame {
            Message::Text(t) => t.to_string(),
            Message::Binary(b) => String::from_utf8_lossy(&b).into_owned(),
            Message::Close(_) => break,
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
        core.connection_closed(connection);
    }
    writer.abort();
    tracing::debug!(connection, "WebSocket closed");
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
