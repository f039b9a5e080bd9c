//! Migrations on both engines: empty to latest, re-run is a no-op, newer schemas are refused,
//! and the SQLite file is created (with its directory) on first start.

mod support;

use bifrons::storage::{testing, Storage, StorageError};

async fn empty_to_latest_then_noop(url: &str) {
    let fresh = Storage::connect(url).await.unwrap();
    let before = fresh.schema_status().await.unwrap();
    assert_eq!(before.applied, None, "a new database has no schema");
    assert!(before.pending >= 1);
    let applied = fresh.migrate().await.unwrap();
    assert_eq!(applied, before.pending);
    let after = fresh.schema_status().await.unwrap();
    assert!(after.is_current(), "{after:?}");
    assert_eq!(
        fresh.migrate().await.unwrap(),
        0,
        "re-running applies nothing"
    );
    assert_eq!(fresh.schema_status().await.unwrap(), after);
    // The tables exist and work.
    assert_eq!(fresh.users().count_admins().await.unwrap(), 0);
    fresh.close().await;

    // Opening again (the start-up path) is a no-op too.
    let again = Storage::open(url).await.unwrap();
    assert!(again.schema_status().await.unwrap().is_current());
    again.close().await;
}

async fn newer_schema_is_refused(url: &str) {
    let s = Storage::open(url).await.unwrap();
    let latest = s.schema_status().await.unwrap().latest;
    testing::record_future_migration(&s, latest + 1)
        .await
        .unwrap();
    s.close().await;

    let err = Storage::open(url)
        .await
        .expect_err("a newer schema must be refused");
    match &err {
        StorageError::SchemaTooNew { found, supported } => {
            assert_eq!((*found, *supported), (latest + 1, latest));
        }
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains("newer than the latest this Bifrons knows"),
        "{msg}"
    );
    assert!(msg.contains("upgrade Bifrons"), "{msg}");

    // Inspection still works and reports the problem.
    let s = Storage::connect(url).await.unwrap();
    let status = s.schema_status().await.unwrap();
    assert_eq!(status.applied, Some(latest + 1));
    assert!(!status.is_current());
    s.close().await;
}

#[tokio::test]
async fn sqlite_empty_to_latest_and_rerun_is_noop() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/data/bifrons.db");
    let url = format!("sqlite://{}", path.display());
    empty_to_latest_then_noop(&url).await;
    assert!(
        path.exists(),
        "the file and its directories are created on first start"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "registry holds credentials: owner-only");
    // WAL mode leaves a -wal file beside the database while connections are open or after use.
    let s = Storage::open(&url).await.unwrap();
    s.users().count_admins().await.unwrap();
    assert!(
        dir.path().join("nested/data/bifrons.db-wal").exists(),
        "journal_mode=WAL"
    );
    s.close().await;
}

#[tokio::test]
async fn postgres_empty_to_latest_and_rerun_is_noop() {
    let pg = support::pg::PgServer::start();
    empty_to_latest_then_noop(&pg.url()).await;
}

#[tokio::test]
async fn sqlite_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    newer_schema_is_refused(&format!("sqlite://{}", dir.path().join("r.db").display())).await;
}

#[tokio::test]
async fn postgres_newer_schema_is_refused() {
    let pg = support::pg::PgServer::start();
    newer_schema_is_refused(&pg.url()).await;
}

#[tokio::test]
async fn unsupported_url_is_a_typed_error() {
    let err = Storage::open("mysql://localhost/x")
        .await
        .expect_err("refused");
    assert!(matches!(err, StorageError::UnsupportedUrl(_)), "{err:?}");
}
