//! The OpenAPI 3.1 document, generated from the handlers' `#[utoipa::path]` attributes and
//! the request/response types by the router itself (`utoipa_axum`), so a route cannot be
//! served without being documented.

use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::error::{ErrorBody, ErrorCode};
use super::session::COOKIE_NAME;

/// The document's fixed part; paths are added as routes are registered.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Bifrons admin panel API",
        description = "Trunks, accounts, stream keys, egress targets, recordings, users and the live view of a \
            Bifrons gateway. Log in with `POST /panel/api/v1/login`; the session is a cookie \
            and every write carries the session's CSRF token in `X-CSRF-Token`. Errors are \
            `{\"error\": {\"code\", \"message\", \"field\"?}}` with a stable `code`."
    ),
    components(schemas(ErrorBody, ErrorCode)),
    modifiers(&SecuritySchemes),
    tags(
        (name = "session", description = "Log in and out"),
        (name = "users", description = "Panel users (admin only)"),
        (name = "trunks", description = "SIP trunks"),
        (name = "accounts", description = "SIP accounts"),
        (name = "stream keys", description = "RTMP stream keys"),
        (name = "egress", description = "RTMP egress targets (restreaming destinations)"),
        (name = "recordings", description = "Recordings"),
        (name = "live", description = "Live sessions, registrations and publishers"),
    )
)]
pub struct ApiDoc;

/// Declares the `session` cookie and the `csrf` header schemes the paths refer to.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                COOKIE_NAME,
                "Session cookie set by POST /login (HttpOnly, SameSite=Strict)",
            ))),
        );
        components.add_security_scheme(
            "csrf",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-CSRF-Token",
                "The csrf_token of the session, required on every write",
            ))),
        );
    }
}
