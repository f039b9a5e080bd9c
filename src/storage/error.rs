//! The one error type of the registry, with the database's own errors classified into the
//! cases callers act on (already exists, not found, invalid input, schema too new).

use sqlx::error::ErrorKind;

/// Everything a registry call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// A row with the same unique key (name, username, extension, key, path) exists.
    #[error("{entity} already exists")]
    AlreadyExists {
        /// What kind of row clashed, e.g. "user".
        entity: &'static str,
    },
    /// The requested row does not exist.
    #[error("{entity} not found")]
    NotFound {
        /// What kind of row was asked for.
        entity: &'static str,
    },
    /// The row is still referenced by others (e.g. a trunk that accounts use) and was kept.
    #[error("{entity} is still in use")]
    InUse {
        /// What kind of row could not be deleted.
        entity: &'static str,
    },
    /// Input failed validation (overlong name, invalid URI, ...); nothing was written.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The offending field.
        field: &'static str,
        /// Why it was refused.
        reason: String,
    },
    /// The database was migrated by a newer Bifrons; running against it could corrupt it.
    #[error(
        "the database schema is version {found}, newer than the latest this Bifrons knows ({supported}); \
         upgrade Bifrons or point --database-url / BIFRONS_DATABASE_URL at another database"
    )]
    SchemaTooNew {
        /// Highest migration version recorded in the database.
        found: i64,
        /// Highest migration version compiled into this binary.
        supported: i64,
    },
    /// The database URL names neither SQLite nor PostgreSQL.
    #[error("unsupported database URL {0:?}: expected sqlite://PATH or postgres://...")]
    UnsupportedUrl(String),
    /// A stored value no longer parses (edited by hand or by a newer version).
    #[error("corrupt {entity} row: {reason}")]
    Corrupt {
        /// Table the row is in.
        entity: &'static str,
        /// What failed to parse.
        reason: String,
    },
    /// Applying migrations failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Password hashing failed (should not happen with valid parameters).
    #[error("password hashing failed: {0}")]
    Hash(String),
    /// Preparing the database directory or file failed.
    #[error("cannot prepare database file {path}: {source}")]
    Io {
        /// The path being prepared.
        path: String,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// Any other database error (connection lost, disk full, ...).
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
}

/// Result of registry calls.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;

impl StorageError {
    /// Classifies a sqlx error raised while working on `entity` rows.
    ///
    /// Unique violations become `AlreadyExists`, missing rows `NotFound`, CHECK violations
    /// `Invalid`, foreign-key violations `NotFound` of the referenced row (inserts/updates;
    /// deletes map them to `InUse` themselves, see [`StorageError::in_use`]).
    pub(crate) fn classify(entity: &'static str) -> impl Fn(sqlx::Error) -> StorageError {
        move |e| match &e {
            sqlx::Error::RowNotFound => StorageError::NotFound { entity },
            sqlx::Error::Database(db) if is_foreign_key(db.as_ref()) => StorageError::NotFound {
                entity: "referenced row",
            },
            sqlx::Error::Database(db) => match db.kind() {
                ErrorKind::UniqueViolation => StorageError::AlreadyExists { entity },
                ErrorKind::CheckViolation | ErrorKind::NotNullViolation => StorageError::Invalid {
                    field: entity,
                    reason: db.message().to_owned(),
                },
                _ => StorageError::Database(e),
            },
            _ => StorageError::Database(e),
        }
    }

    /// Like [`StorageError::classify`] for deletes, where a foreign-key violation means the row
    /// is still referenced.
    pub(crate) fn in_use(entity: &'static str) -> impl Fn(sqlx::Error) -> StorageError {
        move |e| match &e {
            sqlx::Error::Database(db) if is_foreign_key(db.as_ref()) => {
                StorageError::InUse { entity }
            }
            _ => StorageError::classify(entity)(e),
        }
    }
}

/// SQLite reports `ON DELETE RESTRICT` through its trigger machinery (extended code 1811,
/// `SQLITE_CONSTRAINT_TRIGGER`), which sqlx does not classify as a foreign-key violation; the
/// message is the same for every foreign-key failure.
fn is_foreign_key(db: &dyn sqlx::error::DatabaseError) -> bool {
    db.kind() == ErrorKind::ForeignKeyViolation
        || db.message().contains("FOREIGN KEY constraint failed")
}

impl From<sqlx::Error> for StorageError {
    fn from(e: sqlx::Error) -> Self {
        StorageError::Database(e)
    }
}
