//! `bifrons bench-db`: recordings insert and list throughput on the configured database.
//!
//! Rows are written under a unique owner and removed at the end, so it can run against a live
//! registry; results depend on the disk and fsync settings, which is the point of measuring.

use std::process::ExitCode;
use std::time::Instant;

use bifrons::storage::{NewRecording, Page, RecordingFilter, RecordingKind, Storage, Timestamp};

fn row(owner: &str, i: u64) -> NewRecording {
    NewRecording {
        kind: RecordingKind::Voicemail,
        owner: owner.to_owned(),
        caller: Some(format!("sip:caller{i}@example.com")),
        file_path: format!("{owner}/msg-{i}.opus"),
        codec: "opus".into(),
        duration_ms: 10_000 + i,
        size_bytes: 80_000 + i,
        created: Timestamp::now(),
    }
}

fn per_second(n: u64, start: Instant) -> f64 {
    n as f64 / start.elapsed().as_secs_f64().max(1e-9)
}

/// Inserts `rows` recordings in one transaction, `rows / 20` one commit each, then lists them
/// all page by page, and prints rows/s for each phase.
pub async fn run(url: &str, rows: u64) -> anyhow::Result<ExitCode> {
    let storage = Storage::open(url)
        .await
        .map_err(|e| super::open_error(url, e))?;
    let owner = format!("bench-{}", Timestamp::now().as_millis());
    let recordings = storage.recordings();

    let start = Instant::now();
    let batched = recordings
        .create_batch((0..rows).map(|i| row(&owner, i)))
        .await?;
    let batch_rate = per_second(batched, start);

    let singles = (rows / 20).max(1);
    let start = Instant::now();
    for i in rows..rows + singles {
        recordings.create(&row(&owner, i)).await?;
    }
    let single_rate = per_second(singles, start);

    let filter = RecordingFilter {
        owner: Some(owner.clone()),
        ..Default::default()
    };
    let start = Instant::now();
    let mut listed = 0u64;
    let mut page = Page::first(Page::MAX_LIMIT);
    loop {
        let got = recordings.list(&filter, page).await?.len() as u64;
        listed += got;
        if got < u64::from(page.limit) {
            break;
        }
        page.offset += u64::from(page.limit);
    }
    let list_rate = per_second(listed, start);

    let removed = recordings.delete_by_owner(&owner).await?;
    storage.close().await;

    println!("backend: {}", storage.backend());
    println!("insert, one transaction:  {batched} rows, {batch_rate:.0} rows/s");
    println!("insert, one commit each:  {singles} rows, {single_rate:.0} rows/s");
    println!(
        "list, pages of {}:      {listed} rows, {list_rate:.0} rows/s",
        Page::MAX_LIMIT
    );
    println!("cleaned up {removed} rows");
    Ok(ExitCode::SUCCESS)
}
