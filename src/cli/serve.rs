//! `bifrons` with no subcommand: open the registry (migrating it), then run the gateway.

use std::process::ExitCode;

use anyhow::Context;

use bifrons::config::Config;
use bifrons::logging;
use bifrons::storage::{admin_bootstrap_hint, Storage};

/// Starts the gateway and serves until Ctrl-C or SIGTERM.
pub fn run(config: Config, database_url: String) -> ExitCode {
    let level = logging::parse_level(&config.general.log_level)
        .unwrap_or(tracing::level_filters::LevelFilter::INFO);
    let log = logging::init(level);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("bifrons: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result: anyhow::Result<()> = runtime.block_on(async move {
        let storage = Storage::open(&database_url)
            .await
            .context("opening the registry database")?;
        tracing::info!(backend = ?storage.backend(), "registry ready");
        if let Some(hint) = admin_bootstrap_hint(&storage).await {
            tracing::warn!("{hint}");
        }
        let listeners = bifrons::server::Listeners::bind(&config).await?;
        let core = bifrons::server::build_core(config, log, storage).await?;
        bifrons::server::run(core, listeners, bifrons::server::shutdown_signal()).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("bifrons: {e:#}");
            ExitCode::FAILURE
        }
    }
}
