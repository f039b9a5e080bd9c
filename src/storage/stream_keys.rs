//! RTMP stream keys: the secret an encoder publishes with, and the mountpoint it feeds. Where a
//! mountpoint is re-published to lives in [`super::egress`] (the one egress record).

use sqlx::FromRow;

use super::error::{Result, StorageError};
use super::password::random_token;
use super::pool::{delete_by_id, with_pool, Pool};
use super::types::{Page, Secret, StreamKeyId, Timestamp};
use super::validate;

const ENTITY: &str = "stream key";
/// Random bytes per generated key: 32 bytes, 64 hex characters.
const KEY_BYTES: usize = 32;

/// What it takes to create a stream key (the key itself is generated).
#[derive(Debug, Clone)]
pub struct NewStreamKey {
    /// Unique name, 1..=64 characters.
    pub name: String,
    /// Who the key belongs to (username or team), 1..=64 characters.
    pub owner: String,
    /// Disabled keys are refused at publish time.
    pub enabled: bool,
}

/// A stored stream key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamKey {
    /// Row id.
    pub id: StreamKeyId,
    /// The secret an encoder publishes with (64 random hex characters).
    pub key: Secret,
    /// Unique name.
    pub name: String,
    /// Owner.
    pub owner: String,
    /// Whether publishing is allowed.
    pub enabled: bool,
    /// When it was created.
    pub created: Timestamp,
    /// When an encoder last published with it.
    pub last_used: Option<Timestamp>,
    /// The streaming mountpoint a publish with this key feeds; `None`: the mountpoint whose id
    /// is the key's own id (see [`StreamKey::mountpoint_id`]).
    pub mountpoint: Option<u64>,
}

impl StreamKey {
    /// The id of the streaming mountpoint this key feeds: the one set with
    /// [`StreamKeys::set_mountpoint`], else the key's own row id.
    pub fn mountpoint_id(&self) -> u64 {
        self.mountpoint.unwrap_or(self.id.0.max(0) as u64)
    }
}

#[derive(FromRow)]
struct Row {
    id: i64,
    stream_key: String,
    name: String,
    owner: String,
    enabled: bool,
    created_at_ms: i64,
    last_used_ms: Option<i64>,
    mountpoint_id: Option<i64>,
}

impl Row {
    fn into_key(self) -> StreamKey {
        StreamKey {
            id: StreamKeyId(self.id),
            key: Secret::new(self.stream_key),
            name: self.name,
            owner: self.owner,
            enabled: self.enabled,
            created: Timestamp(self.created_at_ms),
            last_used: self.last_used_ms.map(Timestamp),
            mountpoint: self.mountpoint_id.and_then(|m| u64::try_from(m).ok()),
        }
    }
}

const COLUMNS: &str =
    "id, stream_key, name, owner, enabled, created_at_ms, last_used_ms, mountpoint_id";

fn validate_fields(name: &str, owner: &str) -> Result<()> {
    validate::name("stream key name", name)?;
    validate::name("owner", owner)
}

/// Repository of stream keys.
pub struct StreamKeys<'a> {
    pool: &'a Pool,
}

impl<'a> StreamKeys<'a> {
    pub(crate) fn new(pool: &'a Pool) -> Self {
        StreamKeys { pool }
    }

    /// Creates a key with a fresh random secret. `Invalid` for a bad name or owner,
    /// `AlreadyExists` when the name is taken.
    pub async fn create(&self, new: &NewStreamKey) -> Result<StreamKey> {
        validate_fields(&new.name, &new.owner)?;
        let secret = random_token(KEY_BYTES);
        let sql = format!(
            "INSERT INTO stream_keys (stream_key, name, owner, enabled, created_at_ms) \
             VALUES ($1, $2, $3, $4, $5) RETURNING {COLUMNS}"
        );
        let row: Row = with_pool!(self.pool, p => {
            sqlx::query_as(&sql)
                .bind(&secret)
                .bind(&new.name)
                .bind(&new.owner)
                .bind(new.enabled)
                .bind(Timestamp::now().0)
                .fetch_one(p)
                .await
        })
        .map_err(StorageError::classify(ENTITY))?;
        Ok(row.into_key())
    }

    /// The key with this id; `NotFound` when there is none.
    pub async fn get(&self, id: StreamKeyId) -> Result<StreamKey> {
        let sql = format!("SELECT {COLUMNS} FROM stream_keys WHERE id = $1");
        let row: Row =
            with_pool!(self.pool, p => sqlx::query_as(&sql).bind(id.0).fetch_one(p).await)
                .map_err(StorageError::classify(ENTITY))?;
        Ok(row.into_key())
    }

    /// The key whose secret is `key`: the RTMP ingest check. `NotFound` for an unknown key;
    /// a disabled key is returned and the caller checks [`StreamKey::enabled`].
    pub async fn get_by_key(&self, key: &str) -> Result<StreamKey> {
        let sql = format!("SELECT {COLUMNS} FROM stream_keys WHERE stream_key = $1");
        let row: Row =
            with_pool!(self.pool, p => sqlx::query_as(&sql).bind(key).fetch_one(p).await)
                .map_err(StorageError::classify(ENTITY))?;
        Ok(row.into_key())
    }

    /// Keys ordered by id.
    pub async fn list(&self, page: Page) -> Result<Vec<StreamKey>> {
        let (limit, offset) = page.sql_bounds();
        let sql = format!("SELECT {COLUMNS} FROM stream_keys ORDER BY id LIMIT $1 OFFSET $2");
        let rows: Vec<Row> = with_pool!(self.pool, p => {
            sqlx::query_as(&sql).bind(limit).bind(offset).fetch_all(p).await
        })
        .map_err(StorageError::classify(ENTITY))?;
        Ok(rows.into_iter().map(Row::into_key).collect())
    }

    /// Changes name, owner and enabled flag (the secret stays). `Invalid` for a bad name or
    /// owner, `AlreadyExists` when the name is taken, `NotFound` when the key does not exist.
    pub async fn update(
        &self,
        id: StreamKeyId,
        name: &str,
        owner: &str,
        enabled: bool,
    ) -> Result<StreamKey> {
        validate_fields(name, owner)?;
        let done = with_pool!(self.pool, p => {
            sqlx::query("UPDATE stream_keys SET name = $1, owner = $2, enabled = $3 WHERE id = $4")
                .bind(name)
                .bind(owner)
                .bind(enabled)
                .bind(id.0)
                .execute(p)
                .await
                .map(|r| r.rows_affected())
        })
        .map_err(StorageError::classify(ENTITY))?;
        if done == 0 {
            return Err(StorageError::NotFound { entity: ENTITY });
        }
        self.get(id).await
    }

    /// Binds the key to the streaming mountpoint `mountpoint` (`None`: the mountpoint whose id is
    /// the key's own). `Invalid` for 0 or an id above 2^63 - 1, `NotFound` when the key does not
    /// exist.
    pub async fn set_mountpoint(&self, id: StreamKeyId, mountpoint: Option<u64>) -> Result<()> {
        let value = match mountpoint {
            None => None,
            Some(m) => Some(i64::try_from(m).ok().filter(|m| *m > 0).ok_or_else(|| {
                StorageError::Invalid {
                    field: "mountpoint",
                    reason: "an id from 1 to 2^63 - 1".into(),
                }
            })?),
        };
        let done = with_pool!(self.pool, p => {
            sqlx::query("UPDATE stream_keys SET mountpoint_id = $1 WHERE id = $2")
                .bind(value)
                .bind(id.0)
                .execute(p)
                .await
                .map(|r| r.rows_affected())
        })
        .map_err(StorageError::classify(ENTITY))?;
        if done == 0 {
            return Err(StorageError::NotFound { entity: ENTITY });
        }
        Ok(())
    }

    /// Records that an encoder published with the key at `at`; `NotFound` when the key does
    /// not exist.
    pub async fn touch(&self, id: StreamKeyId, at: Timestamp) -> Result<()> {
        let done = with_pool!(self.pool, p => {
            sqlx::query("UPDATE stream_keys SET last_used_ms = $1 WHERE id = $2")
                .bind(at.0)
                .bind(id.0)
                .execute(p)
                .await
                .map(|r| r.rows_affected())
        })?;
        if done == 0 {
            return Err(StorageError::NotFound { entity: ENTITY });
        }
        Ok(())
    }

    /// Deletes a key; `NotFound` when there is none.
    pub async fn delete(&self, id: StreamKeyId) -> Result<()> {
        delete_by_id(self.pool, "stream_keys", id.0, ENTITY).await
    }
}
