//! `bifrons egress add|list|rm`: named RTMP egress targets in the registry (what the panel's
//! Egress page manages). The destination's stream key is read from stdin (first line) or a
//! hidden prompt, never from the command line, and never printed. `add` applies the registry's
//! one rule for a destination ([`validate::egress_destination`]): the URL is checked before the
//! key is asked for, and a refusal names the part that is wrong.

use std::process::ExitCode;

use anyhow::bail;
use bifrons::storage::{validate, EgressSpec, Page, Secret, Storage, StorageError};
use clap::Subcommand;

/// `bifrons egress ...`
#[derive(Debug, Subcommand)]
pub enum EgressCommand {
    /// Add an egress target.
    Add {
        /// Name: 1 to 64 characters, no leading or trailing spaces.
        name: String,
        /// Destination, rtmp://host[:port]/app or rtmps://host[:port]/app (TLS); without
        /// --key, the URL ends with the stream name: rtmp://host/app/NAME.
        #[arg(long)]
        url: String,
        /// Mountpoint (id or name) whose media is sent; it may be created later (starting the
        /// target then says "no such mountpoint").
        #[arg(long)]
        mountpoint: String,
        /// Read the destination's stream key (stdin's first line, or a prompt on a terminal);
        /// needed unless the URL ends with the stream name.
        #[arg(long)]
        key: bool,
        /// Store it disabled.
        #[arg(long)]
        disabled: bool,
    },
    /// List egress targets (keys are never shown).
    List,
    /// Delete an egress target.
    Rm {
        /// Its name.
        name: String,
    },
}

/// The operator's message for a refused target: the reason, with the flag to use when the
/// key is missing.
fn refusal(e: StorageError) -> anyhow::Error {
    match e {
        StorageError::Invalid {
            field: validate::EGRESS_KEY,
            reason,
        } if reason.contains("is needed") => {
            anyhow::anyhow!("egress key: {reason}; --key reads it from stdin")
        }
        StorageError::Invalid { field, reason } => anyhow::anyhow!("{field}: {reason}"),
        other => other.into(),
    }
}

/// Runs an `egress` subcommand against the registry at `url`.
pub async fn run(url: &str, command: EgressCommand) -> anyhow::Result<ExitCode> {
    let storage = Storage::open(url)
        .await
        .map_err(|e| super::open_error(url, e))?;
    let outcome = run_on(&storage, command).await;
    storage.close().await;
    outcome
}

async fn run_on(storage: &Storage, command: EgressCommand) -> anyhow::Result<ExitCode> {
    let repo = storage.egress_targets();
    match command {
        EgressCommand::Add {
            name,
            url,
            mountpoint,
            key,
            disabled,
        } => {
            // The URL first, so that a typo is reported before the key is asked for.
            validate::rtmp_url(validate::EGRESS_URL, &url).map_err(refusal)?;
            let key = if key {
                Some(Secret::new(super::trunk::read_secret("Stream key")?))
            } else {
                None
            };
            let spec = EgressSpec {
                name: name.clone(),
                url,
                key,
                mountpoint,
                enabled: !disabled,
            };
            match repo.create(&spec).await {
                Ok(e) => println!("created egress target {:?} (id {})", e.spec.name, e.id.0),
                Err(StorageError::AlreadyExists { .. }) => {
                    bail!("an egress target named {name:?} already exists")
                }
                Err(e) => return Err(refusal(e)),
            }
        }
        EgressCommand::List => {
            println!(
                "{:>5}  {:<20} {:<48} {:<16} {:<7} key",
                "id", "name", "url", "mountpoint", "enabled"
            );
            for e in repo.list(Page::first(Page::MAX_LIMIT)).await? {
                let s = &e.spec;
                println!(
                    "{:>5}  {:<20} {:<48} {:<16} {:<7} {}",
                    e.id.0,
                    s.name,
                    s.url,
                    s.mountpoint,
                    s.enabled,
                    if s.key.is_some() { "set" } else { "-" }
                );
            }
        }
        EgressCommand::Rm { name } => {
            let target = match repo.get_by_name(&name).await {
                Ok(t) => t,
                Err(StorageError::NotFound { .. }) => bail!("no egress target named {name:?}"),
                Err(e) => return Err(e.into()),
            };
            repo.delete(target.id).await?;
            println!("deleted egress target {name:?}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
