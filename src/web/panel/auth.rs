//! Who is asking: the extractors every API handler takes. [`Viewer`] needs a live session and,
//! on writes (any method but GET/HEAD), the session's CSRF token in `X-CSRF-Token`;
//! [`AdminUser`] also needs the `admin` role.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, Method};
use serde::de::DeserializeOwned;
use tokio::time::Instant;

use super::error::{ErrorCode, PanelError};
use super::session::{cookie_value, PanelSession, CSRF_HEADER};
use super::PanelState;
use crate::auth::secrets_match;
use crate::storage::{Role, StorageError, User};

/// A logged-in user of any role. On a write the CSRF token was checked.
#[derive(Debug, Clone)]
pub struct Viewer {
    /// The user, as the registry has it now.
    pub user: User,
    /// The session (its CSRF token).
    pub session: PanelSession,
    /// The session cookie's value.
    pub session_id: String,
}

/// A logged-in user with the `admin` role.
#[derive(Debug, Clone)]
pub struct AdminUser(pub Viewer);

fn is_write(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

impl FromRequestParts<PanelState> for Viewer {
    type Rejection = PanelError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &PanelState,
    ) -> Result<Self, Self::Rejection> {
        let unauthenticated = || {
            PanelError::new(
                ErrorCode::Unauthenticated,
                "log in first (no valid session)",
            )
        };
        let session_id = parts
            .headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(cookie_value)
            .ok_or_else(unauthenticated)?
            .to_owned();
        let session = state
            .sessions()
            .touch(&session_id, Instant::now())
            .ok_or_else(unauthenticated)?;
        let user = match state.storage().users().get(session.user_id).await {
            Ok(u) => u,
            Err(StorageError::NotFound { .. }) => {
                state.sessions().close(&session_id);
                return Err(unauthenticated());
            }
            Err(e) => return Err(e.into()),
        };
        if is_write(&parts.method) {
            let given = parts
                .headers
                .get(CSRF_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if !secrets_match(given, &session.csrf_token) {
                tracing::warn!(user = %user.username, method = %parts.method,
                    path = %parts.uri.path(), "panel: write refused, missing or wrong CSRF token");
                return Err(PanelError::new(
                    ErrorCode::CsrfFailed,
                    "missing or wrong X-CSRF-Token header",
                ));
            }
        }
        Ok(Viewer {
            user,
            session,
            session_id,
        })
    }
}

impl FromRequestParts<PanelState> for AdminUser {
    type Rejection = PanelError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &PanelState,
    ) -> Result<Self, Self::Rejection> {
        let viewer = Viewer::from_request_parts(parts, state).await?;
        if viewer.user.role != Role::Admin {
            return Err(PanelError::new(
                ErrorCode::Forbidden,
                "this needs the admin role",
            ));
        }
        Ok(AdminUser(viewer))
    }
}

/// A JSON request body whose rejection is the panel's error shape (`invalid_body`).
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = PanelError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(JsonBody(v)),
            Err(e) => Err(PanelError::new(ErrorCode::InvalidBody, e.body_text())),
        }
    }
}
