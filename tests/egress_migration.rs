//! Migration 0013 on SQLite and on PostgreSQL: the per-stream-key egress list
//! (`stream_egress_targets`) is copied into the named `egress_targets` (names generated and
//! unique, keys and mountpoints kept) and dropped.

mod support;

use std::borrow::Cow;
use std::path::Path;

use bifrons::storage::{Page, Storage};
use sqlx::migrate::Migrator;

/// The dialect's migrations up to 0012, the schema before the egress lists were merged.
async fn before_0013(dialect: &str) -> Migrator {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(dialect);
    let mut m = Migrator::new(dir).await.expect("read migrations");
    m.migrations = Cow::Owned(
        m.migrations
            .iter()
            .filter(|m| m.version <= 12)
            .cloned()
            .collect(),
    );
    m
}

/// Legacy rows: key `studio` with two targets, key `other` with one whose generated name an
/// operator already took in `egress_targets`.
const LEGACY: &[&str] = &[
    "INSERT INTO stream_keys (id, stream_key, name, owner, enabled, created_at_ms) VALUES \
     (1, 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 'studio', 'alice', TRUE, 1700000000000), \
     (2, 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb', 'other', 'bob', TRUE, 1700000000001)",
    "INSERT INTO stream_egress_targets (id, stream_key_id, mountpoint, url, target_key) VALUES \
     (10, 1, 'studio', 'rtmp://a.example.com/live', 'yt-key-1'), \
     (11, 1, 'studio', 'rtmps://b.example.com:443/app', NULL), \
     (12, 2, 'side', 'rtmp://c.example.com/live', 'c-key')",
    "INSERT INTO egress_targets (name, url, target_key, mountpoint, enabled, created_at_ms) \
     VALUES ('other-egress-12', 'rtmp://taken.example.com/live', 'k', 'x', FALSE, 1)",
];

async fn check_merge(storage: Storage) {
    let all = storage
        .egress_targets()
        .list(Page::first(100))
        .await
        .unwrap();
    let rows: Vec<(&str, &str, Option<&str>, &str, bool)> = all
        .iter()
        .map(|e| {
            (
                e.spec.name.as_str(),
                e.spec.url.as_str(),
                e.spec.key.as_ref().map(|k| k.expose()),
                e.spec.mountpoint.as_str(),
                e.spec.enabled,
            )
        })
        .collect();
    assert_eq!(
        rows,
        vec![
            (
                "other-egress-12",
                "rtmp://taken.example.com/live",
                Some("k"),
                "x",
                false
            ),
            (
                "studio-egress-10",
                "rtmp://a.example.com/live",
                Some("yt-key-1"),
                "studio",
                true
            ),
            (
                "studio-egress-11",
                "rtmps://b.example.com:443/app",
                None,
                "studio",
                true
            ),
            (
                "stream-key-egress-12-2",
                "rtmp://c.example.com/live",
                Some("c-key"),
                "side",
                true
            ),
        ]
    );
    assert!(storage.schema_status().await.unwrap().is_current());
    // The stream keys are untouched.
    assert_eq!(
        storage
            .stream_keys()
            .list(Page::first(10))
            .await
            .unwrap()
            .len(),
        2
    );
    storage.close().await;
}

#[tokio::test]
async fn sqlite_stream_key_egress_rows_become_named_targets() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("bifrons.db").display());
    let pool = sqlx::SqlitePool::connect(&format!("{url}?mode=rwc"))
        .await
        .unwrap();
    before_0013("sqlite").await.run(&pool).await.unwrap();
    for sql in LEGACY {
        sqlx::query(sql).execute(&pool).await.unwrap();
    }
    pool.close().await;
    let storage = Storage::open(&url).await.unwrap();
    check_merge(storage).await;
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let left: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM sqlite_master WHERE name = 'stream_egress_targets'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(left, 0, "the old table is dropped");
    pool.close().await;
}

#[tokio::test]
async fn postgres_stream_key_egress_rows_become_named_targets() {
    let server = support::pg::PgServer::start();
    let url = server.url();
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    before_0013("postgres").await.run(&pool).await.unwrap();
    for sql in LEGACY {
        sqlx::query(sql).execute(&pool).await.unwrap();
    }
    let storage = Storage::open(&url).await.unwrap();
    check_merge(storage).await;
    let left: Option<String> =
        sqlx::query_scalar("SELECT to_regclass('stream_egress_targets')::text")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(left, None, "the old table is dropped");
    pool.close().await;
}
