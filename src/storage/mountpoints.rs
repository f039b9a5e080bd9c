//! Permanent mountpoints of the streaming plugin: the `create` request that made each one (JSON,
//! secret and PIN left out) and the argon2 hashes of its secret and PIN, so the plugin recreates
//! them at start-up (Janus keeps them in `janus.plugin.streaming.jcfg`).

use sqlx::FromRow;

use super::error::{Result, StorageError};
use super::pool::{delete_by_id, with_pool, Pool};
use super::types::Timestamp;

const ENTITY: &str = "mountpoint";

/// Longest stored configuration, in bytes (the column's CHECK repeats it).
pub const MAX_CONFIG_LEN: usize = 65_536;

/// A stored mountpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMountpoint {
    /// Janus id, 1 to 2^63 - 1.
    pub id: u64,
    /// The `create` request as a JSON object, without `secret`, `pin` nor `permanent`.
    pub config: String,
    /// PHC string of the secret's argon2 hash.
    pub secret_hash: Option<String>,
    /// PHC string of the PIN's argon2 hash.
    pub pin_hash: Option<String>,
    /// When it was first stored.
    pub created: Timestamp,
    /// When it was last written.
    pub updated: Timestamp,
}

#[derive(FromRow)]
struct Row {
    id: i64,
    config: String,
    secret_hash: Option<String>,
    pin_hash: Option<String>,
    created_at_ms: i64,
    updated_at_ms: i64,
}

impl From<Row> for StoredMountpoint {
    fn from(r: Row) -> Self {
        StoredMountpoint {
            id: r.id.max(0) as u64,
            config: r.config,
            secret_hash: r.secret_hash,
            pin_hash: r.pin_hash,
            created: Timestamp(r.created_at_ms),
            updated: Timestamp(r.updated_at_ms),
        }
    }
}

fn row_id(id: u64) -> Result<i64> {
    i64::try_from(id)
        .ok()
        .filter(|i| *i > 0)
        .ok_or_else(|| StorageError::Invalid {
            field: "mountpoint id",
            reason: "an id from 1 to 2^63 - 1".into(),
        })
}

/// Repository of permanent mountpoints.
pub struct Mountpoints<'a> {
    pool: &'a Pool,
}

impl<'a> Mountpoints<'a> {
    pub(crate) fn new(pool: &'a Pool) -> Self {
        Mountpoints { pool }
    }

    /// Stores mountpoint `id`, replacing what was stored under that id (its creation time
    /// stays). `Invalid` for id 0 or above 2^63 - 1, or a configuration over 64 KiB.
    pub async fn save(
        &self,
        id: u64,
        config: &str,
        secret_hash: Option<&str>,
        pin_hash: Option<&str>,
    ) -> Result<StoredMountpoint> {
        let id = row_id(id)?;
        if config.len() > MAX_CONFIG_LEN {
            return Err(StorageError::Invalid {
                field: "mountpoint config",
                reason: format!("at most {MAX_CONFIG_LEN} bytes"),
            });
        }
        let now = Timestamp::now().0;
        let row: Row = with_pool!(self.pool, p => {
            sqlx::query_as(
                "INSERT INTO streaming_mountpoints \
                 (id, config, secret_hash, pin_hash, created_at_ms, updated_at_ms) \
                 VALUES ($1, $2, $3, $4, $5, $5) \
                 ON CONFLICT (id) DO UPDATE SET config = excluded.config, \
                 secret_hash = excluded.secret_hash, pin_hash = excluded.pin_hash, \
                 updated_at_ms = excluded.updated_at_ms \
                 RETURNING id, config, secret_hash, pin_hash, created_at_ms, updated_at_ms",
            )
            .bind(id)
            .bind(config)
            .bind(secret_hash)
            .bind(pin_hash)
            .bind(now)
            .fetch_one(p)
            .await
        })
        .map_err(StorageError::classify(ENTITY))?;
        Ok(row.into())
    }

    /// Every stored mountpoint, by id.
    pub async fn list(&self) -> Result<Vec<StoredMountpoint>> {
        let rows: Vec<Row> = with_pool!(self.pool, p => {
            sqlx::query_as(
                "SELECT id, config, secret_hash, pin_hash, created_at_ms, updated_at_ms \
                 FROM streaming_mountpoints ORDER BY id",
            )
            .fetch_all(p)
            .await
        })
        .map_err(StorageError::classify(ENTITY))?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// Whether mountpoint `id` is stored.
    pub async fn exists(&self, id: u64) -> Result<bool> {
        let id = row_id(id)?;
        let found: Option<i64> = with_pool!(self.pool, p => {
            sqlx::query_scalar("SELECT id FROM streaming_mountpoints WHERE id = $1")
                .bind(id)
                .fetch_optional(p)
                .await
        })
        .map_err(StorageError::classify(ENTITY))?;
        Ok(found.is_some())
    }

    /// Forgets mountpoint `id`; `NotFound` when it was not stored.
    pub async fn delete(&self, id: u64) -> Result<()> {
        delete_by_id(self.pool, "streaming_mountpoints", row_id(id)?, ENTITY).await
    }
}
