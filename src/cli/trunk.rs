//! `bifrons trunk add|list|edit|rm`: SIP trunks in the registry. The trunk password is read
//! from stdin (first line) or a hidden prompt, never from the command line.

use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;

use anyhow::{bail, Context};
use bifrons::storage::{
    DtmfMode, Page, Secret, Storage, StorageError, Transport, TrunkSpec, TrunkSrtp,
};
use clap::Args;

/// Trunk settings `add` and `edit` take; on `edit`, an option left out keeps its value.
#[derive(Debug, Args)]
pub struct TrunkOptions {
    /// Registrar (or proxy) URI, e.g. sip:pbx.example.com:5060.
    #[arg(long)]
    pub registrar: Option<String>,
    /// SIP transport: udp, tcp or tls.
    #[arg(long)]
    pub transport: Option<String>,
    /// User part of the trunk's address of record.
    #[arg(long)]
    pub username: Option<String>,
    /// Digest user name when it differs from --username.
    #[arg(long)]
    pub auth_username: Option<String>,
    /// Digest realm, when the trunk needs a fixed one.
    #[arg(long)]
    pub realm: Option<String>,
    /// Register (true) or authenticate by IP address only (false).
    #[arg(long)]
    pub register: Option<bool>,
    /// Registration lifetime asked for, seconds.
    #[arg(long)]
    pub expiry: Option<u32>,
    /// Outbound proxy URI.
    #[arg(long)]
    pub outbound_proxy: Option<String>,
    /// Codecs in preference order, comma-separated (e.g. opus,PCMU,PCMA).
    #[arg(long)]
    pub codecs: Option<String>,
    /// DTMF mode: rfc4733, info or inband.
    #[arg(long)]
    pub dtmf: Option<String>,
    /// Enable (true) or disable (false) the trunk.
    #[arg(long)]
    pub enabled: Option<bool>,
    /// SDES-SRTP the trunk requires: off, sdes_optional or sdes_mandatory.
    #[arg(long)]
    pub srtp: Option<String>,
    /// Read the trunk's digest password (stdin's first line, or a prompt on a terminal).
    #[arg(long)]
    pub password: bool,
}

impl TrunkOptions {
    fn apply(&self, spec: &mut TrunkSpec) -> anyhow::Result<()> {
        if let Some(r) = &self.registrar {
            spec.registrar_uri = r.clone();
        }
        if let Some(t) = &self.transport {
            spec.transport = t.parse::<Transport>()?;
        }
        let text = |v: &Option<String>| v.as_ref().map(|s| (!s.is_empty()).then(|| s.clone()));
        if let Some(v) = text(&self.username) {
            spec.username = v;
        }
        if let Some(v) = text(&self.auth_username) {
            spec.auth_username = v;
        }
        if let Some(v) = text(&self.realm) {
            spec.realm = v;
        }
        if let Some(v) = text(&self.outbound_proxy) {
            spec.outbound_proxy = v;
        }
        if let Some(r) = self.register {
            spec.register = r;
        }
        if let Some(e) = self.expiry {
            spec.register_expiry_s = e;
        }
        if let Some(c) = &self.codecs {
            spec.codecs = c.split(',').map(|c| c.trim().to_string()).collect();
        }
        if let Some(d) = &self.dtmf {
            spec.dtmf_mode = d.parse::<DtmfMode>()?;
        }
        if let Some(e) = self.enabled {
            spec.enabled = e;
        }
        if let Some(s) = &self.srtp {
            spec.srtp = s.parse::<TrunkSrtp>()?;
        }
        if self.password {
            spec.password = Some(Secret::new(read_secret("Trunk password")?));
        }
        Ok(())
    }
}

/// `bifrons trunk ...`
#[derive(Debug, clap::Subcommand)]
pub enum TrunkCommand {
    /// Create a trunk (defaults: UDP, register for 3600 s, opus,PCMU,PCMA, RFC 4733 DTMF).
    Add {
        /// Trunk name: 1 to 64 of A-Z a-z 0-9 . _ -
        name: String,
        /// Its settings; --registrar is required.
        #[command(flatten)]
        options: TrunkOptions,
    },
    /// List trunks (passwords are never shown).
    List,
    /// Change a trunk's settings.
    Edit {
        /// Trunk name.
        name: String,
        /// What to change.
        #[command(flatten)]
        options: TrunkOptions,
    },
    /// Delete a trunk (refused while accounts use it).
    Rm {
        /// Trunk name.
        name: String,
    },
}

/// Reads a secret: the first line of stdin, or a hidden prompt (asked twice) on a terminal.
pub fn read_secret(what: &str) -> anyhow::Result<String> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password(format!("{what}: "))?;
        let again = rpassword::prompt_password(format!("Repeat {}: ", what.to_lowercase()))?;
        if first != again {
            bail!("the two entries differ");
        }
        return Ok(first);
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .with_context(|| format!("cannot read the {} from stdin", what.to_lowercase()))?;
    let secret = line.trim_end_matches(['\r', '\n']).to_owned();
    if secret.is_empty() {
        bail!("no {} on stdin", what.to_lowercase());
    }
    Ok(secret)
}

/// Runs a `trunk` subcommand against the registry at `url`.
pub async fn run(url: &str, command: TrunkCommand) -> anyhow::Result<ExitCode> {
    let storage = Storage::open(url)
        .await
        .map_err(|e| super::open_error(url, e))?;
    let outcome = run_on(&storage, command).await;
    storage.close().await;
    outcome
}

async fn run_on(storage: &Storage, command: TrunkCommand) -> anyhow::Result<ExitCode> {
    match command {
        TrunkCommand::Add { name, options } => {
            let Some(registrar) = options.registrar.clone() else {
                bail!("--registrar is required (e.g. --registrar sip:pbx.example.com)");
            };
            let mut spec = TrunkSpec::new(name.clone(), registrar);
            options.apply(&mut spec)?;
            match storage.trunks().create(&spec).await {
                Ok(t) => println!("created trunk {:?} (id {})", t.spec.name, t.id),
                Err(StorageError::AlreadyExists { .. }) => {
                    bail!("a trunk named {name:?} already exists")
                }
                Err(e) => return Err(e.into()),
            }
        }
        TrunkCommand::List => {
            println!(
                "{:>5}  {:<20} {:<32} {:<4} {:<8} {:<16} {:<8} {:<7} {:<14} password",
                "id", "name", "registrar", "tr", "register", "codecs", "dtmf", "enabled", "srtp"
            );
            let mut page = Page::first(Page::MAX_LIMIT);
            loop {
                let trunks = storage.trunks().list(page).await?;
                for t in &trunks {
                    let s = &t.spec;
                    println!(
                        "{:>5}  {:<20} {:<32} {:<4} {:<8} {:<16} {:<8} {:<7} {:<14} {}",
                        t.id,
                        s.name,
                        s.registrar_uri,
                        s.transport,
                        if s.register {
                            format!("{}s", s.register_expiry_s)
                        } else {
                            "no".into()
                        },
                        s.codecs.join(","),
                        s.dtmf_mode,
                        s.enabled,
                        s.srtp,
                        if s.password.is_some() { "set" } else { "-" }
                    );
                }
                if trunks.len() < page.limit as usize {
                    break;
                }
                page.offset += u64::from(page.limit);
            }
        }
        TrunkCommand::Edit { name, options } => {
            let trunk = find(storage, &name).await?;
            let mut spec = trunk.spec.clone();
            options.apply(&mut spec)?;
            storage.trunks().update(trunk.id, &spec).await?;
            println!("updated trunk {name:?}");
        }
        TrunkCommand::Rm { name } => {
            let trunk = find(storage, &name).await?;
            match storage.trunks().delete(trunk.id).await {
                Ok(()) => println!("deleted trunk {name:?}"),
                Err(StorageError::InUse { .. }) => {
                    bail!("trunk {name:?} is used by accounts: move or delete them first")
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn find(storage: &Storage, name: &str) -> anyhow::Result<bifrons::storage::Trunk> {
    match storage.trunks().get_by_name(name).await {
        Ok(t) => Ok(t),
        Err(StorageError::NotFound { .. }) => bail!("no trunk named {name:?}"),
        Err(e) => Err(e.into()),
    }
}
