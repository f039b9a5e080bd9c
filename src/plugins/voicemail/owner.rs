//! A mailbox owner's requests (Bifrons): `list`, `play`, `delete` and `mark` name the mailbox
//! (the account's extension) and give the account's web secret. The secret is checked against
//! its argon2 hash (constant time; an unknown extension costs the same check), a failure is
//! error 403 after a delay that doubles with each failure on that mailbox (250 ms up to 8 s,
//! forgotten 5 minutes after the last one), so guessing is slow while other handles and
//! mailboxes keep working. A message of another mailbox is 404, as an unknown one.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::requests::{
    MailboxAuth, VoicemailError, ERROR_IO_ERROR, ERROR_NO_SUCH_MESSAGE, ERROR_UNAUTHORIZED,
    ERROR_UNKNOWN,
};
use crate::audio_file::{read_ogg_opus, OpusPackets};
use crate::auth::download_tokens as tokens;
use crate::storage::message_file;
use crate::storage::{
    Page, Recording, RecordingFilter, RecordingId, RecordingKind, Storage, StorageError,
};

/// First delay after a failed secret.
const FIRST_DELAY: Duration = Duration::from_millis(250);
/// Longest delay after failed secrets.
const MAX_DELAY: Duration = Duration::from_secs(8);
/// Failures are forgotten this long after the last one.
const FORGET_AFTER: Duration = Duration::from_secs(300);
/// Mailboxes with recent failures remembered at most (older entries are pruned first).
const MAX_TRACKED: usize = 4096;
/// Messages a `list` returns at most.
const LIST_LIMIT: u32 = 500;

/// Failed secrets per mailbox, shared by every handle of the plugin (requests only, never the
/// media path).
#[derive(Default)]
pub struct Guard {
    failures: Mutex<HashMap<String, (u32, Instant)>>,
}

impl Guard {
    /// Records a failure on `mailbox`; returns how long to wait before answering.
    fn failed(&self, mailbox: &str) -> Duration {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if map.len() >= MAX_TRACKED {
            map.retain(|_, (_, last)| now.duration_since(*last) < FORGET_AFTER);
            if map.len() >= MAX_TRACKED {
                map.clear();
            }
        }
        let entry = map.entry(mailbox.to_owned()).or_insert((0, now));
        if now.duration_since(entry.1) >= FORGET_AFTER {
            entry.0 = 0;
        }
        entry.0 = entry.0.saturating_add(1);
        entry.1 = now;
        FIRST_DELAY
            .saturating_mul(1u32 << (entry.0 - 1).min(5))
            .min(MAX_DELAY)
    }

    fn succeeded(&self, mailbox: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(mailbox);
    }

    /// Failures remembered for `mailbox` (for the Admin API's handle view and tests).
    pub fn failures(&self, mailbox: &str) -> u32 {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(mailbox)
            .map_or(0, |(n, _)| *n)
    }
}

fn storage_error(e: StorageError) -> VoicemailError {
    tracing::warn!(error = %e, "voicemail registry error");
    VoicemailError::new(ERROR_UNKNOWN, "Registry error")
}

/// Checks `auth`; 403 (after the delay) for a wrong mailbox or secret.
pub async fn authenticate(
    storage: &Storage,
    guard: &Guard,
    auth: &MailboxAuth,
) -> Result<(), VoicemailError> {
    match storage
        .accounts()
        .authenticate_web(&auth.mailbox, &auth.secret)
        .await
    {
        Ok(Some(_)) => {
            guard.succeeded(&auth.mailbox);
            Ok(())
        }
        Ok(None) => {
            let delay = guard.failed(&auth.mailbox);
            tracing::warn!(
                mailbox = %auth.mailbox,
                failures = guard.failures(&auth.mailbox),
                delay_ms = delay.as_millis() as u64,
                "voicemail: wrong mailbox or secret"
            );
            tokio::time::sleep(delay).await;
            Err(VoicemailError::new(
                ERROR_UNAUTHORIZED,
                "Unauthorized (wrong mailbox or secret)",
            ))
        }
        Err(e) => Err(storage_error(e)),
    }
}

/// Message `id` of `mailbox`; 404 when there is none or it belongs elsewhere.
pub async fn message(
    storage: &Storage,
    mailbox: &str,
    id: i64,
) -> Result<Recording, VoicemailError> {
    let no_such = || VoicemailError::new(ERROR_NO_SUCH_MESSAGE, format!("No such message {id}"));
    match storage.recordings().get(RecordingId(id)).await {
        Ok(r) if r.meta.kind == RecordingKind::Voicemail && r.meta.owner == mailbox => Ok(r),
        Ok(_) | Err(StorageError::NotFound { .. }) => Err(no_such()),
        Err(e) => Err(storage_error(e)),
    }
}

/// The download URL prefix and token of message `id`.
fn download(base: &str, id: i64) -> Value {
    let (token, expires) = tokens::issue(id);
    json!({
        "ogg": format!("{base}{id}.ogg?token={token}"),
        "wav": format!("{base}{id}.wav?token={token}"),
        "token": token,
        "expires": expires,
    })
}

/// `list`: the mailbox's messages, newest first, with download URLs (see
/// [`crate::web::voicemail`]).
pub async fn list(storage: &Storage, mailbox: &str, base: &str) -> Result<Value, VoicemailError> {
    let filter = RecordingFilter {
        kind: Some(RecordingKind::Voicemail),
        owner: Some(mailbox.to_owned()),
        heard: None,
    };
    let rows = storage
        .recordings()
        .list(&filter, Page::first(LIST_LIMIT))
        .await
        .map_err(storage_error)?;
    let messages: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "id": r.id.0,
                "caller": r.meta.caller,
                "duration": r.meta.duration_ms,
                "size": r.meta.size_bytes,
                "created": r.meta.created.as_millis(),
                "heard": r.heard,
                "download": download(base, r.id.0),
            })
        })
        .collect();
    let new = rows.iter().filter(|r| !r.heard).count();
    Ok(json!({
        "voicemail": "list",
        "mailbox": mailbox,
        "new": new,
        "total": rows.len(),
        "messages": messages,
    }))
}

/// Reads the Opus packets of `message` on the blocking pool.
pub async fn packets(dir: &Path, message: &Recording) -> Result<OpusPackets, VoicemailError> {
    let path = message_file(dir, &message.meta.file_path)
        .ok_or_else(|| VoicemailError::new(ERROR_IO_ERROR, "Message file refused"))?;
    tokio::task::spawn_blocking(move || {
        let data = std::fs::read(&path)
            .map_err(|e| VoicemailError::new(ERROR_IO_ERROR, format!("Error reading file: {e}")))?;
        read_ogg_opus(&data)
            .map_err(|e| VoicemailError::new(ERROR_IO_ERROR, format!("Error reading file: {e}")))
    })
    .await
    .map_err(|e| VoicemailError::new(ERROR_UNKNOWN, e.to_string()))?
}

/// `delete`: the row, then the file (a file already gone is fine).
pub async fn delete(
    storage: &Storage,
    dir: &Path,
    message: &Recording,
) -> Result<Value, VoicemailError> {
    storage
        .recordings()
        .delete(message.id)
        .await
        .map_err(storage_error)?;
    if let Some(path) = message_file(dir, &message.meta.file_path) {
        if let Err(e) = tokio::fs::remove_file(&path).await {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(file = %path.display(), error = %e, "voicemail file not removed");
            }
        }
    }
    tracing::info!(recording = %message.id, mailbox = %message.meta.owner, "voicemail message deleted");
    Ok(json!({"voicemail": "event", "result": "deleted", "id": message.id.0}))
}

/// `mark`: heard or unheard.
pub async fn mark(
    storage: &Storage,
    message: &Recording,
    heard: bool,
) -> Result<Value, VoicemailError> {
    let row = storage
        .recordings()
        .set_heard(message.id, heard)
        .await
        .map_err(storage_error)?;
    Ok(json!({"voicemail": "event", "result": "marked", "id": row.id.0, "heard": row.heard}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap_and_reset_on_success() {
        let g = Guard::default();
        let delays: Vec<u128> = (0..8).map(|_| g.failed("1001").as_millis()).collect();
        assert_eq!(delays, [250, 500, 1000, 2000, 4000, 8000, 8000, 8000]);
        assert_eq!(g.failures("1001"), 8);
        assert_eq!(g.failed("1002").as_millis(), 250, "per mailbox");
        g.succeeded("1001");
        assert_eq!(g.failures("1001"), 0);
    }
}
