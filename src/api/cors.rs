//! CORS as Janus does it: permissive by default, one origin (with credentials) when configured.

use axum::http::{header, HeaderMap, HeaderValue};

use crate::config::HttpConfig;

/// Adds the CORS headers answering `request` to `response`: `Allow-Origin: *` when no
/// `allow_origin` is configured, else that origin with `Allow-Credentials: true` and
/// `Vary: Origin`; a preflight may be cached for 86400 s (one day), and the requested method
/// and headers are echoed back as allowed. Meant for every response, errors included, so that
/// browsers let the page read them.
pub fn apply(config: &HttpConfig, request: &HeaderMap, response: &mut HeaderMap) {
    if config.allow_origin.is_empty() {
        response.insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        );
    } else if let Ok(origin) = HeaderValue::from_str(&config.allow_origin) {
        response.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        response.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
        response.insert(header::VARY, HeaderValue::from_static("Origin"));
    }
    response.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("86400"),
    );
    if let Some(method) = request.get(header::ACCESS_CONTROL_REQUEST_METHOD) {
        response.insert(header::ACCESS_CONTROL_ALLOW_METHODS, method.clone());
    }
    if let Some(headers) = request.get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
        response.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, headers.clone());
    }
}

/// With `enforce_cors`, whether the request's `Origin` starts with the configured
/// `allow_origin` (a request without `Origin` is refused); always true otherwise. The caller
/// answers 403 when it is false.
pub fn origin_allowed(config: &HttpConfig, request: &HeaderMap) -> bool {
    if !config.enforce_cors {
        return true;
    }
    request
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
        .map(|o| o.starts_with(&config.allow_origin))
        .unwrap_or(false)
}
