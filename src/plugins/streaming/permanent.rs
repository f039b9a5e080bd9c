//! Permanent mountpoints: `create`/`edit` with `permanent: true` store the mountpoint in the
//! registry, `destroy` with `permanent: true` forgets it, and start-up recreates every stored one
//! (Janus rewrites `janus.plugin.streaming.jcfg` for the same requests).
//!
//! What is stored is the `create` request (secret, PIN and request flags left out) with the
//! edited description, metadata and privacy, plus the argon2 hashes of secret and PIN. A
//! mountpoint whose configuration would not come back the same after a restart (a port picked at
//! random with `port: 0`, a mountpoint created by an RTMP publish) is refused with Janus' code
//! for a plugin that cannot save (470).

use std::net::IpAddr;
use std::sync::Arc;

use serde_json::{json, Map, Value};

use super::create::{self, Hashed};
use super::errors::{self, StreamingError};
use super::mountpoints::{MountpointEntry, Mountpoints};
use crate::auth::HashedSecret;
use crate::storage::Storage;

fn not_persistable(why: &str) -> StreamingError {
    StreamingError::new(
        errors::UNKNOWN_ERROR,
        format!("Can't make this mountpoint permanent: {why}"),
    )
}

/// The port fields of a `create` request: `port`, `rtcpport`, `dataport`... of each `media`
/// item, and the legacy `audioport`, `videoport`, `dataport`, `*rtcpport`.
fn ports(body: &Map<String, Value>) -> Vec<(String, Option<u64>)> {
    let mut out = Vec::new();
    let mut scan = |m: &Map<String, Value>| {
        for (k, v) in m {
            if k.ends_with("port") {
                out.push((k.clone(), v.as_u64()));
            }
        }
    };
    scan(body);
    if let Some(media) = body.get("media").and_then(Value::as_array) {
        for m in media.iter().filter_map(Value::as_object) {
            scan(m);
        }
    }
    out
}

/// Checks, before anything is created, that a `create` with `permanent: true` can be stored:
/// every port is fixed (0 picks one at random, which would change at the next start).
pub fn check_create(body: &Map<String, Value>) -> Result<(), StreamingError> {
    if let Some((field, _)) = ports(body).into_iter().find(|(_, p)| *p == Some(0)) {
        return Err(not_persistable(&format!(
            "{field} 0 picks a random port, which would change at restart"
        )));
    }
    Ok(())
}

/// Checks, before an `edit` with `permanent: true` changes anything, that `mp` can be stored:
/// made by a `create` (not an RTMP publish) with fixed ports.
pub fn check_edit(mp: &MountpointEntry) -> Result<(), StreamingError> {
    match &mp.config {
        Some(config) => check_create(config),
        None => stored_config(mp).map(drop),
    }
}

/// The configuration stored for `mp`: its `create` request with today's settings.
fn stored_config(mp: &MountpointEntry) -> Result<String, StreamingError> {
    let Some(mut config) = mp.config.clone() else {
        return Err(not_persistable(
            "it was created by an RTMP publish (bind the stream key to a created one instead)",
        ));
    };
    let settings = mp.settings();
    config.insert("description".into(), json!(settings.description));
    config.insert("is_private".into(), json!(settings.is_private));
    match settings.metadata {
        Some(m) => config.insert("metadata".into(), json!(m)),
        None => config.remove("metadata"),
    };
    Ok(Value::Object(config).to_string())
}

/// Stores `mp` (creates or replaces its row). Errors (470) when it cannot be stored.
pub async fn save(storage: &Storage, mp: &MountpointEntry) -> Result<(), StreamingError> {
    let config = stored_config(mp)?;
    let settings = mp.settings();
    let phc = |h: Option<HashedSecret>| h.map(HashedSecret::into_phc);
    let (secret, pin) = (phc(settings.secret), phc(settings.pin));
    storage
        .mountpoints()
        .save(mp.id, &config, secret.as_deref(), pin.as_deref())
        .await
        .map_err(|e| {
            tracing::warn!(mountpoint = mp.id, error = %e, "mountpoint not stored");
            StreamingError::new(
                errors::UNKNOWN_ERROR,
                "Error saving the mountpoint to the registry",
            )
        })?;
    tracing::info!(mountpoint = mp.id, "mountpoint stored as permanent");
    Ok(())
}

/// Forgets mountpoint `id` (`destroy` with `permanent: true`); one that was never stored is no
/// error.
pub async fn forget(storage: &Storage, id: u64) -> Result<(), StreamingError> {
    match storage.mountpoints().delete(id).await {
        Ok(()) => {
            tracing::info!(mountpoint = id, "permanent mountpoint forgotten");
            Ok(())
        }
        Err(crate::storage::StorageError::NotFound { .. }) => Ok(()),
        Err(e) => {
            tracing::warn!(mountpoint = id, error = %e, "permanent mountpoint not forgotten");
            Err(StreamingError::new(
                errors::UNKNOWN_ERROR,
                "Error removing the mountpoint from the registry",
            ))
        }
    }
}

/// Recreates every stored mountpoint; one that fails (a port now taken, a row edited by hand)
/// is logged and skipped. Returns how many came back.
pub async fn restore(storage: &Storage, mountpoints: &Arc<Mountpoints>, iface: IpAddr) -> usize {
    let rows = match storage.mountpoints().list().await {
        Ok(rows) => rows,
        Err(e) => {
            tracing::warn!(error = %e, "permanent mountpoints not read");
            return 0;
        }
    };
    let mut restored = 0;
    for row in rows {
        let body = match serde_json::from_str::<Value>(&row.config) {
            Ok(Value::Object(body)) => body,
            _ => {
                tracing::warn!(
                    mountpoint = row.id,
                    "stored mountpoint is not a JSON object"
                );
                continue;
            }
        };
        let hashed = Hashed {
            secret: row.secret_hash.map(HashedSecret::from_phc),
            pin: row.pin_hash.map(HashedSecret::from_phc),
        };
        match create::create(&body, mountpoints, iface, Some(hashed)).await {
            Ok(_) => {
                restored += 1;
                tracing::info!(mountpoint = row.id, "permanent mountpoint restored");
            }
            Err(e) => {
                tracing::warn!(mountpoint = row.id, code = e.code, error = %e.message, "permanent mountpoint not restored")
            }
        }
    }
    restored
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn random_ports_are_not_persistable() {
        let fixed = body(json!({"type": "rtp", "media": [{"type": "audio", "port": 5002}]}));
        assert!(check_create(&fixed).is_ok());
        let random = body(json!({"type": "rtp", "media": [{"type": "audio", "port": 0}]}));
        let e = check_create(&random).unwrap_err();
        assert_eq!(e.code, errors::UNKNOWN_ERROR);
        assert!(e.message.contains("port 0"), "{}", e.message);
        let legacy = body(json!({"type": "rtp", "audio": true, "audioport": 0}));
        assert!(check_create(&legacy).is_err());
        let rtmp = body(json!({"type": "rtmp"}));
        assert!(check_create(&rtmp).is_ok());
    }
}
