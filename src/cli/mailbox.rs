//! `bifrons mailbox show|set EXTENSION`: an account's mailbox settings (enabled, greeting,
//! limits, SIP message waiting, PIN). The PIN is read from stdin or a hidden prompt, never from
//! the command line, stored as an argon2 hash and never printed.

use std::process::ExitCode;

use anyhow::bail;
use bifrons::storage::{Mailbox, MwiMode, Storage, StorageError};

use super::trunk::read_secret;

/// `bifrons mailbox ...`
#[derive(Debug, clap::Subcommand)]
pub enum MailboxCommand {
    /// Print an account's mailbox settings (whether a PIN is set, never the PIN).
    Show {
        /// Extension of the account.
        extension: String,
    },
    /// Change an account's mailbox settings; an option left out keeps its value.
    Set {
        /// Extension of the account.
        extension: String,
        /// Whether unanswered calls go to the mailbox.
        #[arg(long)]
        enabled: Option<bool>,
        /// Messages kept at most (1 to 100000; 0 = no limit).
        #[arg(long)]
        max_messages: Option<u32>,
        /// Longest message, seconds (1 to 3600; 0 = `[voicemail] max_seconds`).
        #[arg(long)]
        max_length: Option<u32>,
        /// SIP message waiting (RFC 3842): off, unsolicited or subscribe.
        #[arg(long)]
        mwi: Option<String>,
        /// Back to the generated greeting tone (forgets an uploaded greeting).
        #[arg(long)]
        default_greeting: bool,
        /// Set the PIN (4 to 12 digits) from stdin or a prompt.
        #[arg(long, conflicts_with = "clear_pin")]
        pin: bool,
        /// Remove the PIN.
        #[arg(long)]
        clear_pin: bool,
    },
}

/// Runs a `mailbox` subcommand against the registry at `url`.
pub async fn run(url: &str, command: MailboxCommand) -> anyhow::Result<ExitCode> {
    // Read the PIN before touching the database, so a typo costs no connection.
    let pin = match &command {
        MailboxCommand::Set { pin: true, .. } => Some(read_secret("PIN")?),
        _ => None,
    };
    let storage = Storage::open(url)
        .await
        .map_err(|e| super::open_error(url, e))?;
    let outcome = run_on(&storage, command, pin).await;
    storage.close().await;
    outcome
}

async fn find(storage: &Storage, extension: &str) -> anyhow::Result<Mailbox> {
    match storage.mailboxes().get_by_extension(extension).await {
        Ok(m) => Ok(m),
        Err(StorageError::NotFound { .. }) => bail!("no account with extension {extension:?}"),
        Err(e) => Err(e.into()),
    }
}

fn print(m: &Mailbox) {
    let s = &m.settings;
    let or = |v: Option<u32>, none: &str| v.map_or(none.to_owned(), |n| n.to_string());
    println!("mailbox {}", m.extension);
    println!("  enabled       {}", s.enabled);
    println!(
        "  greeting      {}",
        s.greeting_file.as_deref().unwrap_or("default tone")
    );
    println!("  max messages  {}", or(s.max_messages, "no limit"));
    println!(
        "  max length    {}",
        or(s.max_length_s, "[voicemail] max_seconds")
    );
    println!("  mwi           {}", s.mwi);
    println!("  pin           {}", if m.has_pin { "set" } else { "-" });
}

async fn run_on(
    storage: &Storage,
    command: MailboxCommand,
    pin: Option<String>,
) -> anyhow::Result<ExitCode> {
    match command {
        MailboxCommand::Show { extension } => print(&find(storage, &extension).await?),
        MailboxCommand::Set {
            extension,
            enabled,
            max_messages,
            max_length,
            mwi,
            default_greeting,
            pin: _,
            clear_pin,
        } => {
            let mailbox = find(storage, &extension).await?;
            let mut settings = mailbox.settings.clone();
            if let Some(e) = enabled {
                settings.enabled = e;
            }
            if let Some(n) = max_messages {
                settings.max_messages = (n > 0).then_some(n);
            }
            if let Some(s) = max_length {
                settings.max_length_s = (s > 0).then_some(s);
            }
            if let Some(m) = mwi {
                settings.mwi = m.parse::<MwiMode>()?;
            }
            if default_greeting {
                settings.greeting_file = None;
            }
            let boxes = storage.mailboxes();
            boxes.set(mailbox.account_id, &settings).await?;
            if pin.is_some() || clear_pin {
                boxes.set_pin(mailbox.account_id, pin.as_deref()).await?;
            }
            print(&find(storage, &extension).await?);
        }
    }
    Ok(ExitCode::SUCCESS)
}
