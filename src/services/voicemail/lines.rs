//! Mailbox lines: the account line of every registry account with a mailbox stays open (and
//! registered through its trunk) whether or not a browser registered for it, so that a call
//! to an account nobody is registered for still reaches the gateway and goes to the mailbox
//! at once, and a phone sharing the account's address of record can subscribe to its message
//! waiting. The line of the mailbox extension (`[voicemail] extension`, a registry account
//! too) is kept the same way, with the mailbox menu ([`super::menu`]) as its call target.
//!
//! The registry is read at start-up and every `[sip] registry_poll` seconds: lines of new
//! mailboxes open, lines of mailboxes switched off or deleted are let go (the line itself
//! stays while a browser still holds it).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bifrons_sip::Codec;
use tokio_util::sync::CancellationToken;

use super::menu::MenuTarget;
use super::waiting::MessageWaiting;
use crate::config::{SipConfig, VoicemailConfig};
use crate::services::sip::{open_account_line, AccountLine, RouteGuard, SipService};
use crate::storage::{Account, Page, Storage};

/// Codecs a mailbox line answers with, the caller's first offered one among them: the
/// answering machine and the mailbox menu play (and the machine records) G.711 and Opus
/// (browsers sharing the line are bridged to it by the SIP plugin).
const CODECS: [Codec; 3] = [Codec::Pcmu, Codec::Pcma, Codec::Opus];

/// What the keeper needs.
pub struct MailboxLines {
    /// The registry.
    pub storage: Storage,
    /// Lines and router.
    pub sip: Arc<SipService>,
    /// `[sip]`.
    pub sip_config: SipConfig,
    /// `[voicemail]`.
    pub config: VoicemailConfig,
    /// Message waiting, published when a line opens.
    pub waiting: Arc<MessageWaiting>,
    /// The mailbox menu's target (the mailbox extension's calls).
    pub menu: Arc<MenuTarget>,
}

/// A line kept open.
struct Held {
    _line: Arc<AccountLine>,
    _route: Option<RouteGuard>,
}

impl MailboxLines {
    /// Keeps the lines in step with the registry until `shutdown`: now, then every `every`
    /// (`None`: only at start-up).
    pub async fn run(self, every: Option<Duration>, shutdown: CancellationToken) {
        let mut held: HashMap<String, Held> = HashMap::new();
        loop {
            self.sync(&mut held).await;
            let Some(every) = every else {
                shutdown.cancelled().await;
                return;
            };
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
        }
    }

    /// The accounts whose line should be open: mailboxes, and the mailbox extension.
    async fn wanted(&self) -> Option<Vec<Account>> {
        let accounts = match self
            .storage
            .accounts()
            .list(Page::first(Page::MAX_LIMIT))
            .await
        {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "mailbox lines: registry unreadable");
                return None;
            }
        };
        Some(
            accounts
                .into_iter()
                .filter(|a| {
                    a.spec.voicemail_enabled
                        || (!self.config.extension.is_empty()
                            && a.spec.extension == self.config.extension)
                })
                .collect(),
        )
    }

    async fn sync(&self, held: &mut HashMap<String, Held>) {
        let Some(wanted) = self.wanted().await else {
            return;
        };
        held.retain(|extension, _| {
            let keep = wanted.iter().any(|a| &a.spec.extension == extension);
            if !keep {
                tracing::info!(%extension, "mailbox line let go: mailbox off or account gone");
            }
            keep
        });
        for account in wanted {
            let extension = account.spec.extension.clone();
            if held.contains_key(&extension) {
                continue;
            }
            match self.open(&account).await {
                Ok(h) => {
                    held.insert(extension, h);
                }
                Err(e) => {
                    tracing::warn!(%extension, error = %e, "mailbox line not opened (retried at the next registry poll)");
                }
            }
        }
    }

    async fn open(&self, account: &Account) -> anyhow::Result<Held> {
        let extension = &account.spec.extension;
        let is_menu = !self.config.extension.is_empty() && *extension == self.config.extension;
        let (line, _trunk) =
            open_account_line(&self.sip, &self.storage, &self.sip_config, account, &CODECS).await?;
        let route = is_menu.then(|| self.sip.router.register(extension, self.menu.clone()));
        tracing::info!(%extension, menu = is_menu, "mailbox line open");
        if account.spec.voicemail_enabled {
            self.waiting.publish_line(&line).await;
        }
        Ok(Held {
            _line: line,
            _route: route,
        })
    }
}
