//! Account lines from the registry: what an account's line is made of (address of record,
//! trunk, registration), and opening it without a browser. The SIP plugin's `register`, its
//! listen lines and the audio bridge's SIP participants all open lines this way.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bifrons_sip::{Codec, UaConfig};

use super::{AccountLine, LineRouting, LineSpec, SipService};
use crate::config::SipConfig;
use crate::storage::{Account, Storage, Trunk};

/// A SIP URI as the plugin accepts it: `sip:` or `sips:`, an optional user part, a host and
/// an optional port (RFC 3261 §19.1), without spaces or angle brackets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipUri {
    /// The URI as given (trimmed).
    pub text: String,
    /// User part, if any.
    pub user: Option<String>,
    /// Host (name, IPv4 or bracketed IPv6), with `:port` when given.
    pub hostport: String,
}

impl SipUri {
    /// Parses `text`; `None` when it is not a usable SIP URI.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        let rest = text
            .strip_prefix("sip:")
            .or_else(|| text.strip_prefix("sips:"))?;
        if rest.is_empty()
            || rest
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | '"'))
        {
            return None;
        }
        let addr = rest.split([';', '?']).next()?;
        let (user, hostport) = match addr.rsplit_once('@') {
            Some((u, h)) if !u.is_empty() => (Some(u.split(':').next()?.to_string()), h),
            Some(_) => return None,
            None => (None, addr),
        };
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (h, after) = v6.split_once(']')?;
            if h.parse::<std::net::Ipv6Addr>().is_err() {
                return None;
            }
            (h, after.strip_prefix(':'))
        } else {
            match hostport.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            }
        };
        let host_ok = !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'));
        let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok_and(|p| p > 0));
        if !host_ok || !port_ok {
            return None;
        }
        Some(Self {
            text: text.to_string(),
            user,
            hostport: hostport.to_string(),
        })
    }
}

/// What an account's line is made of, from the account and its trunk.
pub struct LineSettings {
    /// The account's address of record.
    pub aor: SipUri,
    /// Its domain (host without port).
    pub domain: String,
    /// Where calls and REGISTERs go: the trunk's outbound proxy, else its registrar.
    pub proxy: String,
    /// The registration to keep; `None` for a trunk authenticated by IP address.
    pub registration: Option<bifrons_sip::Account>,
}

/// The line settings of `account` on `trunk`; `None` when the account's URI is unusable.
pub fn line_settings(account: &Account, trunk: &Trunk) -> Option<LineSettings> {
    let aor = SipUri::parse(&account.spec.sip_uri)?;
    let domain = aor
        .hostport
        .rsplit_once(':')
        .filter(|(_, p)| p.parse::<u16>().is_ok())
        .map_or(aor.hostport.as_str(), |(h, _)| h)
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
            .or_else(|| aor.user.clone())
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
    Some(LineSettings {
        aor,
        domain,
        proxy,
        registration,
    })
}

/// The user agent settings of a line for an account with `settings` on `trunk`, offering
/// `codecs`, with the `[sip]` section's addresses, ports and timers.
pub fn line_ua_config(
    config: &SipConfig,
    settings: &LineSettings,
    trunk: &Trunk,
    codecs: &[Codec],
) -> UaConfig {
    UaConfig {
        bind: SocketAddr::new(config.local_ip, 0),
        rtp_ip: config.local_ip,
        rtp_ports: config.rtp_port_min..=config.rtp_port_max,
        codecs: codecs.to_vec(),
        user_agent: config.user_agent.clone(),
        timers: bifrons_sip::transaction::Timers {
            t1: Duration::from_millis(config.timer_t1_ms),
            ..Default::default()
        },
        // Caller id on a trunk without registration: the account's own address of record.
        identity: settings
            .aor
            .user
            .clone()
            .map(|user| (user, settings.domain.clone())),
        transport: match trunk.spec.transport {
            crate::storage::Transport::Tcp => bifrons_sip::Transport::Tcp,
            _ => bifrons_sip::Transport::Udp,
        },
        ..UaConfig::default()
    }
}

/// Opens (or shares) the line of registry `account`: its user agent registered through its
/// trunk, inbound calls routed through `service`'s router with the `[sip]` ring settings.
/// Returns the line and the account's trunk.
///
/// Errors: the trunk is missing or disabled, the account's URI is unusable, the user agent
/// cannot start or the registrar refused.
pub async fn open_account_line(
    service: &SipService,
    storage: &Storage,
    config: &SipConfig,
    account: &Account,
    codecs: &[Codec],
) -> anyhow::Result<(Arc<AccountLine>, Trunk)> {
    let trunk = storage.trunks().get(account.spec.trunk_id).await?;
    anyhow::ensure!(trunk.spec.enabled, "trunk {} is disabled", trunk.spec.name);
    let settings = line_settings(account, &trunk)
        .ok_or_else(|| anyhow::anyhow!("the account's SIP URI is not usable"))?;
    let ua_config = line_ua_config(config, &settings, &trunk, codecs);
    let routing = LineRouting {
        router: service.router.clone(),
        unanswered_code: config.unanswered_code,
        ring_timeout: Duration::from_secs(config.ring_timeout),
    };
    let spec = LineSpec {
        extension: account.spec.extension.clone(),
        aor: account.spec.sip_uri.clone(),
        registration: settings.registration,
        proxy: settings.proxy,
        trunk: trunk.spec.name.clone(),
    };
    let line = service.lines.open_line(spec, ua_config, routing).await?;
    Ok((line, trunk))
}
