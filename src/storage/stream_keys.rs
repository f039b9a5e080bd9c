//! RTMP stream keys, and the egress targets a mountpoint fed by a key is re-published to.

use sqlx::FromRow;

use super::error::{Result, StorageError};
use super::password::random_token;
use super::pool::{delete_by_id, with_pool, Pool};
use super::types::{Page, Secret, StreamKeyId, Timestamp};
use super::validate;

const ENTITY: &str = "stream key";
const TARGET_ENTITY: &str = "egress target";

/// Random bytes per generated key: 32 bytes, 64 hex characters.
const KEY_BYTES: usize = 32;

/// Most egress targets a key may carry.
pub const MAX_EGRESS_TARGETS: usize = 32;

/// An RTMP destination a mountpoint is re-published to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EgressTarget {
    /// Mountpoint whose media is sent.
    pub mountpoint: String,
    /// `rtmp://` or `rtmps://` URL of the destination application.
    pub url: String,
    /// The destination's stream key, if it needs one.
    pub key: Option<Secret>,
}

impl EgressTarget {
    fn validate(&self) -> Result<()> {
        validate::name("mountpoint", &self.mountpoint)?;
        validate::rtmp_url("egress url", &self.url)?;
        if let Some(k) = &self.key {
            validate::bounded_text("egress key", k.expose(), validate::MAX_TEXT_LEN)?;
        }
        Ok(())
    }
}

/// What it takes to create a stream key (the key itself is generated).
#[derive(Debug, Clone)]
pub struct NewStreamKey {
    /// Unique name, 1..=64 characters.
    pub name: String,
    /// Who the key belongs to (username or team), 1..=64 characters.
    pub owner: String,
    /// Disabled keys are refused at publish time.
    pub enabled: bool,
    /// Re-publishing destinations.
    pub egress: Vec<EgressTarget>,
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
    /// Re-publishing destinations, in insertion order.
    pub egress: Vec<EgressTarget>,
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

#[derive(FromRow)]
struct TargetRow {
    stream_key_id: i64,
    mountpoint: String,
    url: String,
    target_key: Option<String>,
}

impl Row {
    fn into_key(self, egress: Vec<EgressTarget>) -> StreamKey {
        StreamKey {
            id: StreamKeyId(self.id),
            key: Secret::new(self.stream_key),
            name: self.name,
            owner: self.owner,
            enabled: self.enabled,
            created: Timestamp(self.created_at_ms),
            last_used: self.last_used_ms.map(Timestamp),
            egress,
            mountpoint: self.mountpoint_id.and_then(|m| u64::try_from(m).ok()),
        }
    }
}

impl From<TargetRow> for EgressTarget {
    fn from(t: TargetRow) -> Self {
        EgressTarget {
            mountpoint: t.mountpoint,
            url: t.url,
            key: t.target_key.map(Secret::new),
        }
    }
}

const COLUMNS: &str =
    "id, stream_key, name, owner, enabled, created_at_ms, last_used_ms, mountpoint_id";

fn validate_fields(name: &str, owner: &str, egress: &[EgressTarget]) -> Result<()> {
    validate::name("stream key name", name)?;
    validate::name("owner", owner)?;
    validate_egress(egress)
}

fn validate_egress(egress: &[EgressTarget]) -> Result<()> {
    if egress.len() > MAX_EGRESS_TARGETS {
        return Err(StorageError::Invalid {
            field: "egress targets",
            reason: format!("at most {MAX_EGRESS_TARGETS}"),
        });
    }
    egress.iter().try_for_each(EgressTarget::validate)
}

/// Inserts `targets` for key `$id` inside the caller's transaction `$tx`.
macro_rules! insert_targets {
    ($tx:expr, $id:expr, $targets:expr) => {
        async {
            for t in $targets {
                sqlx::query(
                    "INSERT INTO stream_egress_targets (stream_key_id, mountpoint, url, target_key) \
                     VALUES ($1, $2, $3, $4)",
                )
                .bind($id)
                .bind(&t.mountpoint)
                .bind(&t.url)
                .bind(t.key.as_ref().map(Secret::expose))
                .execute(&mut *$tx)
                .await
                .map_err(StorageError::classify(TARGET_ENTITY))?;
            }
            Ok::<(), StorageError>(())
        }
    };
}

/// Repository of stream keys.
pub struct StreamKeys<'a> {
    pool: &'a Pool,
}

impl<'a> StreamKeys<'a> {
    pub(crate) fn new(pool: &'a Pool) -> Self {
        StreamKeys { pool }
    }

    /// Creates a key with a fresh random secret, and its egress targets, in one transaction.
    /// `Invalid` for a bad name, owner or target (or more than 32 targets),
    /// `AlreadyExists` when the name is taken or a target is listed twice.
    pub async fn create(&self, new: &NewStreamKey) -> Result<StreamKey> {
        validate_fields(&new.name, &new.owner, &new.egress)?;
        let secret = random_token(KEY_BYTES);
        let sql = format!(
            "INSERT INTO stream_keys (stream_key, name, owner, enabled, created_at_ms) \
             VALUES ($1, $2, $3, $4, $5) RETURNING {COLUMNS}"
        );
        let row: Row = with_pool!(self.pool, p => {
            let mut tx = p.begin().await?;
            let row: Row = sqlx::query_as(&sql)
                .bind(&secret)
                .bind(&new.name)
                .bind(&new.owner)
                .bind(new.enabled)
                .bind(Timestamp::now().0)
                .fetch_one(&mut *tx)
                .await
                .map_err(StorageError::classify(ENTITY))?;
            insert_targets!(tx, row.id, &new.egress).await?;
            tx.commit().await?;
            row
        });
        Ok(row.into_key(new.egress.clone()))
    }

    /// The key with this id; `NotFound` when there is none.
    pub async fn get(&self, id: StreamKeyId) -> Result<StreamKey> {
        let sql = format!("SELECT {COLUMNS} FROM stream_keys WHERE id = $1");
        let row: Row =
            with_pool!(self.pool, p => sqlx::query_as(&sql).bind(id.0).fetch_one(p).await)
                .map_err(StorageError::classify(ENTITY))?;
        self.with_targets(vec![row]).await.map(|mut v| v.remove(0))
    }

    /// The key whose secret is `key`: the RTMP ingest check. `NotFound` for an unknown key;
    /// a disabled key is returned and the caller checks [`StreamKey::enabled`].
    pub async fn get_by_key(&self, key: &str) -> Result<StreamKey> {
        let sql = format!("SELECT {COLUMNS} FROM stream_keys WHERE stream_key = $1");
        let row: Row =
            with_pool!(self.pool, p => sqlx::query_as(&sql).bind(key).fetch_one(p).await)
                .map_err(StorageError::classify(ENTITY))?;
        self.with_targets(vec![row]).await.map(|mut v| v.remove(0))
    }

    /// Keys ordered by id, with their egress targets.
    pub async fn list(&self, page: Page) -> Result<Vec<StreamKey>> {
        let (limit, offset) = page.sql_bounds();
        let sql = format!("SELECT {COLUMNS} FROM stream_keys ORDER BY id LIMIT $1 OFFSET $2");
        let rows: Vec<Row> = with_pool!(self.pool, p => {
            sqlx::query_as(&sql).bind(limit).bind(offset).fetch_all(p).await
        })
        .map_err(StorageError::classify(ENTITY))?;
        self.with_targets(rows).await
    }

    /// Attaches egress targets to `rows` with one query for the whole page.
    async fn with_targets(&self, rows: Vec<Row>) -> Result<Vec<StreamKey>> {
        let (Some(lo), Some(hi)) = (
            rows.iter().map(|r| r.id).min(),
            rows.iter().map(|r| r.id).max(),
        ) else {
            return Ok(Vec::new());
        };
        let targets: Vec<TargetRow> = with_pool!(self.pool, p => {
            sqlx::query_as(
                "SELECT stream_key_id, mountpoint, url, target_key FROM stream_egress_targets \
                 WHERE stream_key_id BETWEEN $1 AND $2 ORDER BY id",
            )
            .bind(lo)
            .bind(hi)
            .fetch_all(p)
            .await
        })
        .map_err(StorageError::classify(TARGET_ENTITY))?;
        let mut by_key: std::collections::HashMap<i64, Vec<EgressTarget>> = Default::default();
        for t in targets {
            by_key.entry(t.stream_key_id).or_default().push(t.into());
        }
        Ok(rows
            .into_iter()
            .map(|r| {
                let egress = by_key.remove(&r.id).unwrap_or_default();
                r.into_key(egress)
            })
            .collect())
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
        validate_fields(name, owner, &[])?;
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

    /// Replaces the egress targets of a key atomically: either all new targets or the old ones.
    /// `Invalid` for a bad target or too many, `AlreadyExists` for a target listed twice,
    /// `NotFound` when the key does not exist.
    pub async fn set_egress(&self, id: StreamKeyId, targets: &[EgressTarget]) -> Result<StreamKey> {
        validate_egress(targets)?;
        with_pool!(self.pool, p => {
            let mut tx = p.begin().await?;
            let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM stream_keys WHERE id = $1")
                .bind(id.0)
                .fetch_optional(&mut *tx)
                .await?;
            if exists.is_none() {
                return Err(StorageError::NotFound { entity: ENTITY });
            }
            sqlx::query("DELETE FROM stream_egress_targets WHERE stream_key_id = $1")
                .bind(id.0)
                .execute(&mut *tx)
                .await?;
            insert_targets!(tx, id.0, targets).await?;
            tx.commit().await?;
        });
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

    /// Deletes a key and its egress targets; `NotFound` when there is none.
    pub async fn delete(&self, id: StreamKeyId) -> Result<()> {
        delete_by_id(self.pool, "stream_keys", id.0, ENTITY).await
    }
}
