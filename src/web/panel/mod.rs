//! The web admin panel on the admin HTTP listener: pages at `/panel/` (from `web-admin/`,
//! compiled in), a REST API under `/panel/api/v1/` and its OpenAPI document at
//! `/panel/api/openapi.json`.
//!
//! Users are the registry's admin users (argon2, `bifrons user add`); roles `admin` (all) and
//! `viewer` (read only). One file per resource: [`login`], [`users`], [`trunks`],
//! [`accounts`], [`stream_keys`], [`egress`], [`recordings`], [`live`]; [`auth`] holds the
//! extractors that enforce sessions, CSRF and roles, [`error`] the one error shape;
//! [`trunk_check`] is what the trunk pages ask of the SIP service.

pub mod accounts;
pub mod assets;
pub mod auth;
pub mod egress;
pub mod egress_control;
pub mod error;
pub mod live;
pub mod lockout;
pub mod login;
pub mod openapi;
pub mod range;
pub mod recordings;
pub mod session;
pub mod status;
pub mod stream_keys;
pub mod trunk_check;
pub mod trunks;
pub mod users;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use tokio_util::sync::CancellationToken;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::config::PanelConfig;
use crate::storage::Storage;
use error::{ErrorCode, PanelError};
use live::RateTracker;
use lockout::LoginGuard;
use session::SessionStore;
use status::{SessionSource, StatusBoard};

/// Where the REST API lives.
pub const API_BASE: &str = "/panel/api/v1";

/// What the panel needs from the gateway.
pub struct PanelContext {
    /// The registry.
    pub storage: Storage,
    /// `[recordings] dir`: downloads are confined to it.
    pub recordings_dir: PathBuf,
    /// `[panel]`.
    pub config: PanelConfig,
    /// The Janus sessions, for the live view.
    pub sessions: Arc<dyn SessionSource>,
    /// SIP registrations and publishers, fed by the services.
    pub board: StatusBoard,
    /// Cancelled when the gateway stops: ends the live streams.
    pub shutdown: CancellationToken,
    /// The SIP service's trunk registrations: told about trunk changes, runs "test now".
    pub trunks: trunk_check::SharedRegistrar,
    /// RTMP egress: the egress page's live states and start/stop (`None`: not running).
    pub egress: Option<Arc<dyn egress_control::EgressControl>>,
}

struct Inner {
    ctx: PanelContext,
    sessions: SessionStore,
    guard: LoginGuard,
    rates: RateTracker,
}

/// The handlers' shared state; cheap to clone.
#[derive(Clone)]
pub struct PanelState(Arc<Inner>);

impl PanelState {
    /// State over `ctx`, with empty session and lock-out tables.
    pub fn new(ctx: PanelContext) -> Self {
        let idle = Duration::from_secs(ctx.config.session_idle_minutes.max(1) * 60);
        let guard = LoginGuard::new(
            ctx.config.max_failed_logins,
            Duration::from_secs(ctx.config.lockout_seconds.max(1)),
        );
        PanelState(Arc::new(Inner {
            sessions: SessionStore::new(idle),
            guard,
            rates: RateTracker::default(),
            ctx,
        }))
    }

    /// The registry.
    pub fn storage(&self) -> &Storage {
        &self.0.ctx.storage
    }

    /// `[panel]`.
    pub fn config(&self) -> &PanelConfig {
        &self.0.ctx.config
    }

    /// The recordings directory.
    pub fn recordings_dir(&self) -> &Path {
        &self.0.ctx.recordings_dir
    }

    /// Logged-in sessions.
    pub fn sessions(&self) -> &SessionStore {
        &self.0.sessions
    }

    /// Failed-login accounting.
    pub fn guard(&self) -> &LoginGuard {
        &self.0.guard
    }

    /// Bitrate bookkeeping of the live view.
    pub fn rates(&self) -> &RateTracker {
        &self.0.rates
    }

    /// Where the Janus sessions come from.
    pub fn sessions_source(&self) -> &dyn SessionSource {
        self.0.ctx.sessions.as_ref()
    }

    /// Registrations and publishers.
    pub fn board(&self) -> &StatusBoard {
        &self.0.ctx.board
    }

    /// The SIP service's trunk registrations.
    pub fn trunk_registrar(&self) -> &dyn trunk_check::TrunkRegistrar {
        self.0.ctx.trunks.as_ref()
    }

    /// The egress service, when the gateway runs one.
    pub fn egress(&self) -> Option<&Arc<dyn egress_control::EgressControl>> {
        self.0.ctx.egress.as_ref()
    }

    /// The gateway's stop signal.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.0.ctx.shutdown.clone()
    }
}

/// The API routes with their OpenAPI document.
fn api(state: PanelState) -> (Router, utoipa::openapi::OpenApi) {
    let v1: OpenApiRouter<PanelState> = OpenApiRouter::new()
        .routes(routes!(login::login))
        .routes(routes!(login::logout))
        .routes(routes!(login::me))
        .routes(routes!(users::list_users, users::create_user))
        .routes(routes!(users::update_user, users::delete_user))
        .routes(routes!(trunks::list_trunks, trunks::create_trunk))
        .routes(routes!(
            trunks::get_trunk,
            trunks::update_trunk,
            trunks::delete_trunk
        ))
        .routes(routes!(trunks::test_trunk))
        .routes(routes!(accounts::list_accounts, accounts::create_account))
        .routes(routes!(
            accounts::get_account,
            accounts::update_account,
            accounts::delete_account
        ))
        .routes(routes!(accounts::reset_access_token))
        .routes(routes!(accounts::set_voicemail_pin))
        .routes(routes!(accounts::get_mailbox, accounts::set_mailbox))
        .routes(routes!(
            accounts::upload_greeting,
            accounts::delete_greeting
        ))
        .routes(routes!(
            stream_keys::list_stream_keys,
            stream_keys::create_stream_key
        ))
        .routes(routes!(
            stream_keys::update_stream_key,
            stream_keys::revoke_stream_key
        ))
        .routes(routes!(egress::list_egress, egress::create_egress))
        .routes(routes!(
            egress::get_egress,
            egress::update_egress,
            egress::delete_egress
        ))
        .routes(routes!(egress::start_egress))
        .routes(routes!(egress::stop_egress))
        .routes(routes!(recordings::list_recordings))
        .routes(routes!(
            recordings::get_recording,
            recordings::update_recording,
            recordings::delete_recording
        ))
        .routes(routes!(recordings::download_recording))
        .routes(routes!(live::live))
        .routes(routes!(live::live_events));
    let (router, doc) = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .nest(API_BASE, v1)
        .with_state(state)
        .split_for_parts();
    (router, doc)
}

/// Every API answer gets `Cache-Control: no-store` (they carry registry data and tokens);
/// refused requests get a log line with method, path (never the query or body, which may hold
/// secrets) and status. Server errors were logged with their cause where they arose.
async fn api_layer(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let mut response = next.run(request).await;
    let status = response.status();
    if status == axum::http::StatusCode::UNAUTHORIZED {
        tracing::debug!(%method, %path, status = status.as_u16(), "panel: request refused");
    } else if status.is_client_error() {
        tracing::info!(%method, %path, status = status.as_u16(), "panel: request refused");
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn api_not_found() -> PanelError {
    PanelError::new(ErrorCode::NotFound, "no such API route")
}

/// The OpenAPI document the panel serves.
pub fn openapi_document(state: PanelState) -> utoipa::openapi::OpenApi {
    api(state).1
}

/// Every panel route: pages, API and document. Mount on the admin HTTP listener.
pub fn router(ctx: PanelContext) -> Router {
    let state = PanelState::new(ctx);
    let (api_routes, doc) = api(state);
    let doc = Arc::new(doc);
    let api_routes = api_routes
        .route(
            "/panel/api/openapi.json",
            get(move || {
                let doc = doc.clone();
                async move { Json(doc.as_ref().clone()).into_response() }
            }),
        )
        .route("/panel/api/{*rest}", axum::routing::any(api_not_found))
        .layer(axum::middleware::from_fn(api_layer));
    Router::new()
        .route("/panel", get(assets::redirect_to_index))
        .route("/panel/", get(assets::index))
        .route("/panel/{*path}", get(assets::asset))
        .merge(api_routes)
}
