//! Command-line interface: argument definitions and dispatch. Each subcommand lives in its own
//! file and takes the database URL as a parameter, so the config loader can decide it.

mod bench;
mod db;
mod migrate;
mod serve;
mod user;

use std::process::ExitCode;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use bifrons::config::Config;
use bifrons::storage::{Role, DATABASE_URL_ENV};

/// Bifrons: a WebRTC gateway speaking the Janus API.
#[derive(Debug, Parser)]
#[command(name = "bifrons", version, about)]
pub struct Cli {
    /// Configuration file (TOML); `BIFRONS_<SECTION>_<KEY>` variables override it.
    #[arg(long, short, global = true)]
    pub config: Option<PathBuf>,

    /// Validate the configuration and exit.
    #[arg(long)]
    pub check_config: bool,

    /// Registry database URL (sqlite://PATH or postgres://...). Overrides the config file.
    #[arg(long, global = true, env = DATABASE_URL_ENV)]
    pub database_url: Option<String>,

    /// What to do; `None` runs the gateway.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands; without one, the gateway starts.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Manage admin-panel users.
    User {
        /// Which user operation.
        #[command(subcommand)]
        action: UserCommand,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Inspect the database.
    Db {
        /// Which inspection.
        #[command(subcommand)]
        action: DbCommand,
    },
    /// Measure recordings insert/list throughput against the database (writes throw-away rows
    /// and removes them afterwards).
    BenchDb {
        /// Rows to insert.
        #[arg(long, default_value_t = 20_000)]
        rows: u64,
    },
}

/// `bifrons user ...`
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user; the password is read from stdin, or prompted for on a terminal.
    Add {
        /// Login name.
        name: String,
        /// Role of the new user.
        #[arg(long, value_parser = parse_role, default_value = "viewer")]
        role: Role,
    },
    /// List users.
    List,
}

/// `bifrons db ...`
#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Check schema version, consistency and contents; exit 1 when the schema is not current
    /// (pending or newer) or the consistency check fails.
    Check,
}

fn parse_role(s: &str) -> Result<Role, String> {
    s.parse()
        .map_err(|_| format!("{s:?} is not a role (admin or viewer)"))
}

/// The database URL in effect: command line / environment, then the configuration file.
pub fn database_url(cli: &Cli, config: &Config) -> String {
    cli.database_url
        .clone()
        .unwrap_or_else(|| config.database.url.clone())
}

/// Parses arguments, runs the subcommand and maps the outcome to an exit code.
pub fn main() -> ExitCode {
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
    let url = database_url(&cli, &config);
    let Some(command) = cli.command else {
        return serve::run(config, url);
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bifrons: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async {
        match command {
            Command::User {
                action: UserCommand::Add { name, role },
            } => user::add(&url, &name, role).await,
            Command::User {
                action: UserCommand::List,
            } => user::list(&url).await,
            Command::Migrate => migrate::run(&url).await,
            Command::Db {
                action: DbCommand::Check,
            } => db::check(&url).await,
            Command::BenchDb { rows } => bench::run(&url, rows).await,
        }
    });
    match outcome {
        Ok(code) => code,
        Err(e) => {
            eprintln!("bifrons: {e:#}");
            ExitCode::FAILURE
        }
    }
}
