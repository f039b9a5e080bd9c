//! A writer killed with SIGKILL in the middle of a transaction leaves no half-written rows: the
//! test re-runs this test binary as a child writer, waits until it is inside a large batch
//! insert, kills it, then reopens the database.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bifrons::storage::{NewRecording, RecordingFilter, RecordingKind, Storage, Timestamp};

const CHILD_URL: &str = "BIFRONS_TEST_CHILD_URL";
const CHILD_MARKER: &str = "BIFRONS_TEST_CHILD_MARKER";
/// Rows the child writes inside the transaction before it signals and stalls: enough (with
/// padded rows) to overflow SQLite's page cache, so uncommitted pages reach the WAL on disk.
const ROWS_BEFORE_KILL: u64 = 20_000;

fn rec(owner: &str, i: u64) -> NewRecording {
    NewRecording {
        kind: RecordingKind::Stream,
        owner: owner.into(),
        caller: Some(format!("{i:0>200}")),
        file_path: format!("{owner}/{i}.flv"),
        codec: "h264".into(),
        duration_ms: i,
        size_bytes: i,
        created: Timestamp::now(),
    }
}

/// The child writer: commits one row, then starts a batch that stalls forever mid-transaction.
#[test]
#[ignore = "child process of the sigkill tests, started by them"]
fn durability_child_writer() {
    let url = std::env::var(CHILD_URL).expect("run by the sigkill tests only");
    let marker = std::env::var(CHILD_MARKER).expect("marker path");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let storage = Storage::open(&url).await.unwrap();
        storage
            .recordings()
            .create(&rec("committed", 0))
            .await
            .unwrap();
        let rows = (0..).map(|i| {
            if i == ROWS_BEFORE_KILL {
                std::fs::write(&marker, "inside the transaction").unwrap();
                loop {
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
            rec("half", i)
        });
        storage.recordings().create_batch(rows).await.unwrap();
        unreachable!("the parent kills this process");
    });
}

/// Runs the child writer against `url` and SIGKILLs it once it is mid-transaction.
fn kill_writer_mid_transaction(url: &str, scratch: &Path) {
    let marker = scratch.join("child-ready");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "durability_child_writer",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_URL, url)
        .env(CHILD_MARKER, &marker)
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn child writer");
    let deadline = Instant::now() + Duration::from_secs(240);
    while !marker.exists() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("child writer exited early: {status}");
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("child writer never reached the middle of its transaction");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().expect("SIGKILL the writer"); // Child::kill sends SIGKILL on Unix.
    let status = child.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGKILL));
}

async fn assert_clean_after_kill(url: &str) {
    let s = Storage::open(url).await.expect("reopens after the crash");
    let health = s.health().await.unwrap();
    assert_eq!(health.integrity, "ok");
    let recs = s.recordings();
    let count = |owner: &str| RecordingFilter {
        owner: Some(owner.into()),
        ..Default::default()
    };
    assert_eq!(
        recs.count(&count("committed")).await.unwrap(),
        1,
        "committed row survives"
    );
    assert_eq!(
        recs.count(&count("half")).await.unwrap(),
        0,
        "no row of the killed transaction"
    );
    // The database is writable: the killed writer's locks are gone.
    assert_eq!(
        recs.create_batch((0..10).map(|i| rec("after", i)))
            .await
            .unwrap(),
        10
    );
    assert_eq!(recs.count(&RecordingFilter::default()).await.unwrap(), 11);
    s.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_sigkill_mid_transaction_leaves_no_half_row() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("bifrons.db");
    let url = format!("sqlite://{}", db.display());
    Storage::open(&url).await.unwrap().close().await;
    let scratch = dir.path().to_owned();
    let u = url.clone();
    tokio::task::spawn_blocking(move || kill_writer_mid_transaction(&u, &scratch))
        .await
        .unwrap();
    let wal = std::fs::metadata(dir.path().join("bifrons.db-wal"))
        .map(|m| m.len())
        .unwrap_or(0);
    assert!(
        wal > 0,
        "uncommitted pages reached the WAL before the kill (so recovery mattered)"
    );
    assert_clean_after_kill(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_sigkill_mid_transaction_leaves_no_half_row() {
    let pg = support::pg::PgServer::start();
    let url = pg.url();
    let scratch = tempfile::tempdir().unwrap();
    let (u, dir) = (url.clone(), scratch.path().to_owned());
    tokio::task::spawn_blocking(move || kill_writer_mid_transaction(&u, &dir))
        .await
        .unwrap();
    assert_clean_after_kill(&url).await;
}
