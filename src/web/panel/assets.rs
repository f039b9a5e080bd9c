//! The pages: `web-admin/` compiled into the binary (also in debug builds, so a test runs
//! what ships), served at `/panel/` with a strict Content-Security-Policy: every script,
//! style and medium comes from the gateway itself.

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "web-admin/"]
#[exclude = "*.md"]
struct Pages;

/// Sent with every page: nothing from elsewhere, no framing, no referrer.
const CSP: &str = "default-src 'self'; img-src 'self' data:; media-src 'self'; \
    style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; \
    base-uri 'none'; form-action 'self'";

fn mime(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, e)| e) {
        Some("html") => "text/html; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    }
}

fn serve(path: &str) -> Response {
    match Pages::get(path) {
        Some(file) => (
            [
                (header::CONTENT_TYPE, mime(path)),
                (header::CONTENT_SECURITY_POLICY, CSP),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
                (header::X_FRAME_OPTIONS, "DENY"),
                (header::REFERRER_POLICY, "no-referrer"),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            file.data,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such page").into_response(),
    }
}

/// `/panel` → `/panel/`, so relative links resolve.
pub async fn redirect_to_index() -> Redirect {
    Redirect::permanent("/panel/")
}

/// `/panel/`: the single page.
pub async fn index() -> Response {
    serve("index.html")
}

/// `/panel/{file}`: a script, style sheet or image.
pub async fn asset(Path(path): Path<String>) -> Response {
    serve(&path)
}

/// Names of the embedded files (for tests and the start-up banner).
pub fn files() -> Vec<String> {
    Pages::iter().map(|f| f.into_owned()).collect()
}
