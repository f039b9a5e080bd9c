//! Permanent rooms of the audio bridge: the `create` request that made each one (JSON, secret
//! and PIN left out), the argon2 hashes of its secret and PIN, and the registry account whose
//! calls join it (dial-in extension), so the plugin recreates them at start-up (Janus keeps
//! them in `janus.plugin.audiobridge.jcfg`).

use sqlx::FromRow;

use super::error::{Result, StorageError};
use super::pool::{with_pool, Pool};
use super::types::Timestamp;

const ENTITY: &str = "room";

/// Longest stored configuration, in bytes (the column's CHECK repeats it).
pub const MAX_ROOM_CONFIG_LEN: usize = 65_536;

/// Longest room id, in bytes (numbers in decimal, or string ids).
pub const MAX_ROOM_ID_LEN: usize = 128;

/// A stored room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRoom {
    /// The room id as text: a numeric id in decimal, or the string id.
    pub id: String,
    /// The `create` request as a JSON object, without `secret`, `pin` nor `permanent`.
    pub config: String,
    /// PHC string of the secret's argon2 hash.
    pub secret_hash: Option<String>,
    /// PHC string of the PIN's argon2 hash (also the dial-in PIN).
    pub pin_hash: Option<String>,
    /// Extension of the registry account whose calls join the room.
    pub extension: Option<String>,
    /// When it was first stored.
    pub created: Timestamp,
    /// When it was last written.
    pub updated: Timestamp,
}

/// What [`Rooms::save`] writes.
#[derive(Debug, Clone, Copy)]
pub struct RoomRecord<'a> {
    /// The room id as text.
    pub id: &'a str,
    /// The `create` request as JSON, secret and PIN left out.
    pub config: &'a str,
    /// Argon2 PHC string of the secret.
    pub secret_hash: Option<&'a str>,
    /// Argon2 PHC string of the PIN.
    pub pin_hash: Option<&'a str>,
    /// Dial-in account extension.
    pub extension: Option<&'a str>,
}

#[derive(FromRow)]
struct Row {
    id: String,
    config: String,
    secret_hash: Option<String>,
    pin_hash: Option<String>,
    extension: Option<String>,
    created_at_ms: i64,
    updated_at_ms: i64,
}

impl From<Row> for StoredRoom {
    fn from(r: Row) -> Self {
        StoredRoom {
            id: r.id,
            config: r.config,
            secret_hash: r.secret_hash,
            pin_hash: r.pin_hash,
            extension: r.extension,
            created: Timestamp(r.created_at_ms),
            updated: Timestamp(r.updated_at_ms),
        }
    }
}

const COLUMNS: &str = "id, config, secret_hash, pin_hash, extension, created_at_ms, updated_at_ms";

fn check_id(id: &str) -> Result<()> {
    if id.is_empty() || id.len() > MAX_ROOM_ID_LEN || id.chars().any(char::is_control) {
        return Err(StorageError::Invalid {
            field: "room id",
            reason: format!("1 to {MAX_ROOM_ID_LEN} bytes without control characters"),
        });
    }
    Ok(())
}

/// Repository of permanent rooms.
pub struct Rooms<'a> {
    pool: &'a Pool,
}

impl<'a> Rooms<'a> {
    pub(crate) fn new(pool: &'a Pool) -> Self {
        Rooms { pool }
    }

    /// Stores a room, replacing what was stored under its id (its creation time stays).
    /// `Invalid` for an empty or over-long id, a configuration over 64 KiB, or an extension
    /// outside 1..=64 bytes.
    pub async fn save(&self, room: RoomRecord<'_>) -> Result<StoredRoom> {
        check_id(room.id)?;
        if room.config.len() > MAX_ROOM_CONFIG_LEN {
            return Err(StorageError::Invalid {
                field: "room config",
                reason: format!("at most {MAX_ROOM_CONFIG_LEN} bytes"),
            });
        }
        if room.extension.is_some_and(|e| e.is_empty() || e.len() > 64) {
            return Err(StorageError::Invalid {
                field: "room extension",
                reason: "1 to 64 bytes".into(),
            });
        }
        let now = Timestamp::now().0;
        let sql = format!(
            "INSERT INTO audiobridge_rooms \
             (id, config, secret_hash, pin_hash, extension, created_at_ms, updated_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $6) \
             ON CONFLICT (id) DO UPDATE SET config = excluded.config, \
             secret_hash = excluded.secret_hash, pin_hash = excluded.pin_hash, \
             extension = excluded.extension, updated_at_ms = excluded.updated_at_ms \
             RETURNING {COLUMNS}"
        );
        let row: Row = with_pool!(self.pool, p => {
            sqlx::query_as(&sql)
                .bind(room.id)
                .bind(room.config)
                .bind(room.secret_hash)
                .bind(room.pin_hash)
                .bind(room.extension)
                .bind(now)
                .fetch_one(p)
                .await
        })
        .map_err(StorageError::classify(ENTITY))?;
        Ok(row.into())
    }

    /// Every stored room, by id.
    pub async fn list(&self) -> Result<Vec<StoredRoom>> {
        let sql = format!("SELECT {COLUMNS} FROM audiobridge_rooms ORDER BY id");
        let rows: Vec<Row> = with_pool!(self.pool, p => {
            sqlx::query_as(&sql).fetch_all(p).await
        })
        .map_err(StorageError::classify(ENTITY))?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// Room `id`; `NotFound` when it is not stored.
    pub async fn get(&self, id: &str) -> Result<StoredRoom> {
        check_id(id)?;
        let sql = format!("SELECT {COLUMNS} FROM audiobridge_rooms WHERE id = $1");
        let row: Option<Row> = with_pool!(self.pool, p => {
            sqlx::query_as(&sql).bind(id).fetch_optional(p).await
        })
        .map_err(StorageError::classify(ENTITY))?;
        row.map(Into::into)
            .ok_or(StorageError::NotFound { entity: ENTITY })
    }

    /// Forgets room `id`; `NotFound` when it was not stored.
    pub async fn delete(&self, id: &str) -> Result<()> {
        check_id(id)?;
        let deleted = with_pool!(self.pool, p => {
            sqlx::query("DELETE FROM audiobridge_rooms WHERE id = $1")
                .bind(id)
                .execute(p)
                .await
                .map(|r| r.rows_affected())
        })
        .map_err(StorageError::classify(ENTITY))?;
        if deleted == 0 {
            return Err(StorageError::NotFound { entity: ENTITY });
        }
        Ok(())
    }
}
