//! The panel API's one error shape: `{"error": {"code", "message", "field"?}}` with an HTTP
//! status. `code` is stable (clients branch on it); `message` is for people and may change.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::storage::StorageError;

/// Stable error codes of the panel API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// 401: no valid session cookie (never logged in, logged out, expired or user deleted).
    Unauthenticated,
    /// 401: wrong username or password (the two are not told apart).
    InvalidCredentials,
    /// 429: too many failed logins for this username; retry after `Retry-After` seconds.
    LockedOut,
    /// 403: the user's role may not do this (viewers cannot write; users are admin only).
    Forbidden,
    /// 403: a write without the session's CSRF token in `X-CSRF-Token`.
    CsrfFailed,
    /// 400: the body is not the JSON this route takes.
    InvalidBody,
    /// 400: a field's value was refused (`field` names it).
    InvalidInput,
    /// 404: no such row, file or route.
    NotFound,
    /// 409: the name, username, extension or key is taken.
    AlreadyExists,
    /// 409: the row is still used by others (a trunk accounts use).
    InUse,
    /// 409: the change would leave no admin user.
    LastAdmin,
    /// 416: the `Range` header asks for bytes past the end of the file.
    RangeNotSatisfiable,
    /// 500: the server failed; the log says why.
    Internal,
    /// 503: the service this asks for does not run in this gateway (e.g. "test now" with the
    /// SIP plugin disabled).
    Unavailable,
    /// 422: a well-formed value of the wrong kind (`field` names it), e.g. an egress URL that
    /// is not `rtmp://` or `rtmps://`.
    Unprocessable,
}

/// The JSON body of every error answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// Inside [`ErrorBody`].
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable code.
    pub code: ErrorCode,
    /// Human-readable explanation.
    pub message: String,
    /// The offending input field, for `invalid_input`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// An error answer of the panel API.
#[derive(Debug)]
pub struct PanelError {
    status: StatusCode,
    detail: ErrorDetail,
    retry_after: Option<u64>,
}

/// Result of panel handlers.
pub type PanelResult<T> = Result<T, PanelError>;

impl PanelError {
    /// An error with `code`'s status and `message`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        let status = match code {
            ErrorCode::Unauthenticated | ErrorCode::InvalidCredentials => StatusCode::UNAUTHORIZED,
            ErrorCode::LockedOut => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::Forbidden | ErrorCode::CsrfFailed => StatusCode::FORBIDDEN,
            ErrorCode::InvalidBody | ErrorCode::InvalidInput => StatusCode::BAD_REQUEST,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::AlreadyExists | ErrorCode::InUse | ErrorCode::LastAdmin => {
                StatusCode::CONFLICT
            }
            ErrorCode::RangeNotSatisfiable => StatusCode::RANGE_NOT_SATISFIABLE,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Unprocessable => StatusCode::UNPROCESSABLE_ENTITY,
        };
        PanelError {
            status,
            detail: ErrorDetail {
                code,
                message: message.into(),
                field: None,
            },
            retry_after: None,
        }
    }

    /// `invalid_input` naming `field`.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        let mut e = PanelError::new(ErrorCode::InvalidInput, message);
        e.detail.field = Some(field.to_owned());
        e
    }

    /// Names the offending input field.
    pub fn set_field(&mut self, field: &str) {
        self.detail.field = Some(field.to_owned());
    }

    /// `not_found` for `what`.
    pub fn not_found(what: &str) -> Self {
        PanelError::new(ErrorCode::NotFound, format!("{what} not found"))
    }

    /// `internal`, after logging `context` and the cause (never user input).
    pub fn internal(context: &str, cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "panel: {context}");
        PanelError::new(
            ErrorCode::Internal,
            format!("{context} failed; see the server log"),
        )
    }

    /// Adds a `Retry-After` header (seconds).
    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// The stable code.
    pub fn code(&self) -> ErrorCode {
        self.detail.code
    }
}

impl From<StorageError> for PanelError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::AlreadyExists { entity } => {
                PanelError::new(ErrorCode::AlreadyExists, format!("{entity} already exists"))
            }
            StorageError::NotFound { entity } => PanelError::not_found(entity),
            StorageError::InUse { entity } => {
                PanelError::new(ErrorCode::InUse, format!("{entity} is still in use"))
            }
            StorageError::Invalid { field, reason } => {
                PanelError::invalid(field, format!("invalid {field}: {reason}"))
            }
            other => PanelError::internal("registry access", other),
        }
    }
}

impl IntoResponse for PanelError {
    fn into_response(self) -> Response {
        let body = ErrorBody { error: self.detail };
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(s) = self.retry_after {
            if let Ok(v) = HeaderValue::from_str(&s.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        response
    }
}
