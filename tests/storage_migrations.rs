//! Migrations on both engines: empty to latest, re-run is a no-op, newer schemas are refused,
//! and the SQLite file is created (with its directory) on first start.

mod support;

use bifrons::storage::{testing, NewRecording, RecordingKind, Storage, StorageError, Timestamp};

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

/// A migrator that knows only the first migration of `dialect`, as a Bifrons of schema 1 did.
async fn schema_1_migrator(dialect: &str, dir: &std::path::Path) -> sqlx::migrate::Migrator {
    let from = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(dialect)
        .join("0001_registry.sql");
    let only = dir.join(format!("schema1-{dialect}"));
    std::fs::create_dir_all(&only).unwrap();
    std::fs::copy(from, only.join("0001_registry.sql")).unwrap();
    sqlx::migrate::Migrator::new(only).await.unwrap()
}

const SCHEMA_1_ROWS: &str = "INSERT INTO recordings (kind, owner, caller, file_path, codec, \
    duration_ms, size_bytes, created_at_ms) VALUES \
    ('voicemail', '1001', 'sip:a@example.com', 'vm/1.opus', 'opus', 1500, 12000, 1700000000000), \
    ('room', 'room1', NULL, 'rooms/2.opus', 'opus', 2500, 20000, 1700000000001), \
    ('stream', 'cam', NULL, 'streams/3.opus', 'opus', 3500, 28000, 1700000000002)";

/// Rows written under schema 1 keep their ids and fields through the migration that widens the
/// recording kinds, and ids of deleted rows are not handed out again.
async fn recordings_survive_the_kind_migration(url: &str) {
    let s = Storage::open(url).await.unwrap();
    let recs = s.recordings();
    let all = recs
        .list(&Default::default(), Default::default())
        .await
        .unwrap();
    let summary: Vec<_> = all
        .iter()
        .map(|r| {
            (
                r.id.0,
                r.meta.kind,
                r.meta.file_path.as_str(),
                r.meta.duration_ms,
                r.meta.caller.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (2, RecordingKind::Room, "rooms/2.opus", 2500, None),
            (
                1,
                RecordingKind::Voicemail,
                "vm/1.opus",
                1500,
                Some("sip:a@example.com")
            ),
        ]
    );
    let call = recs
        .create(&NewRecording {
            kind: RecordingKind::Call,
            owner: "1001".into(),
            caller: None,
            file_path: "calls/4.opus".into(),
            codec: "opus".into(),
            duration_ms: 0,
            size_bytes: 0,
            created: Timestamp::now(),
        })
        .await
        .unwrap();
    assert_eq!(
        call.id.0, 4,
        "id 3 was deleted under schema 1 and stays unused"
    );
    let h = s.health().await.unwrap();
    assert_eq!(h.integrity, "ok");
    assert!(h.schema.is_current());
    s.close().await;
}

#[tokio::test]
async fn sqlite_recordings_survive_the_kind_migration() {
    use sqlx::sqlite::{SqliteConnectOptions, SqlitePool};
    use std::str::FromStr;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("old.db").display());
    let opts = SqliteConnectOptions::from_str(&url)
        .unwrap()
        .create_if_missing(true)
        .foreign_keys(true);
    let pool = SqlitePool::connect_with(opts).await.unwrap();
    schema_1_migrator("sqlite", dir.path())
        .await
        .run(&pool)
        .await
        .unwrap();
    sqlx::query(SCHEMA_1_ROWS).execute(&pool).await.unwrap();
    sqlx::query("DELETE FROM recordings WHERE id = 3")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    recordings_survive_the_kind_migration(&url).await;
}

#[tokio::test]
async fn postgres_recordings_survive_the_kind_migration() {
    let pg = support::pg::PgServer::start();
    let dir = tempfile::tempdir().unwrap();
    let pool = sqlx::PgPool::connect(&pg.url()).await.unwrap();
    schema_1_migrator("postgres", dir.path())
        .await
        .run(&pool)
        .await
        .unwrap();
    sqlx::query(SCHEMA_1_ROWS).execute(&pool).await.unwrap();
    sqlx::query("DELETE FROM recordings WHERE id = 3")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    recordings_survive_the_kind_migration(&pg.url()).await;
}

#[tokio::test]
async fn unsupported_url_is_a_typed_error() {
    let err = Storage::open("mysql://localhost/x")
        .await
        .expect_err("refused");
    assert!(matches!(err, StorageError::UnsupportedUrl(_)), "{err:?}");
}
