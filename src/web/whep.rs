//! WHEP playback (WebRTC-HTTP Egress Protocol, draft-ietf-wish-whep, modelled on RFC 9725's
//! WHIP): the HTTP face only. `POST /whep/<mountpoint>` with an SDP offer
//! (`Content-Type: application/sdp`) answers `201 Created` with the SDP answer and a
//! `Location` naming the session; `DELETE` on that location ends it. Trickle (`PATCH`) is not
//! offered (`405`): the answer carries every candidate, and clients that gather before
//! posting (as browsers with `iceGatheringState == "complete"`) need none.
//!
//! What plays is up to a [`WhepBackend`] (the streaming plugin), so this module knows no
//! mountpoint and no PeerConnection. CORS is open (`*`, with `Location` exposed): a WHEP
//! player is a page of any site.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use futures::future::BoxFuture;

/// A session the backend started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WhepSession {
    /// Identifies the session in its `Location` (`/whep/<mountpoint>/<id>`).
    pub id: String,
    /// The SDP answer.
    pub answer: String,
}

/// Why a backend refused to play.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WhepError {
    /// No such mountpoint (404).
    NotFound,
    /// A bearer token is needed, or the one given is wrong (401).
    Unauthorized,
    /// The offer cannot be used (400), with why.
    BadOffer(String),
    /// The mountpoint cannot be played now (503), with why.
    Unavailable(String),
}

/// What plays mountpoints over WHEP.
pub trait WhepBackend: Send + Sync + 'static {
    /// Answers `offer` for `mountpoint` (`token`: the bearer token of the request, if any).
    fn play(
        &self,
        mountpoint: String,
        offer: String,
        token: Option<String>,
    ) -> BoxFuture<'_, Result<WhepSession, WhepError>>;
    /// Ends session `session` of `mountpoint`; `false` when there is none.
    fn stop(&self, mountpoint: String, session: String) -> BoxFuture<'_, bool>;
}

/// The WHEP routes (`/whep/...`) over `backend`.
pub fn router(backend: Arc<dyn WhepBackend>) -> Router {
    Router::new()
        .route(
            "/whep/{mountpoint}",
            post(play).options(preflight).fallback(not_allowed),
        )
        .route(
            "/whep/{mountpoint}/{session}",
            axum::routing::delete(stop)
                .options(preflight)
                .fallback(not_allowed),
        )
        .fallback(|| async { with_cors(StatusCode::NOT_FOUND.into_response()) })
        .with_state(backend)
}

fn with_cors(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("Location"),
    );
    response
}

async fn preflight() -> Response {
    let mut r = with_cors(StatusCode::NO_CONTENT.into_response());
    let h = r.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("POST, DELETE, OPTIONS"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("Content-Type, Authorization"),
    );
    r
}

async fn not_allowed() -> Response {
    let mut r = with_cors(StatusCode::METHOD_NOT_ALLOWED.into_response());
    r.headers_mut().insert(
        header::ALLOW,
        HeaderValue::from_static("POST, DELETE, OPTIONS"),
    );
    r
}

/// The bearer token of `Authorization: Bearer <token>`.
fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_string())
}

fn text(status: StatusCode, message: &str) -> Response {
    with_cors(
        (
            status,
            [(header::CONTENT_TYPE, "text/plain")],
            message.to_string(),
        )
            .into_response(),
    )
}

async fn play(
    State(backend): State<Arc<dyn WhepBackend>>,
    Path(mountpoint): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let sdp_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/sdp"));
    if !sdp_type {
        return text(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "the offer must be sent as application/sdp",
        );
    }
    let Ok(offer) = String::from_utf8(body.to_vec()) else {
        return text(StatusCode::BAD_REQUEST, "the offer is not UTF-8");
    };
    if !offer.starts_with("v=0") {
        return text(StatusCode::BAD_REQUEST, "the body is not an SDP offer");
    }
    match backend
        .play(mountpoint.clone(), offer, bearer(&headers))
        .await
    {
        Ok(session) => {
            let location = format!("/whep/{mountpoint}/{}", session.id);
            with_cors(
                (
                    StatusCode::CREATED,
                    [
                        (header::CONTENT_TYPE, "application/sdp".to_string()),
                        (header::LOCATION, location),
                    ],
                    session.answer,
                )
                    .into_response(),
            )
        }
        Err(WhepError::NotFound) => text(StatusCode::NOT_FOUND, "no such mountpoint"),
        Err(WhepError::Unauthorized) => {
            let mut r = text(StatusCode::UNAUTHORIZED, "a valid bearer token is needed");
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            r
        }
        Err(WhepError::BadOffer(why)) => text(StatusCode::BAD_REQUEST, &why),
        Err(WhepError::Unavailable(why)) => text(StatusCode::SERVICE_UNAVAILABLE, &why),
    }
}

async fn stop(
    State(backend): State<Arc<dyn WhepBackend>>,
    Path((mountpoint, session)): Path<(String, String)>,
) -> Response {
    if backend.stop(mountpoint, session).await {
        with_cors(StatusCode::OK.into_response())
    } else {
        text(StatusCode::NOT_FOUND, "no such session")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    struct Fake;

    impl WhepBackend for Fake {
        fn play(
            &self,
            mountpoint: String,
            offer: String,
            token: Option<String>,
        ) -> BoxFuture<'_, Result<WhepSession, WhepError>> {
            Box::pin(async move {
                match (mountpoint.as_str(), token.as_deref()) {
                    ("1", _) => Ok(WhepSession {
                        id: "abc".into(),
                        answer: offer.replace("offer", "answer"),
                    }),
                    ("2", Some("t")) => Err(WhepError::BadOffer("no video".into())),
                    ("2", _) => Err(WhepError::Unauthorized),
                    _ => Err(WhepError::NotFound),
                }
            })
        }

        fn stop(&self, _mountpoint: String, session: String) -> BoxFuture<'_, bool> {
            Box::pin(async move { session == "abc" })
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
        let ok = call("POST", "/whep/1", "application/sdp", None).await;
        assert_eq!(ok.status(), StatusCode::CREATED);
        assert_eq!(ok.headers()[header::LOCATION], "/whep/1/abc");
        assert_eq!(ok.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
        assert_eq!(
            call("POST", "/whep/1", "text/plain", None).await.status(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
        assert_eq!(
            call("POST", "/whep/9", "application/sdp", None)
                .await
                .status(),
            StatusCode::NOT_FOUND
        );
        let unauthorized = call("POST", "/whep/2", "application/sdp", None).await;
        assert_eq!(unauthorized.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(unauthorized.headers()[header::WWW_AUTHENTICATE], "Bearer");
        assert_eq!(
            call("POST", "/whep/2", "application/sdp", Some("Bearer t"))
                .await
                .status(),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            call(
                "PATCH",
                "/whep/1/abc",
                "application/trickle-ice-sdpfrag",
                None
            )
            .await
            .status(),
            StatusCode::METHOD_NOT_ALLOWED
        );
        assert_eq!(
            call("DELETE", "/whep/1/abc", "", None).await.status(),
            StatusCode::OK
        );
        assert_eq!(
            call("DELETE", "/whep/1/zzz", "", None).await.status(),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            call("OPTIONS", "/whep/1", "", None).await.status(),
            StatusCode::NO_CONTENT
        );
    }
}
