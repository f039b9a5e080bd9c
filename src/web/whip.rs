//! WHIP ingest (WebRTC-HTTP Ingestion Protocol, RFC 9725): the HTTP face only, served on the
//! WHEP listener. `POST /whip/<stream key or mountpoint id>` with `Authorization: Bearer
//! <stream key>` and an SDP offer (`Content-Type: application/sdp`, §4.2) answers `201 Created`
//! with the SDP answer, a `Location` naming the publish (`/whip/<mountpoint>/<session>`: the
//! key never appears in it) and an `ETag` naming its ICE session. `PATCH` on the location with
//! an `application/trickle-ice-sdpfrag` body (RFC 8840) trickles candidates (§4.3.2: `204`) or,
//! with new `ice-ufrag`/`ice-pwd`, restarts ICE (§4.3.3: `200` with our new credentials and
//! candidates and a new `ETag`); `412` for a stale `If-Match`, `422` for a restart that cannot
//! be done, `400` for a fragment that does not parse, `415` for another body type. `DELETE`
//! ends the publish (§4.2: `200`).
//!
//! Refusals of `POST`: `401` (with `WWW-Authenticate: Bearer`) without a token or with one
//! that is not an enabled stream key of that mountpoint, `404` for an unknown mountpoint,
//! `400` for an offer that is not SDP or has no media the mountpoint takes, `409` when the
//! mountpoint has a publisher already, `415` for another body type, `503` when the gateway
//! cannot take it now. Each refusal is logged by the backend, never with the token.
//!
//! What publishes is up to a [`WhipBackend`] (the streaming plugin). CORS is open (`*`, with
//! `Location`, `ETag` and `Accept-Patch` exposed): a publisher page may be on any site.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use futures::future::BoxFuture;

use super::whep::{IceFragment, TrickleError, TrickleOutcome};
use super::wish::{
    bearer, content_type_is, not_allowed, preflight, text, with_cors, ACCEPT_PATCH, SDPFRAG,
};

/// A publish the backend started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WhipSession {
    /// The mountpoint fed (first part of the `Location`).
    pub mountpoint: u64,
    /// Identifies the publish in its `Location`.
    pub id: String,
    /// The SDP answer.
    pub answer: String,
    /// The entity tag of its ICE session (RFC 9725 §4.3.1), without quotes.
    pub etag: String,
}

/// Why a backend refused a publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WhipError {
    /// No bearer token, or not a valid one for this mountpoint (401).
    Unauthorized,
    /// No such mountpoint (404).
    NotFound,
    /// The offer cannot be used (400), with why.
    BadOffer(String),
    /// The mountpoint has a publisher already (409), with why.
    Busy(String),
    /// The gateway cannot take the publish now (503), with why.
    Unavailable(String),
}

/// What publishes into mountpoints over WHIP.
pub trait WhipBackend: Send + Sync + 'static {
    /// Answers `offer` publishing to `target` (a mountpoint id or a stream key, as in the
    /// URL); `token`: the bearer token, if any.
    fn publish(
        &self,
        target: String,
        offer: String,
        token: Option<String>,
    ) -> BoxFuture<'_, Result<WhipSession, WhipError>>;
    /// Ends publish `session` of `mountpoint`; `false` when there is none.
    fn stop(&self, mountpoint: String, session: String) -> BoxFuture<'_, bool>;
    /// Applies trickled candidates to publish `session` of `mountpoint`, or restarts its ICE
    /// when the fragment brings new credentials (`if_match` as in WHEP).
    fn trickle(
        &self,
        mountpoint: String,
        session: String,
        if_match: Option<String>,
        fragment: IceFragment,
    ) -> BoxFuture<'_, Result<TrickleOutcome, TrickleError>>;
}

/// The WHIP routes (`/whip/...`) over `backend`, without a fallback: merged into the WHEP
/// listener's router, which has one.
pub fn router(backend: Arc<dyn WhipBackend>) -> Router {
    Router::new()
        .route(
            "/whip/{target}",
            post(publish).options(preflight).fallback(not_allowed),
        )
        .route(
            "/whip/{mountpoint}/{session}",
            axum::routing::delete(stop)
                .patch(trickle)
                .options(preflight)
                .fallback(not_allowed),
        )
        .with_state(backend)
}

async fn publish(
    State(backend): State<Arc<dyn WhipBackend>>,
    Path(target): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !content_type_is(&headers, "application/sdp") {
        tracing::info!("WHIP publish refused: body is not application/sdp");
        return text(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "the offer must be sent as application/sdp",
        );
    }
    let Ok(offer) = String::from_utf8(body.to_vec()) else {
        tracing::info!("WHIP publish refused: offer not UTF-8");
        return text(StatusCode::BAD_REQUEST, "the offer is not UTF-8");
    };
    match backend.publish(target, offer, bearer(&headers)).await {
        Ok(session) => with_cors(
            (
                StatusCode::CREATED,
                [
                    (header::CONTENT_TYPE, "application/sdp".to_string()),
                    (
                        header::LOCATION,
                        format!("/whip/{}/{}", session.mountpoint, session.id),
                    ),
                    (header::ETAG, format!("\"{}\"", session.etag)),
                    (ACCEPT_PATCH, SDPFRAG.to_string()),
                ],
                session.answer,
            )
                .into_response(),
        ),
        Err(WhipError::Unauthorized) => {
            let mut r = text(
                StatusCode::UNAUTHORIZED,
                "a valid stream key is needed as the bearer token",
            );
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            r
        }
        Err(WhipError::NotFound) => text(StatusCode::NOT_FOUND, "no such mountpoint"),
        Err(WhipError::BadOffer(why)) => text(StatusCode::BAD_REQUEST, &why),
        Err(WhipError::Busy(why)) => text(StatusCode::CONFLICT, &why),
        Err(WhipError::Unavailable(why)) => text(StatusCode::SERVICE_UNAVAILABLE, &why),
    }
}

async fn stop(
    State(backend): State<Arc<dyn WhipBackend>>,
    Path((mountpoint, session)): Path<(String, String)>,
) -> Response {
    if backend.stop(mountpoint, session).await {
        with_cors(StatusCode::OK.into_response())
    } else {
        tracing::info!("WHIP DELETE of an unknown publish");
        text(StatusCode::NOT_FOUND, "no such publish")
    }
}

/// `PATCH` on a publish: trickled candidates or an ICE restart (RFC 9725 §4.3).
/// `PATCH` on a publish: trickled candidates or an ICE restart (RFC 9725 §4.3).
async fn trickle(
    State(backend): State<Arc<dyn WhipBackend>>,
    Path((mountpoint, session)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    super::wish::patch(&headers, &body, &session, "WHIP", |if_match, fragment| {
        backend.trickle(mountpoint, session.clone(), if_match, fragment)
    })
    .await
    .unwrap_or_else(|e| super::wish::trickle_refused(e, "no such publish", "publish again"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    struct Fake;

    impl WhipBackend for Fake {
        fn publish(
            &self,
            target: String,
            offer: String,
            token: Option<String>,
        ) -> BoxFuture<'_, Result<WhipSession, WhipError>> {
            Box::pin(async move {
                match (target.as_str(), token.as_deref()) {
                    (_, None) => Err(WhipError::Unauthorized),
                    ("1", Some("k")) => Ok(WhipSession {
                        mountpoint: 1,
                        id: "abc".into(),
                        answer: offer.replace("offer", "answer"),
                        etag: "e1".into(),
                    }),
                    ("2", _) => Err(WhipError::Busy("live".into())),
                    ("3", _) => Err(WhipError::BadOffer("no media".into())),
                    _ => Err(WhipError::NotFound),
                }
            })
        }

        fn stop(&self, _mountpoint: String, session: String) -> BoxFuture<'_, bool> {
            Box::pin(async move { session == "abc" })
        }

        fn trickle(
            &self,
            _mountpoint: String,
            session: String,
            _if_match: Option<String>,
            _fragment: IceFragment,
        ) -> BoxFuture<'_, Result<TrickleOutcome, TrickleError>> {
            Box::pin(async move {
                if session == "abc" {
                    Ok(TrickleOutcome::Applied)
                } else {
                    Err(TrickleError::NotFound)
                }
            })
        }
    }

    async fn call(method: &str, uri: &str, ctype: &str, auth: Option<&str>) -> Response {
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::CONTENT_TYPE, ctype);
        if let Some(a) = auth {
            req = req.header(header::AUTHORIZATION, a);
        }
        router(Arc::new(Fake))
            .oneshot(req.body(Body::from("v=0 offer")).unwrap())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn statuses_and_headers() {
        let ok = call("POST", "/whip/1", "application/sdp", Some("Bearer k")).await;
        assert_eq!(ok.status(), StatusCode::CREATED);
        assert_eq!(ok.headers()[header::LOCATION], "/whip/1/abc");
        assert_eq!(ok.headers()[header::ETAG], "\"e1\"");
        assert_eq!(ok.headers()[ACCEPT_PATCH], SDPFRAG);
        assert_eq!(ok.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
        let status = |r: Response| r.status();
        let no_token = call("POST", "/whip/1", "application/sdp", None).await;
        assert_eq!(no_token.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(no_token.headers()[header::WWW_AUTHENTICATE], "Bearer");
        assert_eq!(
            status(call("POST", "/whip/2", "application/sdp", Some("Bearer k")).await),
            StatusCode::CONFLICT
        );
        assert_eq!(
            status(call("POST", "/whip/3", "application/sdp", Some("Bearer k")).await),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            status(call("POST", "/whip/9", "application/sdp", Some("Bearer k")).await),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            status(call("POST", "/whip/1", "text/plain", Some("Bearer k")).await),
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
        assert_eq!(
            status(call("DELETE", "/whip/1/abc", "", None).await),
            StatusCode::OK
        );
        assert_eq!(
            status(call("DELETE", "/whip/1/zzz", "", None).await),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            status(call("PATCH", "/whip/1/abc", SDPFRAG, None).await),
            StatusCode::BAD_REQUEST,
            "'v=0 offer' is not a fragment"
        );
        assert_eq!(
            status(call("PATCH", "/whip/1/abc", "application/sdp", None).await),
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
        assert_eq!(
            status(call("GET", "/whip/1", "", None).await),
            StatusCode::METHOD_NOT_ALLOWED
        );
        assert_eq!(
            status(call("OPTIONS", "/whip/1", "", None).await),
            StatusCode::NO_CONTENT
        );
    }
}
