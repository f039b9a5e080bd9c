//! Schema migrations, one directory per dialect, embedded into the binary at build time.
//!
//! Before migrating, the highest version recorded in the database is compared with the highest
//! version this binary knows: a database written by a newer Bifrons is refused instead of being
//! half-understood.

use sqlx::migrate::Migrator;

use super::error::{Result, StorageError};
use super::pool::{with_pool, Pool};

static SQLITE: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES: Migrator = sqlx::migrate!("./migrations/postgres");

/// Where a database stands relative to this binary's migrations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaStatus {
    /// Highest migration applied to the database (`None`: empty database).
    pub applied: Option<i64>,
    /// Highest migration this binary carries.
    pub latest: i64,
    /// Migrations this binary would apply.
    pub pending: usize,
}

impl SchemaStatus {
    /// True when the database has every migration this binary knows.
    pub fn is_current(&self) -> bool {
        self.applied == Some(self.latest)
    }
}

fn migrator(pool: &Pool) -> &'static Migrator {
    match pool {
        Pool::Sqlite(_) => &SQLITE,
        Pool::Postgres(_) => &POSTGRES,
    }
}

/// Reads the schema state without changing anything.
pub(crate) async fn status(pool: &Pool) -> Result<SchemaStatus> {
    let m = migrator(pool);
    let latest = m.iter().map(|m| m.version).max().unwrap_or(0);
    let applied_versions = applied_versions(pool).await?;
    let applied = applied_versions.iter().copied().max();
    let pending = m
        .iter()
        .filter(|m| !applied_versions.contains(&m.version))
        .count();
    Ok(SchemaStatus {
        applied,
        latest,
        pending,
    })
}

/// Versions recorded as successfully applied; empty when the bookkeeping table does not exist.
async fn applied_versions(pool: &Pool) -> Result<Vec<i64>> {
    let exists: bool = match pool {
        Pool::Sqlite(p) => sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
        )
        .fetch_one(p)
        .await?
            > 0,
        Pool::Postgres(p) => {
            sqlx::query_scalar::<_, bool>("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
                .fetch_one(p)
                .await?
        }
    };
    if !exists {
        return Ok(Vec::new());
    }
    let versions = with_pool!(pool, p => {
        sqlx::query_scalar::<_, i64>("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
            .fetch_all(p)
            .await?
    });
    Ok(versions)
}

/// Applies pending migrations; returns how many were applied. Refuses newer schemas.
pub(crate) async fn run(pool: &Pool) -> Result<usize> {
    let before = status(pool).await?;
    if let Some(found) = before.applied.filter(|&v| v > before.latest) {
        return Err(StorageError::SchemaTooNew {
            found,
            supported: before.latest,
        });
    }
    let m = migrator(pool);
    with_pool!(pool, p => m.run(p).await?);
    if before.pending > 0 {
        tracing::info!(
            applied = before.pending,
            version = before.latest,
            "registry schema migrated"
        );
    }
    Ok(before.pending)
}
