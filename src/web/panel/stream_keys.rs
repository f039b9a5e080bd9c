//! `/stream-keys`: RTMP stream keys. A key is shown once, when created, with the RTMP URL
//! (and WHIP URL when configured) to paste into an encoder; revoking deletes it. Where a
//! mountpoint is re-published to is managed under `/egress-targets` ([`super::egress`]).

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::{AdminUser, JsonBody, Viewer};
use super::error::{ErrorBody, PanelResult};
use super::PanelState;
use crate::storage::{NewStreamKey, Page, StreamKey, StreamKeyId};

/// A stream key as the API shows it after creation: without the key.
#[derive(Debug, Serialize, ToSchema)]
pub struct StreamKeyView {
    /// Row id.
    pub id: i64,
    /// Unique name.
    pub name: String,
    /// Owner (user or team).
    pub owner: String,
    /// Whether publishing is allowed.
    pub enabled: bool,
    /// Creation time, Unix ms.
    pub created_ms: i64,
    /// Last publish, Unix ms.
    pub last_used_ms: Option<i64>,
}

impl From<StreamKey> for StreamKeyView {
    fn from(k: StreamKey) -> Self {
        StreamKeyView {
            id: k.id.0,
            name: k.name,
            owner: k.owner,
            enabled: k.enabled,
            created_ms: k.created.0,
            last_used_ms: k.last_used.map(|t| t.0),
        }
    }
}

/// `POST /stream-keys` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewStreamKeyRequest {
    /// Unique name, 1..=64 characters.
    pub name: String,
    /// Owner (default: the logged-in user).
    pub owner: Option<String>,
}

/// `PATCH /stream-keys/{id}` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StreamKeyUpdate {
    /// New name.
    pub name: Option<String>,
    /// New owner.
    pub owner: Option<String>,
    /// Allow or refuse publishing.
    pub enabled: Option<bool>,
}

/// A new stream key: the only answer that carries the key.
#[derive(Debug, Serialize, ToSchema)]
pub struct StreamKeyCreated {
    /// The stored key.
    pub stream_key: StreamKeyView,
    /// The secret key (64 hex characters); it cannot be read back later.
    pub key: String,
    /// Server URL for the encoder (OBS "Server").
    pub rtmp_url: String,
    /// Full publish URL, `rtmp_url/key`, for encoders taking one URL (ffmpeg).
    pub publish_url: String,
    /// WHIP endpoint with the key (RFC 9725; the key is also the bearer token), from
    /// `[panel] whip_url`, else the `[whep]` listener's `/whip` when it is enabled.
    pub whip_url: Option<String>,
}

/// The host name the browser used, without port (`[v6]` kept bracketed).
fn request_host(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("localhost");
    if let Some(end) = host.strip_prefix('[').and_then(|h| h.find(']')) {
        return host[..end + 2].to_owned();
    }
    host.split(':').next().unwrap_or(host).to_owned()
}

/// Every stream key.
#[utoipa::path(get, path = "/stream-keys", tag = "stream keys",
    responses((status = 200, body = [StreamKeyView]), (status = 401, body = ErrorBody)),
    security(("session" = [])))]
pub async fn list_stream_keys(
    State(state): State<PanelState>,
    _viewer: Viewer,
) -> PanelResult<Json<Vec<StreamKeyView>>> {
    let keys = state
        .storage()
        .stream_keys()
        .list(Page::first(Page::MAX_LIMIT))
        .await?;
    Ok(Json(keys.into_iter().map(StreamKeyView::from).collect()))
}

/// Creates a stream key and shows it once.
#[utoipa::path(post, path = "/stream-keys", tag = "stream keys", request_body = NewStreamKeyRequest,
    responses((status = 201, body = StreamKeyCreated), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("session" = [], "csrf" = [])))]
pub async fn create_stream_key(
    State(state): State<PanelState>,
    AdminUser(admin): AdminUser,
    headers: HeaderMap,
    JsonBody(body): JsonBody<NewStreamKeyRequest>,
) -> PanelResult<(StatusCode, Json<StreamKeyCreated>)> {
    let owner = body
        .owner
        .map(|o| o.trim().to_owned())
        .filter(|o| !o.is_empty())
        .unwrap_or_else(|| admin.user.username.clone());
    let created = state
        .storage()
        .stream_keys()
        .create(&NewStreamKey {
            name: body.name.trim().to_owned(),
            owner,
            enabled: true,
        })
        .await?;
    tracing::info!(by = %admin.user.username, name = %created.name, "panel: stream key created");
    let host = request_host(&headers);
    let rtmp_url = state
        .config()
        .rtmp_url
        .replace("{host}", &host)
        .trim_end_matches('/')
        .to_owned();
    let key = created.key.expose().to_owned();
    let whip = &state.config().whip_url;
    let whip_url = (!whip.is_empty()).then(|| {
        format!(
            "{}/{key}",
            whip.replace("{host}", &host).trim_end_matches('/')
        )
    });
    Ok((
        StatusCode::CREATED,
        Json(StreamKeyCreated {
            publish_url: format!("{rtmp_url}/{key}"),
            rtmp_url,
            whip_url,
            key,
            stream_key: created.into(),
        }),
    ))
}

/// Renames, re-assigns, enables or disables a stream key.
#[utoipa::path(patch, path = "/stream-keys/{id}", tag = "stream keys", request_body = StreamKeyUpdate,
    params(("id" = i64, Path, description = "Stream key id")),
    responses((status = 200, body = StreamKeyView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("session" = [], "csrf" = [])))]
pub async fn update_stream_key(
    State(state): State<PanelState>,
    AdminUser(admin): AdminUser,
    Path(id): Path<i64>,
    JsonBody(body): JsonBody<StreamKeyUpdate>,
) -> PanelResult<Json<StreamKeyView>> {
    let keys = state.storage().stream_keys();
    let old = keys.get(StreamKeyId(id)).await?;
    let updated = keys
        .update(
            old.id,
            body.name.as_deref().map(str::trim).unwrap_or(&old.name),
            body.owner.as_deref().map(str::trim).unwrap_or(&old.owner),
            body.enabled.unwrap_or(old.enabled),
        )
        .await?;
    tracing::info!(by = %admin.user.username, name = %updated.name, enabled = updated.enabled, "panel: stream key updated");
    Ok(Json(updated.into()))
}

/// Revokes (deletes) a stream key.
#[utoipa::path(delete, path = "/stream-keys/{id}", tag = "stream keys",
    params(("id" = i64, Path, description = "Stream key id")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("session" = [], "csrf" = [])))]
pub async fn revoke_stream_key(
    State(state): State<PanelState>,
    AdminUser(admin): AdminUser,
    Path(id): Path<i64>,
) -> PanelResult<StatusCode> {
    state
        .storage()
        .stream_keys()
        .delete(StreamKeyId(id))
        .await?;
    tracing::info!(by = %admin.user.username, stream_key_id = id, "panel: stream key revoked");
    Ok(StatusCode::NO_CONTENT)
}
