//! The `bifrons` binary: start the gateway, or check a configuration.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

use bifrons::config::Config;
use bifrons::logging;

/// WebRTC gateway speaking the Janus API.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Configuration file (TOML); `BIFRONS_<SECTION>_<KEY>` variables override it.
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Validate the configuration and exit.
    #[arg(long)]
    check_config: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("bifrons: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    if cli.check_config {
        println!("configuration OK");
        return ExitCode::SUCCESS;
    }
    let level = logging::parse_level(&config.general.log_level).unwrap_or(tracing::level_filters::LevelFilter::INFO);
    let log = logging::init(level);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("bifrons: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        let core = bifrons::server::build_core(config, log)?;
        bifrons::server::run(core).await
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
