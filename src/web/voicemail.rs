//! `GET /voicemail/{id}.ogg` and `GET /voicemail/{id}.wav` on the Janus HTTP port: a voicemail
//! message as stored (Ogg Opus, `audio/ogg`) or transcoded on demand to WAV (mono 16-bit PCM,
//! 48 kHz, `audio/wav`; decoded on the blocking pool, never on the async threads).
//!
//! Authentication: `?token=` from the voicemail plugin's `list` (a short-lived HMAC token bound
//! to the message, see [`crate::auth::download_tokens`]), so an `<audio>` element can
//! play it. One `Range: bytes=` range is honoured (206 with `Content-Range`, RFC 9110 §14), with
//! `Accept-Ranges: bytes` and `Content-Length` on every answer.
//!
//! Answers: 403 for a missing, expired or foreign token; 404 for anything that is not
//! `{digits}.ogg|wav`, an unknown message or a missing file; 416 for a range past the end;
//! 405 for another method than GET/HEAD.

use std::path::Path;

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use crate::audio_file::ogg_opus_to_wav;
use crate::auth::download_tokens as tokens;
use crate::storage::{RecordingId, RecordingKind, Storage, StorageError};
use crate::web::panel::range::{parse_range, RangeAnswer};

/// Path prefix of the route.
pub const PREFIX: &str = "/voicemail/";

/// The two formats served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The stored Ogg Opus file.
    Ogg,
    /// Transcoded to WAV.
    Wav,
}

/// `{id}.ogg` / `{id}.wav` (the path after [`PREFIX`]): the message id (a positive decimal
/// integer, at most 19 digits, nothing else) and format; `None` for anything else.
pub fn parse_name(name: &str) -> Option<(i64, Format)> {
    let (id, ext) = name.rsplit_once('.')?;
    let format = match ext {
        "ogg" => Format::Ogg,
        "wav" => Format::Wav,
        _ => return None,
    };
    if id.is_empty() || id.len() > 19 || !id.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let id: i64 = id.parse().ok().filter(|n| *n > 0)?;
    Some((id, format))
}

/// The `token` query parameter, percent-decoding not needed (tokens are `[0-9a-f.]`).
fn token_of(query: Option<&str>) -> Option<&str> {
    query?
        .split('&')
        .find_map(|pair| pair.strip_prefix("token="))
}

fn status(code: StatusCode, text: &'static str) -> Response {
    (
        code,
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        text,
    )
        .into_response()
}

/// Serves `path` (starting with [`PREFIX`]) for `method`, `query` and `headers`, with the
/// registry `storage` and files under `recordings_dir`.
pub async fn serve(
    storage: &Storage,
    recordings_dir: &Path,
    method: &Method,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Response {
    if *method != Method::GET && *method != Method::HEAD {
        return status(StatusCode::METHOD_NOT_ALLOWED, "GET only\n");
    }
    let Some((id, format)) = path.strip_prefix(PREFIX).and_then(parse_name) else {
        tracing::info!(path = %path.chars().take(200).collect::<String>(), "voicemail download: no such path");
        return status(StatusCode::NOT_FOUND, "no such message\n");
    };
    let Some(token) = token_of(query) else {
        return status(
            StatusCode::FORBIDDEN,
            "a token from the plugin's list is needed\n",
        );
    };
    if let Err(e) = tokens::verify(id, token) {
        tracing::warn!(recording = id, error = %e, "voicemail download refused");
        return status(StatusCode::FORBIDDEN, "token refused\n");
    }
    let row = match storage.recordings().get(RecordingId(id)).await {
        Ok(r) if r.meta.kind == RecordingKind::Voicemail => r,
        Ok(_) | Err(StorageError::NotFound { .. }) => {
            return status(StatusCode::NOT_FOUND, "no such message\n")
        }
        Err(e) => {
            tracing::warn!(error = %e, "voicemail download: registry error");
            return status(StatusCode::INTERNAL_SERVER_ERROR, "registry error\n");
        }
    };
    let Some(file) = crate::storage::message_file(recordings_dir, &row.meta.file_path) else {
        return status(StatusCode::NOT_FOUND, "no such message\n");
    };
    let read = tokio::task::spawn_blocking(move || -> Result<Bytes, String> {
        let data = std::fs::read(&file).map_err(|e| e.to_string())?;
        match format {
            Format::Ogg => Ok(Bytes::from(data)),
            Format::Wav => ogg_opus_to_wav(&data)
                .map(Bytes::from)
                .map_err(|e| e.to_string()),
        }
    })
    .await;
    let body = match read {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => {
            tracing::warn!(recording = id, error = %e, "voicemail download: file unreadable");
            return status(StatusCode::NOT_FOUND, "message file unreadable\n");
        }
        Err(_) => return status(StatusCode::INTERNAL_SERVER_ERROR, "transcoding failed\n"),
    };
    ranged(body, format, id, headers, *method == Method::HEAD)
}

/// The answer for `body` and the request's `Range`.
fn ranged(body: Bytes, format: Format, id: i64, headers: &HeaderMap, head: bool) -> Response {
    let len = body.len() as u64;
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let (code, start, end) = match parse_range(range, len) {
        RangeAnswer::Full => (StatusCode::OK, 0, len),
        RangeAnswer::Partial { start, end } => (StatusCode::PARTIAL_CONTENT, start, end + 1),
        RangeAnswer::Unsatisfiable => {
            let mut r = status(StatusCode::RANGE_NOT_SATISFIABLE, "range past the end\n");
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                r.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return r;
        }
    };
    let (mime, ext) = match format {
        Format::Ogg => ("audio/ogg", "ogg"),
        Format::Wav => ("audio/wav", "wav"),
    };
    let mut builder = Response::builder()
        .status(code)
        .header(header::CONTENT_TYPE, mime)
        .header(header::CONTENT_LENGTH, end - start)
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::CACHE_CONTROL, "private, no-store")
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .header(
            header::CONTENT_DISPOSITION,
            format!("inline; filename=\"voicemail-{id}.{ext}\""),
        );
    if code == StatusCode::PARTIAL_CONTENT {
        builder = builder.header(
            header::CONTENT_RANGE,
            format!("bytes {start}-{}/{len}", end - 1),
        );
    }
    let body = if head {
        Body::empty()
    } else {
        Body::from(body.slice(start as usize..end as usize))
    };
    builder
        .body(body)
        .unwrap_or_else(|_| status(StatusCode::INTERNAL_SERVER_ERROR, "response\n"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn names_are_ids_with_a_known_extension() {
        assert_eq!(parse_name("12.ogg"), Some((12, Format::Ogg)));
        assert_eq!(parse_name("12.wav"), Some((12, Format::Wav)));
        for bad in [
            "0.ogg",
            "-1.ogg",
            "12.mp3",
            "12",
            ".ogg",
            "..%2F..%2Fetc%2Fpasswd.ogg",
            "../1.ogg",
            "1/2.ogg",
            "99999999999999999999.ogg",
            "+1.ogg",
        ] {
            assert_eq!(parse_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_token_is_found_among_other_parameters() {
        assert_eq!(token_of(Some("a=1&token=xyz")), Some("xyz"));
        assert_eq!(token_of(Some("a=1")), None);
        assert_eq!(token_of(None), None);
    }

    #[test]
    fn ranges_answer_206_with_the_exact_bytes() {
        let body = Bytes::from_static(b"0123456789");
        let mut h = HeaderMap::new();
        h.insert(header::RANGE, HeaderValue::from_static("bytes=2-4"));
        let r = ranged(body.clone(), Format::Ogg, 1, &h, false);
        assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
        assert_eq!(r.headers()[header::CONTENT_RANGE], "bytes 2-4/10");
        assert_eq!(r.headers()[header::CONTENT_LENGTH], "3");
        h.insert(header::RANGE, HeaderValue::from_static("bytes=10-"));
        let r = ranged(body.clone(), Format::Wav, 1, &h, false);
        assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);
        let r = ranged(body, Format::Wav, 1, &HeaderMap::new(), false);
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()[header::CONTENT_TYPE], "audio/wav");
        assert_eq!(r.headers()[header::ACCEPT_RANGES], "bytes");
    }

    proptest! {
        #[test]
        fn any_name_is_answered_without_panic(name in ".{0,64}") {
            if let Some((id, _)) = parse_name(&name) {
                prop_assert!(id > 0);
            }
        }
    }
}
