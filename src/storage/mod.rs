//! The registry: admin users, SIP trunks and accounts, stream keys and recordings, kept in
//! SQLite (embedded default) or PostgreSQL (shared by several nodes).
//!
//! [`Storage::open`] connects, creates the SQLite file on first start and applies migrations;
//! the typed repositories ([`Storage::users`], [`Storage::trunks`], [`Storage::accounts`],
//! [`Storage::stream_keys`], [`Storage::recordings`]) are the only way to read or write rows:
//! no SQL lives outside this module. See `src/storage/README.md` for the design notes.

mod accounts;
mod egress;
mod error;
mod mailboxes;
mod migrate;
mod mountpoints;
mod password;
pub(crate) mod pool;
mod recordings;
mod rooms;
mod stream_keys;
mod trunks;
mod types;
mod users;
pub mod validate;

pub use accounts::{Account, AccountSpec, Accounts};
pub use egress::{Egress, EgressId, EgressSpec, Egresses};
pub use error::{Result, StorageError};
pub use mailboxes::{Mailbox, MailboxSettings, Mailboxes, MwiMode};
pub use migrate::SchemaStatus;
pub use mountpoints::{Mountpoints, StoredMountpoint};
pub use pool::{backend_of, Backend};
pub use recordings::{
    message_file, CreatedRange, NewRecording, Recording, RecordingFilter, Recordings,
};
pub use rooms::{RoomRecord, Rooms, StoredRoom, MAX_ROOM_CONFIG_LEN, MAX_ROOM_ID_LEN};
pub use stream_keys::{NewStreamKey, StreamKey, StreamKeys};
pub use trunks::{Trunk, TrunkSpec, Trunks};
pub use types::{
    AccountId, DtmfMode, Page, RecordingId, RecordingKind, Role, Secret, StreamKeyId, Timestamp,
    Transport, TrunkId, TrunkSrtp, UserId,
};
pub use users::{NewUser, User, Users};

use pool::{with_pool, Pool};

/// Where the registry lives when neither the config file nor `BIFRONS_DATABASE_URL` says.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/bifrons.db";

/// Environment variable overriding the `[database] url` config key.
pub const DATABASE_URL_ENV: &str = "BIFRONS_DATABASE_URL";

/// A handle on the registry database; cheap to clone (it wraps a connection pool).
#[derive(Clone, Debug)]
pub struct Storage {
    pool: Pool,
}

/// What `bifrons db check` reports.
#[derive(Debug, Clone)]
pub struct HealthReport {
    /// Engine in use.
    pub backend: Backend,
    /// Migration state.
    pub schema: SchemaStatus,
    /// Engine-level consistency check result (`ok` when healthy).
    pub integrity: String,
    /// Number of admin users (role admin).
    pub admins: i64,
    /// Number of recordings.
    pub recordings: i64,
}

impl Storage {
    /// Connects and brings the schema up to date: the start-up path of the server.
    pub async fn open(url: &str) -> Result<Storage> {
        let storage = Storage::connect(url).await?;
        storage.migrate().await?;
        Ok(storage)
    }

    /// Connects without migrating, creating a missing SQLite file (`bifrons migrate`).
    pub async fn connect(url: &str) -> Result<Storage> {
        let pool = Pool::connect(url, true).await?;
        tracing::debug!(backend = %pool.backend(), "registry connected");
        Ok(Storage { pool })
    }

    /// Connects to an existing database without migrating or creating anything
    /// (`bifrons db check`); a missing SQLite file is an error.
    pub async fn connect_existing(url: &str) -> Result<Storage> {
        let pool = Pool::connect(url, false).await?;
        Ok(Storage { pool })
    }

    /// Applies pending migrations; returns how many ran. Refuses a newer schema.
    pub async fn migrate(&self) -> Result<usize> {
        migrate::run(&self.pool).await
    }

    /// The migration state, without changing anything.
    pub async fn schema_status(&self) -> Result<SchemaStatus> {
        migrate::status(&self.pool).await
    }

    /// The engine in use.
    pub fn backend(&self) -> Backend {
        self.pool.backend()
    }

    /// Closes every pooled connection (waits for checked-out ones to come back).
    pub async fn close(&self) {
        self.pool.close().await
    }

    /// Checks the database: schema state, engine consistency check, row counts.
    pub async fn health(&self) -> Result<HealthReport> {
        let schema = self.schema_status().await?;
        let integrity = match &self.pool {
            Pool::Sqlite(p) => {
                let rows: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check")
                    .fetch_all(p)
                    .await?;
                rows.join("; ")
            }
            Pool::Postgres(p) => {
                // PostgreSQL has no cheap whole-database check; a round trip proves the server
                // answers and that we can read the catalog.
                let one: i32 = sqlx::query_scalar("SELECT 1").fetch_one(p).await?;
                if one == 1 {
                    "ok".to_owned()
                } else {
                    format!("unexpected answer {one}")
                }
            }
        };
        let (admins, recordings) = if schema.applied.is_some() {
            (
                self.users().count_admins().await?,
                self.recordings().count(&RecordingFilter::default()).await?,
            )
        } else {
            (0, 0)
        };
        Ok(HealthReport {
            backend: self.backend(),
            schema,
            integrity,
            admins,
            recordings,
        })
    }

    /// Admin-panel users.
    pub fn users(&self) -> Users<'_> {
        Users::new(&self.pool)
    }

    /// SIP trunks.
    pub fn trunks(&self) -> Trunks<'_> {
        Trunks::new(&self.pool)
    }

    /// Browser-facing SIP accounts.
    pub fn accounts(&self) -> Accounts<'_> {
        Accounts::new(&self.pool)
    }

    /// RTMP stream keys and their egress targets.
    pub fn stream_keys(&self) -> StreamKeys<'_> {
        StreamKeys::new(&self.pool)
    }

    /// Recordings (voicemail, rooms, streams).
    pub fn recordings(&self) -> Recordings<'_> {
        Recordings::new(&self.pool)
    }

    /// Permanent mountpoints of the streaming plugin.
    pub fn mountpoints(&self) -> Mountpoints<'_> {
        Mountpoints::new(&self.pool)
    }

    /// Named RTMP egress targets (restreaming destinations).
    pub fn egress_targets(&self) -> Egresses<'_> {
        Egresses::new(&self.pool)
    }

    /// Mailbox settings of SIP accounts.
    pub fn mailboxes(&self) -> Mailboxes<'_> {
        Mailboxes::new(&self.pool)
    }

    /// Permanent rooms of the audio bridge.
    pub fn rooms(&self) -> Rooms<'_> {
        Rooms::new(&self.pool)
    }
}

/// On a registry without any admin user, the message telling the operator how to create one
/// (there is no default password). The server prints it at start-up. Lookup errors are logged
/// and yield `None`: the server reports database trouble through its own start-up checks.
pub async fn admin_bootstrap_hint(storage: &Storage) -> Option<String> {
    match storage.users().count_admins().await {
        Ok(0) => Some(
            "No admin user exists yet. Create one with:\n    bifrons user add NAME --role admin\n\
             (the password is read from stdin, or prompted for on a terminal)"
                .to_owned(),
        ),
        Ok(_) => None,
        Err(e) => {
            tracing::warn!(error = %e, "cannot count admin users");
            None
        }
    }
}

/// Helpers for tests that must put a database into states Bifrons never produces itself.
#[doc(hidden)]
pub mod testing {
    use super::*;

    /// Records a migration `version` as applied, as a newer Bifrons would have.
    pub async fn record_future_migration(storage: &Storage, version: i64) -> Result<()> {
        with_pool!(&storage.pool, p => {
            sqlx::query(
                "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
                 VALUES ($1, 'from a newer bifrons', TRUE, $2, 0)",
            )
            .bind(version)
            .bind(vec![0u8; 48])
            .execute(p)
            .await?;
        });
        Ok(())
    }
}
