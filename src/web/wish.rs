//! HTTP plumbing shared by WHIP (RFC 9725) and WHEP, the two WISH protocols: CORS headers,
//! plain-text errors, bearer tokens, content types, and the `PATCH` exchange that carries
//! trickled ICE candidates or an ICE restart (RFC 9725 §4.3, fragments per RFC 8840 §9).

use std::future::Future;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::whep::{IceFragment, TrickleError, TrickleOutcome};

/// The body type of trickle `PATCH` requests (RFC 8840 §9).
pub const SDPFRAG: &str = "application/trickle-ice-sdpfrag";

/// `Accept-Patch` (RFC 5789 §3.1): the body types `PATCH` takes.
pub const ACCEPT_PATCH: header::HeaderName = header::HeaderName::from_static("accept-patch");

/// `response` with the CORS headers a browser page on another origin needs.
pub fn with_cors(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("Location, ETag, Accept-Patch"),
    );
    response
}

/// `OPTIONS`: the CORS preflight answer.
pub async fn preflight() -> Response {
    let mut r = with_cors(StatusCode::NO_CONTENT.into_response());
    let h = r.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("POST, PATCH, DELETE, OPTIONS"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("Content-Type, Authorization, If-Match"),
    );
    r
}

/// Any other method: 405 with `Allow`.
pub async fn not_allowed() -> Response {
    let mut r = with_cors(StatusCode::METHOD_NOT_ALLOWED.into_response());
    r.headers_mut().insert(
        header::ALLOW,
        HeaderValue::from_static("POST, PATCH, DELETE, OPTIONS"),
    );
    r
}

/// The bearer token of `Authorization: Bearer <token>`.
pub fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_string())
}

/// Whether the request's `Content-Type` is `wanted` (parameters ignored, case-insensitive).
pub fn content_type_is(headers: &HeaderMap, wanted: &str) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(wanted))
}

/// A `text/plain` answer with `status`.
pub fn text(status: StatusCode, message: &str) -> Response {
    with_cors(
        (
            status,
            [(header::CONTENT_TYPE, "text/plain")],
            message.to_string(),
        )
            .into_response(),
    )
}

/// A `PATCH` on session `session` of `protocol` ("WHIP"/"WHEP"): checks the body type (415 with
/// `Accept-Patch`), parses the fragment (400, logged), reads `If-Match` (weak tags and quotes
/// removed) and hands both to `apply`. `Ok`: 204 for trickled candidates, 200 with the
/// gateway's fragment and new ETag for an ICE restart; `Err`: what `apply` refused, for
/// [`trickle_refused`].
pub async fn patch<F>(
    headers: &HeaderMap,
    body: &[u8],
    session: &str,
    protocol: &str,
    apply: impl FnOnce(Option<String>, IceFragment) -> F,
) -> Result<Response, TrickleError>
where
    F: Future<Output = Result<TrickleOutcome, TrickleError>>,
{
    if !content_type_is(headers, SDPFRAG) {
        let mut r = text(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "trickle needs an application/trickle-ice-sdpfrag body",
        );
        r.headers_mut()
            .insert(ACCEPT_PATCH, HeaderValue::from_static(SDPFRAG));
        return Ok(r);
    }
    let fragment = match std::str::from_utf8(body)
        .map_err(|_| "the fragment is not UTF-8".to_string())
        .and_then(IceFragment::parse)
    {
        Ok(f) => f,
        Err(why) => {
            tracing::info!(%session, error = %why, "{protocol} trickle refused");
            return Ok(text(StatusCode::BAD_REQUEST, &why));
        }
    };
    let if_match = headers
        .get(header::IF_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.trim()
                .trim_start_matches("W/")
                .trim_matches('"')
                .to_string()
        });
    Ok(match apply(if_match, fragment).await? {
        TrickleOutcome::Applied => with_cors(StatusCode::NO_CONTENT.into_response()),
        TrickleOutcome::Restarted { fragment, etag } => with_cors(
            (
                StatusCode::OK,
                [
                    (header::CONTENT_TYPE, SDPFRAG.to_string()),
                    (header::ETAG, format!("\"{etag}\"")),
                ],
                fragment,
            )
                .into_response(),
        ),
    })
}

/// The answer to a refused `PATCH`: 404 (`not_found` says what is missing), 412 for a stale
/// `If-Match`, 422 when a restart cannot be done (`restart_instead` says what to do instead)
/// or the fragment cannot be used.
pub fn trickle_refused(e: TrickleError, not_found: &str, restart_instead: &str) -> Response {
    match e {
        TrickleError::NotFound => text(StatusCode::NOT_FOUND, not_found),
        TrickleError::StaleEtag => text(
            StatusCode::PRECONDITION_FAILED,
            "If-Match names another ICE session",
        ),
        TrickleError::RestartUnsupported => text(
            StatusCode::UNPROCESSABLE_ENTITY,
            &format!("ICE restarts are not supported: {restart_instead}"),
        ),
        TrickleError::Unusable(why) => text(StatusCode::UNPROCESSABLE_ENTITY, &why),
    }
}
