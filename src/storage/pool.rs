//! The connection pool: one enum over the two concrete sqlx pools.
//!
//! Why an enum and not `sqlx::Any`: `Any` only carries a handful of value types, needs drivers
//! installed at run time, maps booleans and integers differently per backend and hides the
//! backend from error classification. With an enum, every query is written once (the SQL text is
//! shared: both dialects accept `$N` placeholders, `RETURNING`, `LIMIT/OFFSET`) and the
//! [`with_pool!`] macro compiles the same body once per concrete driver, so each arm is fully
//! typed and checked by the compiler against that driver.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

use super::error::{Result, StorageError};

/// Which SQL engine a [`super::Storage`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite file (the default).
    Sqlite,
    /// A PostgreSQL server, for several nodes sharing one registry.
    Postgres,
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        })
    }
}

/// A pool of connections to one of the supported engines.
#[derive(Clone, Debug)]
pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs `$body` with `$p` bound to the concrete pool, compiling it once per backend.
macro_rules! with_pool {
    ($pool:expr, $p:ident => $body:expr) => {
        match $pool {
            $crate::storage::pool::Pool::Sqlite($p) => $body,
            $crate::storage::pool::Pool::Postgres($p) => $body,
        }
    };
}
pub(crate) use with_pool;

/// Deletes row `id` of `table`: `NotFound` when there is none, `InUse` while other rows still
/// refer to it. `table` is one of the registry's own table names, never input.
pub(crate) async fn delete_by_id(
    pool: &Pool,
    table: &'static str,
    id: i64,
    entity: &'static str,
) -> Result<()> {
    let sql = format!("DELETE FROM {table} WHERE id = $1");
    let deleted = with_pool!(pool, p => sqlx::query(&sql).bind(id).execute(p).await.map(|r| r.rows_affected()))
        .map_err(StorageError::in_use(entity))?;
    if deleted == 0 {
        return Err(StorageError::NotFound { entity });
    }
    Ok(())
}

/// How long a connection waits for a lock held by another writer before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

impl Pool {
    /// Opens a pool for `url`; with `create`, a missing SQLite file (and its directory) is
    /// created, otherwise it is an error (inspection must not leave empty files behind a typo).
    pub(crate) async fn connect(url: &str, create: bool) -> Result<Pool> {
        match backend_of(url)? {
            Backend::Postgres => {
                let pool = PgPoolOptions::new()
                    .max_connections(8)
                    .acquire_timeout(Duration::from_secs(30))
                    .connect(url)
                    .await?;
                Ok(Pool::Postgres(pool))
            }
            Backend::Sqlite => {
                let options = SqliteConnectOptions::from_str(url)?
                    .create_if_missing(create)
                    .journal_mode(SqliteJournalMode::Wal)
                    .foreign_keys(true)
                    .busy_timeout(BUSY_TIMEOUT);
                let path = options.get_filename();
                if create {
                    prepare_sqlite_file(path)?;
                } else if !path.exists() && path.as_os_str() != ":memory:" {
                    return Err(StorageError::Io {
                        path: path.display().to_string(),
                        source: std::io::Error::new(
                            std::io::ErrorKind::NotFound,
                            "no database there (it is created by `bifrons migrate` or at start-up)",
                        ),
                    });
                }
                let pool = SqlitePoolOptions::new()
                    .max_connections(4)
                    .connect_with(options)
                    .await?;
                Ok(Pool::Sqlite(pool))
            }
        }
    }

    pub(crate) fn backend(&self) -> Backend {
        match self {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    pub(crate) async fn close(&self) {
        with_pool!(self, p => p.close().await)
    }
}

/// Tells the backend from the URL scheme.
pub fn backend_of(url: &str) -> Result<Backend> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Backend::Postgres)
    } else if url.starts_with("sqlite:") {
        Ok(Backend::Sqlite)
    } else {
        Err(StorageError::UnsupportedUrl(url.to_owned()))
    }
}

/// Creates the database directory and an empty file readable by its owner only, so the trunk
/// credentials stored in it are not world-readable. SQLite gives its `-wal`/`-shm` files the
/// database file's permissions.
fn prepare_sqlite_file(path: &Path) -> Result<()> {
    let io = |source| StorageError::Io {
        path: path.display().to_string(),
        source,
    };
    if path.as_os_str().is_empty() || path.as_os_str() == ":memory:" || path.exists() {
        return Ok(());
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let mut open = std::fs::OpenOptions::new();
    open.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut open, 0o600);
    match open.open(path) {
        Ok(_) => {
            tracing::info!(path = %path.display(), "created new SQLite registry");
            Ok(())
        }
        // Another process created it between the check and the open: fine.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(io(e)),
    }
}
