//! `bifrons migrate`: bring the registry schema up to date and exit.

use std::process::ExitCode;

use bifrons::storage::Storage;

/// Connects to `url` and applies pending migrations.
pub async fn run(url: &str) -> anyhow::Result<ExitCode> {
    let storage = Storage::connect(url)
        .await
        .map_err(|e| super::open_error(url, e))?;
    let applied = storage.migrate().await?;
    let status = storage.schema_status().await?;
    println!(
        "{}: {applied} migration(s) applied, schema at version {}",
        storage.backend(),
        status.applied.unwrap_or(0)
    );
    storage.close().await;
    Ok(ExitCode::SUCCESS)
}
