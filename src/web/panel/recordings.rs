//! `/recordings`: list with filters, download (range requests, for `<audio>` seeking), mark
//! heard, delete (row and file). Files are served only from inside the recordings directory:
//! a stored path that is absolute, climbs with `..`, or resolves (through a symbolic link)
//! outside it is refused and logged.

use std::path::{Component, Path as FsPath, PathBuf};

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::BytesMut;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use utoipa::{IntoParams, ToSchema};

use super::auth::{AdminUser, JsonBody, Viewer};
use super::error::{ErrorBody, ErrorCode, PanelError, PanelResult};
use super::range::{parse_range, RangeAnswer};
use super::PanelState;
use crate::storage::{
    CreatedRange, Page, Recording, RecordingFilter, RecordingId, RecordingKind, Timestamp,
};

/// Bytes read from disk per chunk of a download.
const CHUNK: usize = 64 * 1024;

/// Where a recording came from.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum KindName {
    /// Voicemail message.
    Voicemail,
    /// Room recording.
    Room,
    /// Stream recording.
    Stream,
    /// SIP call.
    Call,
    /// Echo test.
    Echotest,
}

impl From<RecordingKind> for KindName {
    fn from(k: RecordingKind) -> Self {
        match k {
            RecordingKind::Voicemail => KindName::Voicemail,
            RecordingKind::Room => KindName::Room,
            RecordingKind::Stream => KindName::Stream,
            RecordingKind::Call => KindName::Call,
            RecordingKind::Echotest => KindName::Echotest,
        }
    }
}

impl From<KindName> for RecordingKind {
    fn from(k: KindName) -> Self {
        match k {
            KindName::Voicemail => RecordingKind::Voicemail,
            KindName::Room => RecordingKind::Room,
            KindName::Stream => RecordingKind::Stream,
            KindName::Call => RecordingKind::Call,
            KindName::Echotest => RecordingKind::Echotest,
        }
    }
}

/// A recording.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecordingView {
    /// Row id.
    pub id: i64,
    /// Where it came from.
    pub kind: KindName,
    /// Owner, room or mailbox.
    pub owner: String,
    /// Caller or publisher.
    pub caller: Option<String>,
    /// Who was called (call recordings).
    pub callee: Option<String>,
    /// Codec, e.g. `opus`.
    pub codec: String,
    /// Length, ms.
    pub duration_ms: u64,
    /// Size, bytes.
    pub size_bytes: u64,
    /// Creation time, Unix ms.
    pub created_ms: i64,
    /// Whether it was listened to.
    pub heard: bool,
    /// File path relative to the recordings directory.
    pub file: String,
    /// MIME type the file is served with.
    pub content_type: String,
    /// Where to fetch it (supports `Range`).
    pub file_url: String,
}

impl From<Recording> for RecordingView {
    fn from(r: Recording) -> Self {
        RecordingView {
            id: r.id.0,
            kind: r.meta.kind.into(),
            owner: r.meta.owner,
            caller: r.meta.caller,
            callee: r.callee,
            codec: r.meta.codec,
            duration_ms: r.meta.duration_ms,
            size_bytes: r.meta.size_bytes,
            created_ms: r.meta.created.0,
            heard: r.heard,
            content_type: content_type(&r.meta.file_path).to_owned(),
            file: r.meta.file_path,
            file_url: format!("/panel/api/v1/recordings/{}/file", r.id.0),
        }
    }
}

/// A page of recordings.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecordingList {
    /// Newest first.
    pub recordings: Vec<RecordingView>,
    /// How many match the filters in all.
    pub total: i64,
}

/// Filters of `GET /recordings`; absent ones match everything.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RecordingQuery {
    /// Only this kind.
    pub kind: Option<KindName>,
    /// Only this owner or mailbox.
    pub owner: Option<String>,
    /// Only heard (`true`) or unheard (`false`) ones.
    pub heard: Option<bool>,
    /// Created at or after this time, Unix ms.
    pub from_ms: Option<i64>,
    /// Created before this time, Unix ms.
    pub to_ms: Option<i64>,
    /// Rows to skip (default 0).
    pub offset: Option<u64>,
    /// Rows to return (default 100, at most 1000).
    pub limit: Option<u32>,
}

/// `PATCH /recordings/{id}` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordingUpdate {
    /// Heard or not.
    pub heard: bool,
}

/// `GET /recordings/{id}/file` query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DownloadQuery {
    /// `true` to get `Content-Disposition: attachment` (save) instead of `inline` (play).
    pub download: Option<bool>,
}

/// The MIME type for a recording file, by extension.
pub fn content_type(path: &str) -> &'static str {
    let ext = path.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    match ext.as_deref() {
        Some("ogg" | "opus" | "oga") => "audio/ogg",
        Some("wav") => "audio/wav",
        Some("webm") => "audio/webm",
        Some("mka") => "audio/x-matroska",
        Some("mp4" | "m4a") => "audio/mp4",
        Some("flv") => "video/x-flv",
        _ => "application/octet-stream",
    }
}

/// The file of `rel` inside `dir`, refusing anything that leaves it.
async fn resolve(dir: &FsPath, rel: &str) -> PanelResult<PathBuf> {
    let refused = |why: &str| {
        tracing::warn!(path = %rel, "panel: recording file refused: {why}");
        PanelError::new(
            ErrorCode::Forbidden,
            "the recording's file lies outside the recordings directory",
        )
    };
    let relative = FsPath::new(rel);
    if rel.is_empty()
        || relative
            .components()
            .any(|c| !matches!(c, Component::Normal(_)))
    {
        return Err(refused("not a plain relative path"));
    }
    let base = tokio::fs::canonicalize(dir)
        .await
        .map_err(|_| PanelError::not_found("recording file"))?;
    let full = tokio::fs::canonicalize(base.join(relative))
        .await
        .map_err(|_| PanelError::not_found("recording file"))?;
    if !full.starts_with(&base) {
        return Err(refused("resolves outside the recordings directory"));
    }
    Ok(full)
}

/// Recordings matching the filters, newest first.
#[utoipa::path(get, path = "/recordings", tag = "recordings", params(RecordingQuery),
    responses((status = 200, body = RecordingList), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("session" = [])))]
pub async fn list_recordings(
    State(state): State<PanelState>,
    _viewer: Viewer,
    query: Result<Query<RecordingQuery>, QueryRejection>,
) -> PanelResult<Json<RecordingList>> {
    let Query(q) = query.map_err(|e| PanelError::new(ErrorCode::InvalidInput, e.body_text()))?;
    let filter = RecordingFilter {
        kind: q.kind.map(Into::into),
        owner: q.owner.filter(|o| !o.is_empty()),
        heard: q.heard,
    };
    let range = CreatedRange {
        from: q.from_ms.map(Timestamp),
        to: q.to_ms.map(Timestamp),
    };
    let page = Page {
        offset: q.offset.unwrap_or(0),
        limit: q.limit.unwrap_or(100),
    };
    let (rows, total) = state
        .storage()
        .recordings()
        .search(&filter, range, page)
        .await?;
    Ok(Json(RecordingList {
        recordings: rows.into_iter().map(RecordingView::from).collect(),
        total,
    }))
}

/// One recording.
#[utoipa::path(get, path = "/recordings/{id}", tag = "recordings",
    params(("id" = i64, Path, description = "Recording id")),
    responses((status = 200, body = RecordingView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("session" = [])))]
pub async fn get_recording(
    State(state): State<PanelState>,
    _viewer: Viewer,
    Path(id): Path<i64>,
) -> PanelResult<Json<RecordingView>> {
    Ok(Json(
        state
            .storage()
            .recordings()
            .get(RecordingId(id))
            .await?
            .into(),
    ))
}

/// The recording's file; honours one `Range: bytes=` range (206 with `Content-Range`).
#[utoipa::path(get, path = "/recordings/{id}/file", tag = "recordings",
    params(("id" = i64, Path, description = "Recording id"), DownloadQuery,
        ("Range" = Option<String>, Header, description = "One byte range, e.g. `bytes=0-1023`")),
    responses(
        (status = 200, description = "The whole file", content_type = "application/octet-stream"),
        (status = 206, description = "The requested bytes", content_type = "application/octet-stream"),
        (status = 401, body = ErrorBody),
        (status = 403, description = "The stored path leaves the recordings directory", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 416, body = ErrorBody)),
    security(("session" = [])))]
pub async fn download_recording(
    State(state): State<PanelState>,
    _viewer: Viewer,
    Path(id): Path<i64>,
    Query(q): Query<DownloadQuery>,
    headers: HeaderMap,
) -> PanelResult<Response> {
    let rec = state.storage().recordings().get(RecordingId(id)).await?;
    let path = resolve(state.recordings_dir(), &rec.meta.file_path).await?;
    let mut file = tokio::fs::File::open(&path)
        .await
        .map_err(|_| PanelError::not_found("recording file"))?;
    let len = file
        .metadata()
        .await
        .map_err(|e| PanelError::internal("reading a recording's size", e))?
        .len();
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let (status, start, count) = match parse_range(range, len) {
        RangeAnswer::Full => (StatusCode::OK, 0, len),
        RangeAnswer::Partial { start, end } => {
            (StatusCode::PARTIAL_CONTENT, start, end - start + 1)
        }
        RangeAnswer::Unsatisfiable => {
            let mut r = PanelError::new(
                ErrorCode::RangeNotSatisfiable,
                format!("the file has {len} bytes"),
            )
            .into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                r.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return Ok(r);
        }
    };
    file.seek(std::io::SeekFrom::Start(start))
        .await
        .map_err(|e| PanelError::internal("seeking in a recording", e))?;
    let stream = futures::stream::unfold((file, count), |(mut file, left)| async move {
        if left == 0 {
            return None;
        }
        let want = CHUNK.min(usize::try_from(left).unwrap_or(CHUNK));
        let mut buf = BytesMut::zeroed(want);
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(buf.freeze()), (file, left - n as u64)))
            }
            Err(e) => Some((Err(e), (file, 0))),
        }
    });
    let name = FsPath::new(&rec.meta.file_path)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("recording")
        .replace(['"', '\\'], "_");
    let disposition = if q.download.unwrap_or(false) {
        "attachment"
    } else {
        "inline"
    };
    let mut response = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, content_type(&rec.meta.file_path))
        .header(header::CONTENT_LENGTH, count)
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::CACHE_CONTROL, "no-store")
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .header(
            header::CONTENT_DISPOSITION,
            format!("{disposition}; filename=\"{name}\""),
        );
    if status == StatusCode::PARTIAL_CONTENT {
        response = response.header(
            header::CONTENT_RANGE,
            format!("bytes {start}-{}/{len}", start + count - 1),
        );
    }
    response
        .body(Body::from_stream(stream))
        .map_err(|e| PanelError::internal("building a download", e))
}

/// Marks a recording heard or unheard.
#[utoipa::path(patch, path = "/recordings/{id}", tag = "recordings", request_body = RecordingUpdate,
    params(("id" = i64, Path, description = "Recording id")),
    responses((status = 200, body = RecordingView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("session" = [], "csrf" = [])))]
pub async fn update_recording(
    State(state): State<PanelState>,
    AdminUser(admin): AdminUser,
    Path(id): Path<i64>,
    JsonBody(body): JsonBody<RecordingUpdate>,
) -> PanelResult<Json<RecordingView>> {
    let rec = state
        .storage()
        .recordings()
        .set_heard(RecordingId(id), body.heard)
        .await?;
    tracing::info!(by = %admin.user.username, recording_id = id, heard = body.heard, "panel: recording marked");
    Ok(Json(rec.into()))
}

/// Deletes a recording: its row, then its file.
#[utoipa::path(delete, path = "/recordings/{id}", tag = "recordings",
    params(("id" = i64, Path, description = "Recording id")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 500, description = "Row deleted, file left", body = ErrorBody)),
    security(("session" = [], "csrf" = [])))]
pub async fn delete_recording(
    State(state): State<PanelState>,
    AdminUser(admin): AdminUser,
    Path(id): Path<i64>,
) -> PanelResult<StatusCode> {
    let recordings = state.storage().recordings();
    let rec = recordings.get(RecordingId(id)).await?;
    // Check the path before touching anything, so a row pointing outside is kept for a human.
    let file = match resolve(state.recordings_dir(), &rec.meta.file_path).await {
        Ok(f) => Some(f),
        Err(e) if e.code() == ErrorCode::NotFound => None,
        Err(e) => return Err(e),
    };
    recordings.delete(rec.id).await?;
    if let Some(file) = file {
        if let Err(e) = tokio::fs::remove_file(&file).await {
            if e.kind() != std::io::ErrorKind::NotFound {
                return Err(PanelError::internal("removing a recording file", e));
            }
        }
    }
    tracing::info!(by = %admin.user.username, recording_id = id, file = %rec.meta.file_path, "panel: recording deleted");
    Ok(StatusCode::NO_CONTENT)
}
