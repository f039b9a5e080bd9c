//! Named RTMP egress targets: where a mountpoint is re-published to (restreaming to a CDN or
//! a social platform). The destination's stream key is a [`Secret`] stored as given, like trunk
//! digest passwords (the RTMP client must send it; see the storage README), and its `Debug`
//! prints `***`.

use sqlx::FromRow;

use super::error::{Result, StorageError};
use super::pool::{delete_by_id, with_pool, Pool};
use super::types::{Page, Secret, Timestamp};
use super::validate;

const ENTITY: &str = "egress target";

/// Row id of an egress target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EgressId(pub i64);

/// The operator's settings of an egress target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EgressSpec {
    /// Unique name, 1..=64 characters.
    pub name: String,
    /// Destination application, `rtmp://host[:port]/app` or `rtmps://…`.
    pub url: String,
    /// The destination's stream key, when it needs one.
    pub key: Option<Secret>,
    /// The mountpoint whose media is sent (its id or name), 1..=64 characters.
    pub mountpoint: String,
    /// Disabled targets are kept but not started.
    pub enabled: bool,
}

impl EgressSpec {
    /// `Invalid` naming the field: `name`; `egress url` or `egress key` as
    /// [`validate::egress_destination`] says (scheme `rtmp`/`rtmps`, a host, an application
    /// path; a key unless the URL ends with the stream name); `mountpoint` (1..=64
    /// characters; it need not exist yet, mountpoints may be created at run time).
    pub fn validate(&self) -> Result<()> {
        validate::name("name", &self.name)?;
        validate::egress_destination(&self.url, self.key.as_ref().map(Secret::expose))?;
        validate::name("mountpoint", &self.mountpoint)
    }
}

/// A stored egress target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Egress {
    /// Row id.
    pub id: EgressId,
    /// Its settings.
    pub spec: EgressSpec,
    /// When it was created.
    pub created: Timestamp,
}

#[derive(FromRow)]
struct Row {
    id: i64,
    name: String,
    url: String,
    target_key: Option<String>,
    mountpoint: String,
    enabled: bool,
    created_at_ms: i64,
}

impl From<Row> for Egress {
    fn from(r: Row) -> Egress {
        Egress {
            id: EgressId(r.id),
            spec: EgressSpec {
                name: r.name,
                url: r.url,
                key: r.target_key.map(Secret::new),
                mountpoint: r.mountpoint,
                enabled: r.enabled,
            },
            created: Timestamp(r.created_at_ms),
        }
    }
}

const COLUMNS: &str = "id, name, url, target_key, mountpoint, enabled, created_at_ms";

/// Repository of egress targets.
pub struct Egresses<'a> {
    pool: &'a Pool,
}

impl<'a> Egresses<'a> {
    pub(crate) fn new(pool: &'a Pool) -> Self {
        Egresses { pool }
    }

    /// Creates a target. `Invalid` as [`EgressSpec::validate`] says, `AlreadyExists` when the
    /// name is taken.
    pub async fn create(&self, spec: &EgressSpec) -> Result<Egress> {
        spec.validate()?;
        let sql = format!(
            "INSERT INTO egress_targets (name, url, target_key, mountpoint, enabled, created_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING {COLUMNS}"
        );
        let row: Row = with_pool!(self.pool, p => {
            sqlx::query_as(&sql)
                .bind(&spec.name)
                .bind(&spec.url)
                .bind(spec.key.as_ref().map(Secret::expose))
                .bind(&spec.mountpoint)
                .bind(spec.enabled)
                .bind(Timestamp::now().0)
                .fetch_one(p)
                .await
        })
        .map_err(StorageError::classify(ENTITY))?;
        Ok(row.into())
    }

    /// The target with this id; `NotFound` when there is none.
    pub async fn get(&self, id: EgressId) -> Result<Egress> {
        let sql = format!("SELECT {COLUMNS} FROM egress_targets WHERE id = $1");
        let row: Row =
            with_pool!(self.pool, p => sqlx::query_as(&sql).bind(id.0).fetch_one(p).await)
                .map_err(StorageError::classify(ENTITY))?;
        Ok(row.into())
    }

    /// The target with this name; `NotFound` when there is none.
    pub async fn get_by_name(&self, name: &str) -> Result<Egress> {
        let sql = format!("SELECT {COLUMNS} FROM egress_targets WHERE name = $1");
        let row: Row =
            with_pool!(self.pool, p => sqlx::query_as(&sql).bind(name).fetch_one(p).await)
                .map_err(StorageError::classify(ENTITY))?;
        Ok(row.into())
    }

    /// Targets ordered by id.
    pub async fn list(&self, page: Page) -> Result<Vec<Egress>> {
        let (limit, offset) = page.sql_bounds();
        let sql = format!("SELECT {COLUMNS} FROM egress_targets ORDER BY id LIMIT $1 OFFSET $2");
        let rows: Vec<Row> = with_pool!(self.pool, p => {
            sqlx::query_as(&sql).bind(limit).bind(offset).fetch_all(p).await
        })
        .map_err(StorageError::classify(ENTITY))?;
        Ok(rows.into_iter().map(Egress::from).collect())
    }

    /// Replaces every setting of a target. Fails like [`Egresses::create`], and with
    /// `NotFound` when the target does not exist.
    pub async fn update(&self, id: EgressId, spec: &EgressSpec) -> Result<Egress> {
        spec.validate()?;
        let sql = format!(
            "UPDATE egress_targets SET name = $1, url = $2, target_key = $3, mountpoint = $4, \
             enabled = $5 WHERE id = $6 RETURNING {COLUMNS}"
        );
        let row: Row = with_pool!(self.pool, p => {
            sqlx::query_as(&sql)
                .bind(&spec.name)
                .bind(&spec.url)
                .bind(spec.key.as_ref().map(Secret::expose))
                .bind(&spec.mountpoint)
                .bind(spec.enabled)
                .bind(id.0)
                .fetch_one(p)
                .await
        })
        .map_err(StorageError::classify(ENTITY))?;
        Ok(row.into())
    }

    /// Deletes a target; `NotFound` when there is none.
    pub async fn delete(&self, id: EgressId) -> Result<()> {
        delete_by_id(self.pool, "egress_targets", id.0, ENTITY).await
    }
}
