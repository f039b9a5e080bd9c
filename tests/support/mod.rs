//! Shared helpers of the integration tests: a fresh database per test on SQLite (a temp file)
//! or on a throw-away PostgreSQL cluster, a macro running one check on both, and
//! [`gateway::TestGateway`], the whole gateway in-process on ephemeral loopback ports.

#![allow(dead_code)]

pub mod client;
pub mod gateway;
pub mod media;
pub mod pg;

use bifrons::storage::Storage;
use tempfile::TempDir;

/// A migrated database that disappears with this value (temp dir removed, cluster stopped).
pub struct TestDb {
    /// The registry under test.
    pub storage: Storage,
    /// URL the storage was opened with.
    pub url: String,
    _sqlite_dir: Option<TempDir>,
    _pg: Option<pg::PgServer>,
}

impl TestDb {
    /// A new SQLite file in its own temp dir.
    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("data/bifrons.db").display());
        let storage = Storage::open(&url).await.expect("open sqlite registry");
        TestDb {
            storage,
            url,
            _sqlite_dir: Some(dir),
            _pg: None,
        }
    }

    /// A new PostgreSQL cluster (panics, failing the test, if it cannot start).
    pub async fn postgres() -> TestDb {
        let server = pg::PgServer::start();
        let url = server.url();
        let storage = Storage::open(&url).await.expect("open postgres registry");
        TestDb {
            storage,
            url,
            _sqlite_dir: None,
            _pg: Some(server),
        }
    }
}

/// Declares `<check>::sqlite` and `<check>::postgres` tests running `async fn check(&Storage)`.
#[macro_export]
macro_rules! on_both_backends {
    ($($check:ident),+ $(,)?) => {
        $(
            mod $check {
                #[tokio::test]
                async fn sqlite() {
                    let db = $crate::support::TestDb::sqlite().await;
                    super::$check(&db.storage).await;
                    db.storage.close().await;
                }

                #[tokio::test]
                async fn postgres() {
                    let db = $crate::support::TestDb::postgres().await;
                    super::$check(&db.storage).await;
                    db.storage.close().await;
                }
            }
        )+
    };
}
