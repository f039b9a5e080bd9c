//! `POST /login`, `POST /logout`, `GET /me`: opening and closing panel sessions.

use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use utoipa::ToSchema;

use super::auth::{JsonBody, Viewer};
use super::error::{ErrorBody, ErrorCode, PanelError, PanelResult};
use super::session::{clearing_cookie, session_cookie};
use super::users::UserView;
use super::PanelState;

/// Extra wait after each failed login, on top of the argon2 check, so guessing is slow even
/// before the lock-out starts.
const FAILURE_DELAY: Duration = Duration::from_millis(250);

/// `POST /login` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// Username of a registry user (`bifrons user add`).
    pub username: String,
    /// Its password.
    pub password: String,
}

/// Who is logged in, and the token to send in `X-CSRF-Token` on every write.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionInfo {
    /// The user.
    pub user: UserView,
    /// CSRF token of this session.
    pub csrf_token: String,
}

/// Whether the cookie gets `Secure`: always when configured, else when a TLS reverse proxy
/// says the browser spoke HTTPS.
pub(super) fn secure_request(state: &PanelState, headers: &HeaderMap) -> bool {
    state.config().secure_cookie
        || headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|p| p.eq_ignore_ascii_case("https"))
}

/// Logs in: sets the session cookie and returns the CSRF token.
#[utoipa::path(post, path = "/login", tag = "session", request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in; `Set-Cookie` carries the session", body = SessionInfo),
        (status = 400, description = "Not a login body", body = ErrorBody),
        (status = 401, description = "Wrong username or password (`invalid_credentials`)", body = ErrorBody),
        (status = 429, description = "Too many failures for this username (`locked_out`, `Retry-After`)", body = ErrorBody),
    ))]
pub async fn login(
    State(state): State<PanelState>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<LoginRequest>,
) -> PanelResult<Response> {
    let username = body.username.trim();
    if let Some(wait) = state.guard().locked_for(username, Instant::now()) {
        tracing::warn!(username = %username, retry_after_s = wait, "panel: login refused, username locked");
        return Err(PanelError::new(
            ErrorCode::LockedOut,
            format!("too many failed logins; try again in {wait} s"),
        )
        .retry_after(wait));
    }
    let user = state
        .storage()
        .users()
        .authenticate(username, &body.password)
        .await?;
    let Some(user) = user else {
        let outcome = state.guard().failed(username, Instant::now());
        if outcome.locked {
            tracing::warn!(username = %username, failures = outcome.count,
                lockout_s = state.config().lockout_seconds, "panel: username locked after failed logins");
        } else {
            tracing::warn!(username = %username, failures = outcome.count, "panel: failed login");
        }
        tokio::time::sleep(FAILURE_DELAY).await;
        return Err(PanelError::new(
            ErrorCode::InvalidCredentials,
            "wrong username or password",
        ));
    };
    state.guard().succeeded(username);
    let (id, session) = state.sessions().open(user.id, Instant::now());
    tracing::info!(username = %user.username, role = %user.role, "panel: logged in");
    let cookie = session_cookie(&id, secure_request(&state, &headers));
    let info = SessionInfo {
        user: UserView::from(user),
        csrf_token: session.csrf_token,
    };
    Ok(([(header::SET_COOKIE, cookie)], axum::Json(info)).into_response())
}

/// Logs out: ends the session and clears the cookie.
#[utoipa::path(post, path = "/logout", tag = "session",
    responses(
        (status = 204, description = "Logged out"),
        (status = 401, description = "No session", body = ErrorBody),
        (status = 403, description = "No CSRF token", body = ErrorBody),
    ),
    security(("session" = [], "csrf" = [])))]
pub async fn logout(
    State(state): State<PanelState>,
    headers: HeaderMap,
    viewer: Viewer,
) -> Response {
    state.sessions().close(&viewer.session_id);
    tracing::info!(username = %viewer.user.username, "panel: logged out");
    let cookie = clearing_cookie(secure_request(&state, &headers));
    (StatusCode::NO_CONTENT, [(header::SET_COOKIE, cookie)]).into_response()
}

/// The logged-in user and the session's CSRF token (what a reloaded page needs).
#[utoipa::path(get, path = "/me", tag = "session",
    responses(
        (status = 200, body = SessionInfo),
        (status = 401, description = "No session", body = ErrorBody),
    ),
    security(("session" = [])))]
pub async fn me(viewer: Viewer) -> axum::Json<SessionInfo> {
    axum::Json(SessionInfo {
        user: UserView::from(viewer.user),
        csrf_token: viewer.session.csrf_token,
    })
}
