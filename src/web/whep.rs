//! WHEP playback (WebRTC-HTTP Egress Protocol, draft-ietf-wish-whep, modelled on RFC 9725's
//! WHIP): the HTTP face only. `POST /whep/<mountpoint>` with an SDP offer
//! (`Content-Type: application/sdp`) answers `201 Created` with the SDP answer and a
//! `Location` naming the session and an `ETag` naming its ICE session; `DELETE` on that
//! location ends it. `PATCH` on it with an `application/trickle-ice-sdpfrag` body (RFC 8840
//! fragment) trickles the client's candidates (RFC 9725 §4.3.2): `204` once applied, `412`
//! when `If-Match` names another ICE session; a fragment with new `ice-ufrag`/`ice-pwd` is an
//! ICE restart (§4.3.3): `200` with the session's new credentials and candidates as a fragment
//! and a new `ETag` (`422` when the backend cannot restart or the restart fails); `400` for a
//! fragment that does not parse, `415` for another body type, `404` for an unknown session;
//! `PATCH` on the endpoint itself is `405`. The answer still carries every gateway candidate, so clients that gather
//! before posting need no `PATCH` at all.
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

use super::wish::{bearer, not_allowed, preflight, text, with_cors, ACCEPT_PATCH, SDPFRAG};

/// A session the backend started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WhepSession {
    /// Identifies the session in its `Location` (`/whep/<mountpoint>/<id>`).
    pub id: String,
    /// The SDP answer.
    pub answer: String,
    /// The entity tag of its ICE session (RFC 9725 §4.3.1), without quotes.
    pub etag: String,
}

/// An SDP fragment of trickled ICE (RFC 8840 §9, `application/trickle-ice-sdpfrag`): the
/// ICE credentials and the candidates of the media sections it names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IceFragment {
    /// `a=ice-ufrag`, when given (session or media level).
    pub ufrag: Option<String>,
    /// `a=ice-pwd`, when given.
    pub pwd: Option<String>,
    /// Each `a=candidate` value (without `a=`) with the `a=mid` of its media section.
    pub candidates: Vec<(Option<String>, String)>,
    /// Whether `a=end-of-candidates` was present.
    pub end_of_candidates: bool,
}

/// Longest fragment accepted, in bytes.
pub const MAX_FRAGMENT_LEN: usize = 16 * 1024;

impl IceFragment {
    /// Parses a fragment: lines `a=ice-ufrag:`, `a=ice-pwd:`, `a=ice-options:`, `m=`, `a=mid:`,
    /// `a=candidate:` and `a=end-of-candidates` (CRLF or LF). Errors name the first line that is
    /// none of them, an empty candidate, or a fragment over [`MAX_FRAGMENT_LEN`].
    pub fn parse(text: &str) -> Result<IceFragment, String> {
        if text.len() > MAX_FRAGMENT_LEN {
            return Err(format!("fragment over {MAX_FRAGMENT_LEN} bytes"));
        }
        let mut fragment = IceFragment::default();
        let mut mid: Option<String> = None;
        for line in text.lines().map(str::trim_end).filter(|l| !l.is_empty()) {
            if let Some(v) = line.strip_prefix("a=ice-ufrag:") {
                fragment.ufrag = Some(ice_chars("ice-ufrag", v)?);
            } else if let Some(v) = line.strip_prefix("a=ice-pwd:") {
                fragment.pwd = Some(ice_chars("ice-pwd", v)?);
            } else if let Some(v) = line.strip_prefix("a=mid:") {
                mid = Some(v.trim().to_string());
            } else if line.starts_with("a=candidate:") {
                let value = &line[2..];
                if value.split_whitespace().count() < 8 {
                    return Err(format!("candidate too short: {line}"));
                }
                fragment.candidates.push((mid.clone(), value.to_string()));
            } else if line == "a=end-of-candidates" {
                fragment.end_of_candidates = true;
            } else if line.starts_with("m=") || line.starts_with("a=ice-options:") {
                // The section a candidate belongs to comes from its `a=mid`.
            } else {
                let shown: String = line.chars().take(60).collect();
                return Err(format!("unexpected line in the fragment: {shown}"));
            }
        }
        Ok(fragment)
    }
}

/// An `ice-ufrag`/`ice-pwd` value: `ice-char` = ALPHA / DIGIT / "+" / "/" (RFC 8839 §5.4).
fn ice_chars(what: &str, v: &str) -> Result<String, String> {
    let v = v.trim();
    if v.is_empty()
        || v.len() > 256
        || !v
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
    {
        return Err(format!("invalid {what}"));
    }
    Ok(v.to_string())
}

/// What a trickle `PATCH` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrickleOutcome {
    /// The candidates were added (204).
    Applied,
    /// The fragment asked for an ICE restart, which was done (200): `fragment` is the
    /// session's side (new `ice-ufrag`/`ice-pwd`, candidates), `etag` the new ICE session's tag.
    Restarted {
        /// RFC 8840 fragment of the session's new ICE credentials and candidates.
        fragment: String,
        /// The new entity tag, without quotes.
        etag: String,
    },
}

/// Why a trickle `PATCH` was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrickleError {
    /// No such session (404).
    NotFound,
    /// `If-Match` names another ICE session (412).
    StaleEtag,
    /// The fragment asks for an ICE restart, which this backend does not support (422).
    RestartUnsupported,
    /// A candidate could not be applied (422), with why.
    Unusable(String),
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
    /// Applies trickled candidates to session `session` of `mountpoint`, or restarts its ICE
    /// when the fragment brings new credentials. `if_match`: the entity tag the client named
    /// (`None` without `If-Match`, `Some("*")` for any).
    fn trickle(
        &self,
        mountpoint: String,
        session: String,
        if_match: Option<String>,
        fragment: IceFragment,
    ) -> BoxFuture<'_, Result<TrickleOutcome, TrickleError>>;
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
                .patch(trickle)
                .options(preflight)
                .fallback(not_allowed),
        )
        .fallback(|| async { with_cors(StatusCode::NOT_FOUND.into_response()) })
        .with_state(backend)
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
                        (header::ETAG, format!("\"{}\"", session.etag)),
                        (ACCEPT_PATCH, SDPFRAG.to_string()),
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

/// `PATCH` on a session: trickled candidates (RFC 9725 §4.3).
async fn trickle(
    State(backend): State<Arc<dyn WhepBackend>>,
    Path((mountpoint, session)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    super::wish::patch(&headers, &body, &session, "WHEP", |if_match, fragment| {
        backend.trickle(mountpoint, session.clone(), if_match, fragment)
    })
    .await
    .unwrap_or_else(|e| super::wish::trickle_refused(e, "no such session", "start a new session"))
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
                        etag: "e1".into(),
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

        fn trickle(
            &self,
            _mountpoint: String,
            session: String,
            if_match: Option<String>,
            fragment: IceFragment,
        ) -> BoxFuture<'_, Result<TrickleOutcome, TrickleError>> {
            Box::pin(async move {
                if session != "abc" {
                    return Err(TrickleError::NotFound);
                }
                if if_match.is_some_and(|e| e != "e1" && e != "*") {
                    return Err(TrickleError::StaleEtag);
                }
                match fragment.ufrag.as_deref() {
                    Some("new") => Ok(TrickleOutcome::Restarted {
                        fragment: "a=ice-ufrag:ours\r\n".into(),
                        etag: "e2".into(),
                    }),
                    Some(u) if u != "old" => Err(TrickleError::RestartUnsupported),
                    _ => Ok(TrickleOutcome::Applied),
                }
            })
        }
    }

    async fn patch(uri: &str, ctype: &str, if_match: Option<&str>, body: &str) -> StatusCode {
        let mut req = Request::builder()
            .method("PATCH")
            .uri(uri)
            .header(header::CONTENT_TYPE, ctype);
        if let Some(m) = if_match {
            req = req.header(header::IF_MATCH, m);
        }
        router(Arc::new(Fake))
            .oneshot(req.body(Body::from(body.to_string())).unwrap())
            .await
            .unwrap()
            .status()
    }

    const FRAG: &str = "a=ice-ufrag:old\r\na=ice-pwd:pwdpwdpwdpwdpwdpwdpwdpwd\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\na=candidate:1 1 udp 2122260223 127.0.0.1 51000 typ host\r\na=end-of-candidates\r\n";

    #[tokio::test]
    async fn trickle_statuses() {
        let uri = "/whep/1/abc";
        assert_eq!(
            patch(uri, SDPFRAG, Some("\"e1\""), FRAG).await,
            StatusCode::NO_CONTENT
        );
        assert_eq!(
            patch(uri, SDPFRAG, None, FRAG).await,
            StatusCode::NO_CONTENT
        );
        assert_eq!(
            patch(uri, SDPFRAG, Some("\"zz\""), FRAG).await,
            StatusCode::PRECONDITION_FAILED
        );
        assert_eq!(
            patch(uri, SDPFRAG, Some("*"), &FRAG.replace("old", "new")).await,
            StatusCode::OK
        );
        assert_eq!(
            patch(uri, SDPFRAG, Some("*"), &FRAG.replace("old", "other")).await,
            StatusCode::UNPROCESSABLE_ENTITY
        );
        assert_eq!(
            patch(uri, "text/plain", None, FRAG).await,
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
        assert_eq!(
            patch(uri, SDPFRAG, None, "hello").await,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            patch("/whep/1/zzz", SDPFRAG, None, FRAG).await,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            patch("/whep/1", SDPFRAG, None, FRAG).await,
            StatusCode::METHOD_NOT_ALLOWED
        );
    }

    #[test]
    fn fragments_parse() {
        let f = IceFragment::parse(FRAG).unwrap();
        assert_eq!(f.ufrag.as_deref(), Some("old"));
        assert_eq!(f.candidates.len(), 1);
        assert_eq!(f.candidates[0].0.as_deref(), Some("0"));
        assert!(f.candidates[0].1.starts_with("candidate:1 1 udp"));
        assert!(f.end_of_candidates);
        assert!(IceFragment::parse("a=candidate:1 1 udp\r\n").is_err());
        assert!(IceFragment::parse("a=ice-ufrag:bad ufrag\r\n").is_err());
        assert!(IceFragment::parse("v=0\r\n").is_err());
        assert_eq!(IceFragment::parse("").unwrap(), IceFragment::default());
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(text in "\\PC{0,400}") {
            let _ = IceFragment::parse(&text);
        }

        #[test]
        fn candidates_round_trip(
            mid in "[a-z0-9]{1,4}",
            port in 1u16..,
            ufrag in "[A-Za-z0-9+/]{4,32}",
        ) {
            let line = format!("candidate:1 1 udp 2122260223 127.0.0.1 {port} typ host");
            let text = format!("a=ice-ufrag:{ufrag}\na=mid:{mid}\na={line}\n");
            let f = IceFragment::parse(&text).unwrap();
            proptest::prop_assert_eq!(f.ufrag, Some(ufrag));
            proptest::prop_assert_eq!(f.candidates, vec![(Some(mid), line)]);
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
        assert_eq!(ok.headers()[header::ETAG], "\"e1\"");
        assert_eq!(ok.headers()[ACCEPT_PATCH], SDPFRAG);
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
