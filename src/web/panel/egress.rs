//! `/egress-targets`: named RTMP destinations a mountpoint is re-published to. The
//! destination's stream key is write-only (answers say `has_key`). The destination follows the
//! registry's one rule ([`validate::egress_destination`]): `rtmp://` or `rtmps://`, a host, an
//! application path, and a key unless the URL ends with the stream name; otherwise
//! `422 unprocessable` with `field` `url` or `key`. The mountpoint need not exist yet. Each target shows the
//! live state of its egress (from [`super::egress_control::EgressControl`]); `POST …/start` and `…/stop`
//! start and stop it.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::{AdminUser, JsonBody, Viewer};
use super::error::{ErrorBody, ErrorCode, PanelError, PanelResult};
use super::PanelState;
use crate::storage::{validate, Egress, EgressId, EgressSpec, Page, Secret, StorageError};

/// Where a target's re-publishing stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EgressState {
    /// No egress of this target runs.
    NotStarted,
    /// Connecting to the RTMP server.
    Connecting,
    /// Publishing.
    Live,
    /// Lost the server; retrying with backoff.
    Reconnecting,
    /// Given up (e.g. the server refused the key); see `reason`.
    Failed,
}

/// An egress target as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct EgressView {
    /// Row id.
    pub id: i64,
    /// Unique name.
    pub name: String,
    /// Destination, `rtmp://host[:port]/app` or `rtmps://…`.
    pub url: String,
    /// Whether a destination stream key is stored (the key itself is never returned).
    pub has_key: bool,
    /// Mountpoint (id or name) whose media is sent.
    pub mountpoint: String,
    /// Whether the target is used.
    pub enabled: bool,
    /// Live state.
    pub state: EgressState,
    /// Why it is reconnecting or failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The running egress (as `egress_list` of the streaming plugin names it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub egress_id: Option<u64>,
    /// Creation time, Unix ms.
    pub created_ms: i64,
}

impl EgressView {
    /// The view of `e` with the state of its egress, if one runs.
    fn live(e: Egress, state: &PanelState) -> Self {
        let running = state.egress().and_then(|s| {
            s.running()
                .into_iter()
                .find(|r| r.target_id == Some(e.id.0))
        });
        let mut view = EgressView::from(e);
        if let Some(r) = running {
            view.state = r.state;
            view.reason = r.reason;
            view.egress_id = Some(r.id);
        }
        view
    }
}

impl From<Egress> for EgressView {
    fn from(e: Egress) -> Self {
        EgressView {
            id: e.id.0,
            name: e.spec.name,
            url: e.spec.url,
            has_key: e.spec.key.is_some(),
            mountpoint: e.spec.mountpoint,
            enabled: e.spec.enabled,
            state: EgressState::NotStarted,
            reason: None,
            egress_id: None,
            created_ms: e.created.0,
        }
    }
}

/// `POST /egress-targets` and `PUT /egress-targets/{id}` body.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EgressInput {
    /// Unique name, 1..=64 characters.
    pub name: String,
    /// `rtmp://` or `rtmps://` URL with an application path.
    pub url: String,
    /// Destination stream key. On `PUT`, absent keeps the stored one and `""` removes it.
    pub key: Option<String>,
    /// Mountpoint (id or name) whose media is sent.
    pub mountpoint: String,
    /// Whether the target is used (default `true`).
    pub enabled: Option<bool>,
}

impl EgressInput {
    fn into_spec(self, kept: Option<Secret>) -> EgressSpec {
        EgressSpec {
            name: self.name.trim().to_owned(),
            url: self.url.trim().to_owned(),
            key: match self.key {
                None => kept,
                Some(k) if k.is_empty() => None,
                Some(k) => Some(Secret::new(k)),
            },
            mountpoint: self.mountpoint.trim().to_owned(),
            enabled: self.enabled.unwrap_or(true),
        }
    }
}

/// A destination refused by [`validate::egress_destination`] is `422 unprocessable` naming
/// the form field (`url` or `key`); everything else as the registry says.
fn refused(e: StorageError) -> PanelError {
    match e {
        StorageError::Invalid { field, reason }
            if field == validate::EGRESS_URL || field == validate::EGRESS_KEY =>
        {
            let name = if field == validate::EGRESS_URL {
                "url"
            } else {
                "key"
            };
            let mut err = PanelError::new(
                ErrorCode::Unprocessable,
                format!("invalid {name}: {reason}"),
            );
            err.set_field(name);
            err
        }
        other => other.into(),
    }
}

/// Every egress target.
#[utoipa::path(get, path = "/egress-targets", tag = "egress",
    responses((status = 200, body = [EgressView]), (status = 401, body = ErrorBody)),
    security(("session" = [])))]
pub async fn list_egress(
    State(state): State<PanelState>,
    _viewer: Viewer,
) -> PanelResult<Json<Vec<EgressView>>> {
    let all = state
        .storage()
        .egress_targets()
        .list(Page::first(Page::MAX_LIMIT))
        .await?;
    Ok(Json(
        all.into_iter()
            .map(|e| EgressView::live(e, &state))
            .collect(),
    ))
}

/// One egress target.
#[utoipa::path(get, path = "/egress-targets/{id}", tag = "egress",
    params(("id" = i64, Path, description = "Egress target id")),
    responses((status = 200, body = EgressView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("session" = [])))]
pub async fn get_egress(
    State(state): State<PanelState>,
    _viewer: Viewer,
    Path(id): Path<i64>,
) -> PanelResult<Json<EgressView>> {
    let e = state.storage().egress_targets().get(EgressId(id)).await?;
    Ok(Json(EgressView::live(e, &state)))
}

/// Starts re-publishing a target's mountpoint to it.
#[utoipa::path(post, path = "/egress-targets/{id}/start", tag = "egress",
    params(("id" = i64, Path, description = "Egress target id")),
    responses((status = 200, body = EgressView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 400, description = "Disabled, or its mountpoint is missing or has no media to send", body = ErrorBody),
        (status = 409, description = "An egress to the same destination runs already", body = ErrorBody),
        (status = 422, description = "The target's URL or key cannot be used", body = ErrorBody),
        (status = 503, description = "No streaming plugin in this gateway", body = ErrorBody)),
    security(("session" = [], "csrf" = [])))]
pub async fn start_egress(
    State(state): State<PanelState>,
    AdminUser(admin): AdminUser,
    Path(id): Path<i64>,
) -> PanelResult<Json<EgressView>> {
    let e = state.storage().egress_targets().get(EgressId(id)).await?;
    let service = state.egress().ok_or_else(unavailable)?;
    service.start_target(id).await?;
    tracing::info!(by = %admin.user.username, egress = %e.spec.name, "panel: egress started");
    Ok(Json(EgressView::live(e, &state)))
}

/// Stops the egress of a target.
#[utoipa::path(post, path = "/egress-targets/{id}/stop", tag = "egress",
    params(("id" = i64, Path, description = "Egress target id")),
    responses((status = 200, body = EgressView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, description = "No such target, or it is not running", body = ErrorBody)),
    security(("session" = [], "csrf" = [])))]
pub async fn stop_egress(
    State(state): State<PanelState>,
    AdminUser(admin): AdminUser,
    Path(id): Path<i64>,
) -> PanelResult<Json<EgressView>> {
    let e = state.storage().egress_targets().get(EgressId(id)).await?;
    let service = state.egress().ok_or_else(unavailable)?;
    let running = service
        .running()
        .into_iter()
        .find(|r| r.target_id == Some(id))
        .ok_or_else(|| PanelError::new(ErrorCode::NotFound, "this egress target is not running"))?;
    service.stop(running.id)?;
    tracing::info!(by = %admin.user.username, egress = %e.spec.name, "panel: egress stopped");
    Ok(Json(EgressView::live(e, &state)))
}

fn unavailable() -> PanelError {
    PanelError::new(
        ErrorCode::Unavailable,
        "restreaming is not running on this gateway",
    )
}

/// Creates an egress target.
#[utoipa::path(post, path = "/egress-targets", tag = "egress", request_body = EgressInput,
    responses((status = 201, body = EgressView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, description = "The URL is not rtmp:// or rtmps:// with a host and an application, or no key where the URL has no stream name", body = ErrorBody)),
    security(("session" = [], "csrf" = [])))]
pub async fn create_egress(
    State(state): State<PanelState>,
    AdminUser(admin): AdminUser,
    JsonBody(body): JsonBody<EgressInput>,
) -> PanelResult<(StatusCode, Json<EgressView>)> {
    let created = state
        .storage()
        .egress_targets()
        .create(&body.into_spec(None))
        .await
        .map_err(refused)?;
    tracing::info!(by = %admin.user.username, egress = %created.spec.name, "panel: egress target created");
    Ok((StatusCode::CREATED, Json(created.into())))
}

/// Replaces an egress target's settings.
#[utoipa::path(put, path = "/egress-targets/{id}", tag = "egress", request_body = EgressInput,
    params(("id" = i64, Path, description = "Egress target id")),
    responses((status = 200, body = EgressView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, description = "The URL is not rtmp:// or rtmps:// with a host and an application, or no key where the URL has no stream name", body = ErrorBody)),
    security(("session" = [], "csrf" = [])))]
pub async fn update_egress(
    State(state): State<PanelState>,
    AdminUser(admin): AdminUser,
    Path(id): Path<i64>,
    JsonBody(body): JsonBody<EgressInput>,
) -> PanelResult<Json<EgressView>> {
    let repo = state.storage().egress_targets();
    let old = repo.get(EgressId(id)).await?;
    let updated = repo
        .update(old.id, &body.into_spec(old.spec.key))
        .await
        .map_err(refused)?;
    tracing::info!(by = %admin.user.username, egress = %updated.spec.name, "panel: egress target updated");
    Ok(Json(updated.into()))
}

/// Deletes an egress target.
#[utoipa::path(delete, path = "/egress-targets/{id}", tag = "egress",
    params(("id" = i64, Path, description = "Egress target id")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("session" = [], "csrf" = [])))]
pub async fn delete_egress(
    State(state): State<PanelState>,
    AdminUser(admin): AdminUser,
    Path(id): Path<i64>,
) -> PanelResult<StatusCode> {
    state
        .storage()
        .egress_targets()
        .delete(EgressId(id))
        .await?;
    tracing::info!(by = %admin.user.username, egress_id = id, "panel: egress target deleted");
    Ok(StatusCode::NO_CONTENT)
}
