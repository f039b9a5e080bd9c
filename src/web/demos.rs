//! Demo pages on the HTTP port: `/` lists them, `/demos/echotest.html` runs the echo test
//! with janus.js and webrtc-adapter, served from the files `[web]` names.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::config::WebConfig;

const INDEX: &str = include_str!("pages/index.html");
const ECHOTEST: &str = include_str!("pages/echotest.html");

fn html(body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response()
}

async fn script(path: &str) -> Response {
    match tokio::fs::read(path).await {
        Ok(bytes) => ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], bytes).into_response(),
        Err(e) => (
            StatusCode::NOT_FOUND,
            format!("'{path}' not found ({e}): run `npm ci --prefix tests/e2e`, or point [web] janus_js / adapter_js at copies."),
        )
            .into_response(),
    }
}

/// Serves a demo path: the index at `/` and `/demos/`, the echo test page, and
/// `/demos/janus.js` / `/demos/adapter.js` read from the `[web]` paths on each request.
/// Anything else is 404, and so is a missing script, with a body saying how to get it.
pub async fn serve(config: &WebConfig, path: &str) -> Response {
    match path {
        "/" | "/demos" | "/demos/" | "/demos/index.html" => html(INDEX),
        "/demos/echotest.html" => html(ECHOTEST),
        "/demos/janus.js" => script(&config.janus_js).await,
        "/demos/adapter.js" => script(&config.adapter_js).await,
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}
