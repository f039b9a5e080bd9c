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
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bifrons_sip::{Codec, UaConfig};
use tokio_util::sync::CancellationToken;

use super::menu::MenuTarget;
use super::waiting::MessageWaiting;
use crate::config::{SipConfig, VoicemailConfig};
use crate::services::sip::{AccountLine, LineRouting, LineSpec, RouteGuard, SipService};
use crate::storage::{Account, Page, Storage, Trunk};

/// Codecs a mailbox line answers with: the answering machine and the menu play and record
/// G.711 (browsers sharing the line are bridged to it by the SIP plugin).
const CODECS: [Codec; 2] = [Codec::Pcmu, Codec::Pcma];

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

/// The line settings of the account `extension` with address of record `sip_uri` on `trunk`,
/// registered with the trunk's credentials (as the SIP plugin registers an account's line).
fn line_of(
    extension: &str,
    sip_uri: &str,
    trunk: &Trunk,
    sip: &SipConfig,
) -> Option<(LineSpec, UaConfig)> {
    let aor = sip_uri.trim();
    let rest = aor
        .strip_prefix("sip:")
        .or_else(|| aor.strip_prefix("sips:"))?;
    let rest = rest.split([';', '?']).next()?;
    let (user, hostport) = match rest.split_once('@') {
        Some((u, h)) => (Some(u.to_string()), h),
        None => (None, rest),
    };
    let domain = hostport
        .rsplit_once(':')
        .filter(|(_, p)| p.parse::<u16>().is_ok())
        .map_or(hostport, |(h, _)| h)
        .to_string();
    let proxy = trunk
        .spec
        .outbound_proxy
        .clone()
        .unwrap_or_else(|| trunk.spec.registrar_uri.clone());
    let registration = trunk.spec.register.then(|| bifrons_sip::Account {
        registrar: proxy.clone(),
        outbound_proxy: None,
        user: trunk
            .spec
            .auth_username
            .clone()
            .or_else(|| trunk.spec.username.clone())
            .or_else(|| user.clone())
            .unwrap_or_default(),
        auth_user: None,
        secret: bifrons_sip::DigestSecret::Password(
            trunk
                .spec
                .password
                .as_ref()
                .map(|p| p.expose().to_string())
                .unwrap_or_default(),
        ),
        domain: Some(domain.clone()),
        expires: trunk.spec.register_expiry_s,
    });
    let ua = UaConfig {
        bind: SocketAddr::new(sip.local_ip, 0),
        rtp_ip: sip.local_ip,
        rtp_ports: sip.rtp_port_min..=sip.rtp_port_max,
        codecs: CODECS.to_vec(),
        user_agent: sip.user_agent.clone(),
        timers: bifrons_sip::transaction::Timers {
            t1: Duration::from_millis(sip.timer_t1_ms),
            ..Default::default()
        },
        identity: user.map(|u| (u, domain)),
        transport: match trunk.spec.transport {
            crate::storage::Transport::Tcp => bifrons_sip::Transport::Tcp,
            _ => bifrons_sip::Transport::Udp,
        },
        ..UaConfig::default()
    };
    let spec = LineSpec {
        extension: extension.to_string(),
        aor: sip_uri.to_string(),
        registration,
        proxy,
        trunk: trunk.spec.name.clone(),
    };
    Some((spec, ua))
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
        let trunk = self.storage.trunks().get(account.spec.trunk_id).await?;
        anyhow::ensure!(trunk.spec.enabled, "trunk {} is disabled", trunk.spec.name);
        let (spec, ua) = line_of(
            &account.spec.extension,
            &account.spec.sip_uri,
            &trunk,
            &self.sip_config,
        )
        .ok_or_else(|| anyhow::anyhow!("the account's SIP URI is not usable"))?;
        let routing = LineRouting {
            router: self.sip.router.clone(),
            unanswered_code: self.sip_config.unanswered_code,
            ring_timeout: Duration::from_secs(self.sip_config.ring_timeout),
        };
        let line = self.sip.lines.open_line(spec, ua, routing).await?;
        let extension = &account.spec.extension;
        let is_menu = !self.config.extension.is_empty() && *extension == self.config.extension;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{Secret, TrunkId, TrunkSpec};

    #[test]
    fn a_line_registers_the_address_of_record_with_the_trunk_credentials() {
        let mut t = TrunkSpec::new("pbx", "sip:127.0.0.1:5060");
        t.password = Some(Secret::new("pw".to_string()));
        let trunk = Trunk {
            id: TrunkId(1),
            spec: t,
            created: crate::storage::Timestamp(0),
        };
        let (line, ua) = line_of(
            "100",
            "sip:dave@127.0.0.1:5060",
            &trunk,
            &SipConfig::default(),
        )
        .unwrap();
        let reg = line.registration.unwrap();
        assert_eq!(reg.user, "dave");
        assert_eq!(reg.domain.as_deref(), Some("127.0.0.1"));
        assert_eq!(line.extension, "100");
        assert_eq!(ua.identity, Some(("dave".into(), "127.0.0.1".into())));
        assert_eq!(ua.codecs[0], Codec::Pcmu);
        assert!(line_of("100", "tel:+1", &trunk, &SipConfig::default()).is_none());
    }
}
