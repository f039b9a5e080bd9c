//! Command-line interface: argument definitions and dispatch. Each subcommand lives in its own
//! file and takes the database URL as a parameter, so the config loader can decide it.

mod account;
mod bench;
mod check;
mod db;
mod egress;
mod key;
mod mailbox;
mod migrate;
mod serve;
mod trunk;
mod user;

use std::process::ExitCode;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use bifrons::config::Config;
use bifrons::storage::{Role, StorageError, DATABASE_URL_ENV};

/// Bifrons: a WebRTC gateway speaking the Janus API.
#[derive(Debug, Parser)]
#[command(
    name = "bifrons",
    version,
    about,
    after_help = "Without a subcommand, bifrons starts the gateway (with --config FILE, or the \
                  built-in defaults) and serves until Ctrl-C or SIGTERM.\n\
                  Relative paths in a configuration file are taken from that file's folder; \
                  without a file, from the working directory."
)]
pub struct Cli {
    /// Configuration file (TOML); `BIFRONS_<SECTION>_<KEY>` variables override it.
    #[arg(long, short, global = true)]
    pub config: Option<PathBuf>,

    /// Validate the configuration (and that the database URL is usable: the SQLite folder
    /// writable, the PostgreSQL server reachable) and exit.
    #[arg(long)]
    pub check_config: bool,

    /// Registry database URL (sqlite://PATH or postgres://...). Overrides the config file.
    #[arg(long, global = true, env = DATABASE_URL_ENV)]
    pub database_url: Option<String>,

    /// What to do; none starts the gateway.
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
    /// Manage stream keys for RTMP and WHIP publishers (each feeds one streaming mountpoint).
    Key {
        /// Which stream-key operation.
        #[command(subcommand)]
        action: KeyCommand,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Inspect the database.
    Db {
        /// Which inspection.
        #[command(subcommand)]
        action: DbCommand,
    },
    /// Manage SIP trunks (where accounts' calls go, with the SIP credentials).
    Trunk {
        /// Which trunk operation.
        #[command(subcommand)]
        action: trunk::TrunkCommand,
    },
    /// Manage SIP accounts (what browsers register for, with a web secret).
    Account {
        /// Which account operation.
        #[command(subcommand)]
        action: account::AccountCommand,
    },
    /// Manage RTMP egress targets (where a mountpoint is re-published).
    Egress {
        /// Which egress operation.
        #[command(subcommand)]
        action: egress::EgressCommand,
    },
    /// Manage SIP accounts' mailboxes (greeting, limits, message waiting, PIN).
    Mailbox {
        /// Which mailbox operation.
        #[command(subcommand)]
        action: mailbox::MailboxCommand,
    },
    /// Measure recordings insert/list throughput against the database (writes throw-away rows
    /// and removes them afterwards).
    BenchDb {
        /// Rows to insert.
        #[arg(long, default_value_t = 20_000)]
        rows: u64,
    },
    /// Measure the audio bridge's mixing: rooms of participants sending real Opus every 20 ms
    /// (no network), worker time per tick and per participant, p99 tick, memory, losses.
    BenchAudiobridge {
        /// Rooms.
        #[arg(long, default_value_t = 1)]
        rooms: usize,
        /// Participants per room.
        #[arg(long, default_value_t = 100)]
        participants: usize,
        /// Participants per room sending a tone (the others send silence).
        #[arg(long, default_value_t = 3)]
        speakers: usize,
        /// Seconds of load.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Mixing rate, Hz.
        #[arg(long, default_value_t = 16_000)]
        sampling_rate: u32,
        /// Worker threads (0: cores - 1).
        #[arg(long, default_value_t = 0)]
        threads: usize,
        /// The non-speakers send a quiet tone (open microphones) rather than silence.
        #[arg(long)]
        open_mics: bool,
    },
}

/// `bifrons user ...`
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user; the password is read from stdin, or prompted for on a terminal.
    Add {
        /// Login name: 1 to 64 of A-Z a-z 0-9 . _ -
        name: String,
        /// Role of the new user: admin (manages everything) or viewer (reads only).
        #[arg(long, value_enum, default_value_t = RoleArg::Viewer)]
        role: RoleArg,
    },
    /// List users.
    List,
}

/// `bifrons key ...`
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Create a stream key and print it once, with the RTMP URL to paste into OBS and the WHIP URL.
    Add {
        /// Name of the key: 1 to 64 characters, no leading or trailing spaces
        name: String,
        /// Mountpoint the key feeds (default: the mountpoint numbered like the key's id,
        /// created on the first publish).
        #[arg(long)]
        mountpoint: Option<u64>,
    },
    /// List stream keys (never their secrets).
    List,
    /// Delete a stream key: publishes with it are refused from then on.
    Revoke {
        /// Name of the key.
        name: String,
    },
}

/// `bifrons db ...`
#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Check schema version, consistency and contents; exit 1 when the schema is not current
    /// (pending or newer) or the consistency check fails.
    Check,
}

/// The roles `user add --role` takes, listed by `--help` and in its error message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RoleArg {
    /// Manages everything.
    Admin,
    /// Reads only.
    Viewer,
}

impl From<RoleArg> for Role {
    fn from(role: RoleArg) -> Role {
        match role {
            RoleArg::Admin => Role::Admin,
            RoleArg::Viewer => Role::Viewer,
        }
    }
}

/// The database URL in effect: command line / environment (a relative SQLite path taken from
/// the working directory), then the configuration file (already resolved by
/// [`Config::load`]).
pub fn database_url(cli: &Cli, config: &Config) -> String {
    match &cli.database_url {
        Some(url) => match std::env::current_dir() {
            Ok(cwd) => bifrons::config::resolve_sqlite_url(url, &cwd),
            Err(_) => url.clone(),
        },
        None => config.database.url.clone(),
    }
}

/// `url` with any password replaced by `***`, for messages and logs.
pub fn display_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((user_info, host)) if user_info.contains(':') => {
            let user = user_info.split(':').next().unwrap_or("");
            format!("{scheme}://{user}:***@{host}{path}")
        }
        _ => url.to_owned(),
    }
}

/// The error for a registry that cannot be opened. A storage error's text already ends with
/// its cause, so the cause is not chained a second time.
pub fn open_error(url: &str, e: StorageError) -> anyhow::Error {
    anyhow::anyhow!("cannot open {}: {e}", display_url(url))
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
    let url = database_url(&cli, &config);
    if cli.check_config {
        return check::run(&url);
    }
    let Some(command) = cli.command else {
        return serve::run(config, url, cli.config.as_deref());
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
            } => user::add(&url, &name, role.into()).await,
            Command::User {
                action: UserCommand::List,
            } => user::list(&url).await,
            Command::Key {
                action: KeyCommand::Add { name, mountpoint },
            } => key::add(&url, &config.rtmp, &config.whep, &name, mountpoint).await,
            Command::Key {
                action: KeyCommand::List,
            } => key::list(&url).await,
            Command::Key {
                action: KeyCommand::Revoke { name },
            } => key::revoke(&url, &name).await,
            Command::Migrate => migrate::run(&url).await,
            Command::Db {
                action: DbCommand::Check,
            } => db::check(&url).await,
            Command::BenchDb { rows } => bench::run(&url, rows).await,
            Command::BenchAudiobridge {
                rooms,
                participants,
                speakers,
                seconds,
                sampling_rate,
                threads,
                open_mics,
            } => {
                let config = bifrons::services::rooms::bench::BenchConfig {
                    rooms,
                    participants,
                    speakers,
                    seconds,
                    sampling_rate,
                    threads,
                    open_mics,
                };
                let report = tokio::task::spawn_blocking(move || {
                    bifrons::services::rooms::bench::run(config)
                })
                .await??;
                println!("{config:?}");
                println!("{report:#?}");
                Ok(ExitCode::SUCCESS)
            }
            Command::Trunk { action } => trunk::run(&url, action).await,
            Command::Account { action } => account::run(&url, action).await,
            Command::Egress { action } => egress::run(&url, action).await,
            Command::Mailbox { action } => mailbox::run(&url, action).await,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_url_hides_the_password_only() {
        assert_eq!(
            display_url("postgres://bifrons:pw@db.internal:5432/bifrons"),
            "postgres://bifrons:***@db.internal:5432/bifrons"
        );
        assert_eq!(display_url("postgres://db/x"), "postgres://db/x");
        assert_eq!(display_url("sqlite:///a/b.db"), "sqlite:///a/b.db");
    }
}
