//! `bifrons db check`: the registry's state, without changing it.

use std::process::ExitCode;

use bifrons::storage::Storage;

use super::open_error;

/// Reports schema state, the engine's consistency check and row counts. Never migrates.
pub async fn check(url: &str) -> anyhow::Result<ExitCode> {
    let storage = Storage::connect_existing(url)
        .await
        .map_err(|e| open_error(url, e))?;
    let report = storage.health().await?;
    storage.close().await;
    let s = &report.schema;
    println!("backend:    {}", report.backend);
    println!(
        "schema:     version {} (this binary knows {}, {} pending)",
        s.applied
            .map_or_else(|| "none".to_owned(), |v| v.to_string()),
        s.latest,
        s.pending
    );
    println!("integrity:  {}", report.integrity);
    println!("admins:     {}", report.admins);
    println!("recordings: {}", report.recordings);
    let mut healthy = report.integrity == "ok" && s.pending == 0;
    if let Some(found) = s.applied.filter(|&v| v > s.latest) {
        println!(
            "error: schema version {found} is newer than this Bifrons supports ({})",
            s.latest
        );
        healthy = false;
    } else if !s.is_current() {
        println!("warning: migrations pending; run `bifrons migrate` (the server also applies them at start)");
    }
    Ok(if healthy {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
