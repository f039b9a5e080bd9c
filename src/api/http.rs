//! The HTTP transport: Janus REST paths, long poll, CORS; and the Admin API over HTTP.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::{json, Value};
use tokio::time::Instant;

use super::admin::handle_admin;
use super::error::{ApiError, ErrorCode};
use super::janus_json;
use super::request::parse_request;
use super::router::{handle_request, RequestContext};
use super::{cors, HTTP_TRANSPORT};
use crate::core::Core;
use crate::ids::SessionId;
use crate::session::Sink;

/// How long a long poll is held before answering `keepalive`.
const LONG_POLL_HOLD: Duration = Duration::from_secs(30);
/// A POST whose answer takes longer than this is released with an empty response.
const POST_DEADLINE: Duration = Duration::from_secs(10);

/// The Janus API router (plus demo pages) for the HTTP port.
pub fn janus_router(core: Arc<Core>) -> Router {
    Router::new().fallback(janus_entry).with_state(core)
}

/// The Admin API router for the admin HTTP port.
pub fn admin_router(core: Arc<Core>) -> Router {
    Router::new().fallback(admin_entry).with_state(core)
}

fn json_response(value: &Value) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        value.to_string(),
    )
        .into_response()
}

/// Path components below `base`, or `None` when the path is elsewhere.
fn components<'a>(path: &'a str, base: &str) -> Option<Vec<&'a str>> {
    let rest = path.strip_prefix(base)?;
    if !(rest.is_empty() || rest.starts_with('/')) {
        return None;
    }
    Some(rest.split('/').filter(|c| !c.is_empty()).collect())
}

fn parse_id(text: &str) -> Option<u64> {
    text.parse().ok()
}

async fn janus_entry(
    State(core): State<Arc<Core>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let config = &core.config.http;
    let mut response = if !cors::origin_allowed(config, &headers) {
        StatusCode::FORBIDDEN.into_response()
    } else if let Some(parts) = components(uri.path(), &config.base_path) {
        janus_http(&core, &method, &parts, &query, &body).await
    } else if uri.path().starts_with(crate::web::voicemail::PREFIX) {
        let dir = core.services.recording.dir();
        crate::web::voicemail::serve(
            &core.storage,
            dir,
            &method,
            uri.path(),
            uri.query(),
            &headers,
        )
        .await
    } else if core.config.web.demos {
        crate::web::demos::serve(&core.config, uri.path()).await
    } else {
        StatusCode::NOT_FOUND.into_response()
    };
    cors::apply(config, &headers, response.headers_mut());
    response
}

async fn janus_http(
    core: &Arc<Core>,
    method: &Method,
    parts: &[&str],
    query: &HashMap<String, String>,
    body: &Bytes,
) -> Response {
    if parts.len() > 3 {
        return StatusCode::NOT_FOUND.into_response();
    }
    if *method == Method::OPTIONS {
        return StatusCode::OK.into_response();
    }
    if parts.len() == 1 && (parts[0] == "info" || parts[0] == "ping") {
        if *method != Method::GET {
            return StatusCode::BAD_REQUEST.into_response();
        }
        let request = json!({ "janus": parts[0], "transaction": random_transaction() });
        return post(core, request.to_string().as_bytes(), None, None).await;
    }
    let ids: Vec<Option<u64>> = parts.iter().map(|p| parse_id(p)).collect();
    if ids.iter().any(Option::is_none) {
        return StatusCode::NOT_FOUND.into_response();
    }
    let session = ids.first().copied().flatten();
    let handle = ids.get(1).copied().flatten();
    match *method {
        Method::POST => post(core, body, session, handle).await,
        Method::GET => match (session, handle) {
            (None, _) => StatusCode::NOT_FOUND.into_response(),
            (Some(s), Some(_)) => {
                let location = format!("{}/{}", core.config.http.base_path, s);
                (StatusCode::FOUND, [(header::LOCATION, location)]).into_response()
            }
            (Some(s), None) => long_poll(core, s, query).await,
        },
        ref other => json_response(
            &ApiError::new(
                ErrorCode::TransportSpecific,
                format!("Unsupported method {other}"),
            )
            .to_reply(0, None),
        ),
    }
}

fn random_transaction() -> String {
    use rand::distributions::{Alphanumeric, DistString};
    Alphanumeric.sample_string(&mut rand::thread_rng(), 12)
}

async fn post(
    core: &Arc<Core>,
    body: &[u8],
    session: Option<u64>,
    handle: Option<u64>,
) -> Response {
    if body.is_empty() {
        return StatusCode::BAD_REQUEST.into_response();
    }
    let text = String::from_utf8_lossy(body);
    let request = match parse_request(&text) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(reason = %e.reason, "malformed HTTP request");
            return json_response(&e.to_reply(0, None));
        }
    };
    let ctx = RequestContext {
        sink: Sink::Queue,
        transport: HTTP_TRANSPORT,
        path_session: session,
        path_handle: handle,
    };
    match tokio::time::timeout(POST_DEADLINE, handle_request(core, request, &ctx)).await {
        Ok(outcome) => {
            if let Some(after) = outcome.after {
                tokio::spawn(after);
            }
            json_response(&outcome.reply)
        }
        Err(_) => StatusCode::OK.into_response(),
    }
}

async fn long_poll(core: &Arc<Core>, session_id: u64, query: &HashMap<String, String>) -> Response {
    if core
        .auth
        .check(
            query.get("apisecret").map(String::as_str),
            query.get("token").map(String::as_str),
        )
        .is_none()
    {
        return StatusCode::FORBIDDEN.into_response();
    }
    let Some(session) = core.sessions.get(SessionId(session_id)) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    // The long poll is the HTTP client's keepalive.
    session.touch(Instant::now());
    let max = query
        .get("maxev")
        .and_then(|m| m.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    let mut events: Vec<Value> = session
        .poll_events(max, LONG_POLL_HOLD)
        .await
        .iter()
        .map(janus_json::event)
        .collect();
    session.touch(Instant::now());
    if events.is_empty() {
        events.push(janus_json::keepalive());
    }
    if max == 1 {
        json_response(&events[0])
    } else {
        json_response(&Value::Array(events))
    }
}

async fn admin_entry(
    State(core): State<Arc<Core>>,
    method: Method,
    uri: Uri,
    body: Bytes,
) -> Response {
    let Some(parts) = components(uri.path(), &core.config.admin.base_path) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if parts.len() > 3 {
        return StatusCode::NOT_FOUND.into_response();
    }
    let request = match (&method, parts.as_slice()) {
        (&Method::OPTIONS, _) => return StatusCode::OK.into_response(),
        (&Method::GET, [name]) if *name == "info" || *name == "ping" => {
            json!({ "janus": name, "transaction": random_transaction() }).to_string()
        }
        (&Method::POST, _) => String::from_utf8_lossy(&body).into_owned(),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    let ids: Vec<Option<u64>> = parts.iter().map(|p| parse_id(p)).collect();
    if method == Method::POST && ids.iter().any(Option::is_none) {
        return StatusCode::NOT_FOUND.into_response();
    }
    let body = match parse_request(&request) {
        Ok(b) => b,
        Err(e) => return json_response(&e.to_reply(0, None)),
    };
    let session = if method == Method::POST {
        ids.first().copied().flatten()
    } else {
        None
    };
    let handle = if method == Method::POST {
        ids.get(1).copied().flatten()
    } else {
        None
    };
    json_response(&handle_admin(&core, body, session, handle).await)
}
