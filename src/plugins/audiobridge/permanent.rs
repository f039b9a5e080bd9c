//! Permanent rooms: `create`/`edit` with `permanent: true` store the room in the registry,
//! `destroy` with `permanent: true` forgets it, and start-up recreates every stored one (Janus
//! rewrites `janus.plugin.audiobridge.jcfg` for the same requests).
//!
//! What is stored is the `create` request (secret, PIN and `permanent` left out) with the
//! edited description, privacy and recording folder, the argon2 hashes of secret and PIN (the
//! PIN is also the dial-in PIN), the room's mountpoint (`mountpoint`, `mountpoint_id`) as it
//! is when saved, and the dial-in extension (`sip_extension`) in a column of its own.

use serde_json::{json, Map, Value};

use super::errors::{AbError, AbResult, UNKNOWN_ERROR};
use super::fields::{str_of, Id};
use super::room::Room;
use super::Bridge;
use crate::auth::HashedSecret;
use crate::storage::{RoomRecord, Storage, StorageError};

/// Secret and PIN of a room restored from the registry, already hashed.
pub struct Hashed {
    /// The secret's hash.
    pub secret: Option<HashedSecret>,
    /// The PIN's hash.
    pub pin: Option<HashedSecret>,
}

/// The `create` request as stored: without secret, PIN, room id and request flags.
pub fn create_config(body: &Map<String, Value>) -> Map<String, Value> {
    let mut config = body.clone();
    for k in ["request", "room", "secret", "pin", "permanent"] {
        config.remove(k);
    }
    config
}

/// The registry of `bridge`, or Janus' error for a gateway that cannot save rooms.
pub fn storage<'a>(bridge: &'a Bridge, what: &str) -> AbResult<&'a Storage> {
    bridge.storage.as_ref().ok_or_else(|| {
        AbError::new(
            UNKNOWN_ERROR,
            format!("No configuration file, can't {what} room permanently"),
        )
    })
}

/// Stores `room` (creates or replaces its row).
///
/// Errors: 499 when the registry refuses it.
pub async fn save(storage: &Storage, room: &Room) -> AbResult<()> {
    let (config, secret, pin) = {
        let s = room.settings();
        let mut config = room.config.clone();
        config.insert("description".into(), json!(s.description));
        config.insert("is_private".into(), json!(s.is_private));
        match &s.record_dir {
            Some(d) => config.insert("record_dir".into(), json!(d)),
            None => config.remove("record_dir"),
        };
        // The room's mountpoint as it is now (`create` or a later `mountpoint` request).
        match *room.mountpoint.lock().unwrap_or_else(|e| e.into_inner()) {
            Some(id) => {
                config.insert("mountpoint".into(), json!(true));
                config.insert("mountpoint_id".into(), json!(id));
            }
            None => {
                config.remove("mountpoint");
                config.remove("mountpoint_id");
            }
        }
        (
            Value::Object(config).to_string(),
            s.secret.clone().map(HashedSecret::into_phc),
            s.pin.clone().map(HashedSecret::into_phc),
        )
    };
    let id = room.id.to_string();
    let extension = str_of(&room.config, "sip_extension");
    storage
        .rooms()
        .save(RoomRecord {
            id: &id,
            config: &config,
            secret_hash: secret.as_deref(),
            pin_hash: pin.as_deref(),
            extension,
        })
        .await
        .map_err(|e| {
            tracing::warn!(room = %room.id, error = %e, "room not stored");
            AbError::new(UNKNOWN_ERROR, "Error saving the room to the registry")
        })?;
    tracing::info!(room = %room.id, "audiobridge room stored as permanent");
    Ok(())
}

/// Forgets room `id`; one that was never stored is no error.
///
/// Errors: 499 when the registry fails.
pub async fn forget(storage: &Storage, id: &Id) -> AbResult<()> {
    match storage.rooms().delete(&id.to_string()).await {
        Ok(()) | Err(StorageError::NotFound { .. }) => Ok(()),
        Err(e) => {
            tracing::warn!(room = %id, error = %e, "permanent room not forgotten");
            Err(AbError::new(
                UNKNOWN_ERROR,
                "Error removing the room from the registry",
            ))
        }
    }
}

/// Recreates every stored room; one that fails (a row edited by hand, an id of the other id
/// mode) is logged and skipped. Returns how many came back.
pub async fn restore(bridge: &std::sync::Arc<Bridge>) -> usize {
    let Some(storage) = &bridge.storage else {
        return 0;
    };
    let rows = match storage.rooms().list().await {
        Ok(rows) => rows,
        Err(e) => {
            tracing::warn!(error = %e, "permanent rooms not read");
            return 0;
        }
    };
    let mut restored = 0;
    for row in rows {
        let Ok(Value::Object(mut body)) = serde_json::from_str::<Value>(&row.config) else {
            tracing::warn!(room = %row.id, "stored room is not a JSON object");
            continue;
        };
        let id = if bridge.ids.string_ids {
            json!(row.id)
        } else {
            match row.id.parse::<u64>() {
                Ok(n) => json!(n),
                Err(_) => {
                    tracing::warn!(room = %row.id, "stored room has a string id, string_ids is off");
                    continue;
                }
            }
        };
        body.insert("room".into(), id);
        let hashed = Hashed {
            secret: row.secret_hash.map(HashedSecret::from_phc),
            pin: row.pin_hash.map(HashedSecret::from_phc),
        };
        match super::manage::create_room(bridge, &body, Some(hashed)).await {
            Ok(_) => {
                restored += 1;
                tracing::info!(room = %row.id, "permanent room restored");
            }
            Err(e) => {
                tracing::warn!(room = %row.id, code = e.code, error = %e.message, "permanent room not restored")
            }
        }
    }
    restored
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stored_request_has_no_secret_pin_or_flags() {
        let body = json!({"request": "create", "room": 5, "secret": "s", "pin": "1", "permanent": true,
            "sampling_rate": 48000, "sip_extension": "100"});
        let config = create_config(body.as_object().unwrap());
        assert_eq!(
            Value::Object(config),
            json!({"sampling_rate": 48000, "sip_extension": "100"})
        );
    }
}
