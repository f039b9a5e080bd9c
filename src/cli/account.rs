//! `bifrons account add|list|edit|rm|set-secret`: SIP accounts in the registry. The web
//! secret (what a browser gives to register for the account) is read from stdin or a hidden
//! prompt, never from the command line, and stored as an argon2 hash only.

use std::process::ExitCode;

use anyhow::bail;
use bifrons::storage::{Account, AccountSpec, Page, Storage, StorageError};
use clap::Args;

use super::trunk::read_secret;

/// What `edit` may change; an option left out keeps its value.
#[derive(Debug, Args)]
pub struct AccountOptions {
    /// Trunk its calls go through (by name).
    #[arg(long)]
    pub trunk: Option<String>,
    /// The account's SIP URI (address of record), e.g. sip:100@pbx.example.com.
    #[arg(long)]
    pub uri: Option<String>,
    /// Display name shown to callees.
    #[arg(long)]
    pub display_name: Option<String>,
    /// Whether unanswered calls go to voicemail.
    #[arg(long)]
    pub voicemail: Option<bool>,
}

/// `bifrons account ...`
#[derive(Debug, clap::Subcommand)]
pub enum AccountCommand {
    /// Create an account on a trunk (then give it a web secret with `set-secret`).
    Add {
        /// Extension, as dialled (e.g. 100, *97): 1 to 64 characters, no control characters, no leading or trailing spaces
        extension: String,
        /// Trunk its calls go through (by name).
        #[arg(long)]
        trunk: String,
        /// The account's SIP URI (address of record), e.g. sip:100@pbx.example.com.
        #[arg(long)]
        uri: String,
        /// Display name shown to callees.
        #[arg(long)]
        display_name: Option<String>,
        /// Whether unanswered calls go to voicemail.
        #[arg(long)]
        voicemail: Option<bool>,
    },
    /// List accounts (secrets are never shown, only whether one is set).
    List,
    /// Change an account's settings.
    Edit {
        /// Extension.
        extension: String,
        /// What to change.
        #[command(flatten)]
        options: AccountOptions,
        /// Make the account the listen line of the streaming mountpoint with this id: the
        /// gateway registers it by itself and answers its calls with the mountpoint's audio.
        #[arg(long, value_name = "MOUNTPOINT", conflicts_with = "no_listen")]
        listen: Option<u64>,
        /// Unbind the account from its mountpoint (an ordinary account again).
        #[arg(long)]
        no_listen: bool,
    },
    /// Delete an account.
    Rm {
        /// Extension.
        extension: String,
    },
    /// Set the account's web secret (8 to 256 characters) from stdin or a prompt, or clear
    /// it with --clear (browsers can then no longer register for it).
    SetSecret {
        /// Extension.
        extension: String,
        /// Remove the secret instead of setting one.
        #[arg(long)]
        clear: bool,
    },
}

/// Runs an `account` subcommand against the registry at `url`.
pub async fn run(url: &str, command: AccountCommand) -> anyhow::Result<ExitCode> {
    // Read the secret before touching the database, so a typo costs no connection.
    let secret = match &command {
        AccountCommand::SetSecret { clear: false, .. } => Some(read_secret("Web secret")?),
        _ => None,
    };
    let storage = Storage::open(url)
        .await
        .map_err(|e| super::open_error(url, e))?;
    let outcome = run_on(&storage, command, secret).await;
    storage.close().await;
    outcome
}

async fn trunk_id(storage: &Storage, name: &str) -> anyhow::Result<bifrons::storage::TrunkId> {
    match storage.trunks().get_by_name(name).await {
        Ok(t) => Ok(t.id),
        Err(StorageError::NotFound { .. }) => bail!("no trunk named {name:?}"),
        Err(e) => Err(e.into()),
    }
}

async fn find(storage: &Storage, extension: &str) -> anyhow::Result<Account> {
    match storage.accounts().get_by_extension(extension).await {
        Ok(a) => Ok(a),
        Err(StorageError::NotFound { .. }) => bail!("no account with extension {extension:?}"),
        Err(e) => Err(e.into()),
    }
}

async fn run_on(
    storage: &Storage,
    command: AccountCommand,
    secret: Option<String>,
) -> anyhow::Result<ExitCode> {
    match command {
        AccountCommand::Add {
            extension,
            trunk,
            uri,
            display_name,
            voicemail,
        } => {
            let spec = AccountSpec {
                extension: extension.clone(),
                display_name: display_name.unwrap_or_default(),
                sip_uri: uri,
                trunk_id: trunk_id(storage, &trunk).await?,
                user_id: None,
                access_token: None,
                voicemail_enabled: voicemail.unwrap_or(false),
            };
            match storage.accounts().create(&spec).await {
                Ok(a) => println!(
                    "created account {:?} (id {}) on trunk {trunk:?}",
                    a.spec.extension, a.id
                ),
                Err(StorageError::AlreadyExists { .. }) => {
                    bail!("an account with extension {extension:?} already exists")
                }
                Err(e) => return Err(e.into()),
            }
        }
        AccountCommand::List => {
            let trunks: std::collections::HashMap<_, _> = storage
                .trunks()
                .list(Page::first(Page::MAX_LIMIT))
                .await?
                .into_iter()
                .map(|t| (t.id, t.spec.name))
                .collect();
            println!(
                "{:>5}  {:<12} {:<36} {:<20} {:<16} {:<9} web secret",
                "id", "extension", "uri", "display name", "trunk", "voicemail"
            );
            let mut page = Page::first(Page::MAX_LIMIT);
            loop {
                let accounts = storage.accounts().list(page).await?;
                for a in &accounts {
                    let trunk = trunks
                        .get(&a.spec.trunk_id)
                        .map_or_else(|| a.spec.trunk_id.to_string(), Clone::clone);
                    println!(
                        "{:>5}  {:<12} {:<36} {:<20} {:<16} {:<9} {}",
                        a.id,
                        a.spec.extension,
                        a.spec.sip_uri,
                        a.spec.display_name,
                        trunk,
                        a.spec.voicemail_enabled,
                        if a.has_web_secret { "set" } else { "-" }
                    );
                }
                if accounts.len() < page.limit as usize {
                    break;
                }
                page.offset += u64::from(page.limit);
            }
        }
        AccountCommand::Edit {
            extension,
            options,
            listen,
            no_listen,
        } => {
            let account = find(storage, &extension).await?;
            if let Some(mountpoint) = listen {
                if !mountpoint_known(storage, mountpoint).await? {
                    bail!("no streaming mountpoint {mountpoint} (neither permanent nor fed by a stream key)");
                }
            }
            let mut spec = account.spec.clone();
            if let Some(t) = &options.trunk {
                spec.trunk_id = trunk_id(storage, t).await?;
            }
            if let Some(u) = &options.uri {
                spec.sip_uri = u.clone();
            }
            if let Some(d) = &options.display_name {
                spec.display_name = d.clone();
            }
            if let Some(v) = options.voicemail {
                spec.voicemail_enabled = v;
            }
            storage.accounts().update(account.id, &spec).await?;
            if let Some(mountpoint) = listen {
                storage
                    .accounts()
                    .set_listen_mountpoint(account.id, Some(mountpoint))
                    .await?;
                println!("account {extension:?} is the listen line of mountpoint {mountpoint}");
            } else if no_listen {
                storage
                    .accounts()
                    .set_listen_mountpoint(account.id, None)
                    .await?;
            }
            println!("updated account {extension:?}");
        }
        AccountCommand::Rm { extension } => {
            let account = find(storage, &extension).await?;
            storage.accounts().delete(account.id).await?;
            println!("deleted account {extension:?}");
        }
        AccountCommand::SetSecret { extension, .. } => {
            let account = find(storage, &extension).await?;
            storage
                .accounts()
                .set_web_secret(account.id, secret.as_deref())
                .await?;
            match secret {
                Some(_) => println!("web secret of account {extension:?} set"),
                None => println!("web secret of account {extension:?} cleared"),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Whether `id` names a mountpoint the registry knows: a permanent one, or one a stream key
/// feeds (created on the key's first publish).
async fn mountpoint_known(storage: &Storage, id: u64) -> anyhow::Result<bool> {
    if storage.mountpoints().exists(id).await? {
        return Ok(true);
    }
    let mut page = Page::first(Page::MAX_LIMIT);
    loop {
        let keys = storage.stream_keys().list(page).await?;
        if keys.iter().any(|k| k.mountpoint_id() == id) {
            return Ok(true);
        }
        if keys.len() < page.limit as usize {
            return Ok(false);
        }
        page.offset += u64::from(page.limit);
    }
}
