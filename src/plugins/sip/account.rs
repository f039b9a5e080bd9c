//! `register` with `type: account`: a browser registers for a registry account with the
//! account's web secret (never the SIP password, which stays on the server). The account's one
//! line (user agent + registration through its trunk) is shared by all its handles, and its
//! inbound calls ring every one of them.

use std::net::SocketAddr;
use std::sync::{Arc, Weak};
use std::time::Duration;

use bifrons_sip::UaConfig;
use serde_json::json;

use super::handle::{Registered, SipHandle};
use super::register::{failure_status, SIP_CODECS};
use super::requests::{SipError, SipUri, ERROR_INVALID_ELEMENT, ERROR_UNKNOWN, ERROR_WRONG_STATE};
use super::{events, incoming, Op, Shared};
use crate::plugins::HandleRef;
use crate::services::sip::{
    line_settings, CallTarget, InboundCall, InboundMessage, LineRouting, LineSettings, LineSpec,
    RingingCall, TargetKind, VoicemailNotice,
};

/// The same answer for an unknown account and a wrong secret, so accounts cannot be probed.
fn unauthorized() -> SipError {
    SipError::new(
        ERROR_INVALID_ELEMENT,
        "Unauthorized (wrong account or secret)",
    )
}

/// A handle in its account's ring group.
struct HandleTarget {
    shared: Arc<Shared>,
    handle: Weak<SipHandle>,
    ctx: HandleRef,
}

impl CallTarget for HandleTarget {
    fn kind(&self) -> TargetKind {
        TargetKind::Handle
    }

    fn offer(&self, call: &InboundCall) {
        tracing::debug!(call_id = %call.call_id, "call offered without a SIP dialog: ignored");
    }

    fn message(&self, message: &InboundMessage) -> bool {
        let Some(ctx) = self.ctx.upgrade() else {
            return false;
        };
        ctx.push_event(
            None,
            super::call::message_event(
                None,
                message.from.clone(),
                message.display_name.clone(),
                message.content_type.clone(),
                &message.body,
            ),
            None,
        );
        true
    }

    /// Message waiting: `{"sip":"event","result":{"event":"voicemail",...}}`.
    fn voicemail(&self, notice: &VoicemailNotice) {
        if let Some(ctx) = self.ctx.upgrade() {
            ctx.push_event(
                None,
                serde_json::json!({ "sip": "event", "result": {
                    "event": "voicemail",
                    "account": notice.extension,
                    "id": notice.recording_id,
                    "caller": notice.caller,
                    "new": notice.new,
                    "total": notice.total,
                }}),
                None,
            );
        }
    }

    fn ring(&self, _call: &InboundCall, ringing: &Arc<RingingCall>) {
        let (Some(handle), Some(ctx)) = (self.handle.upgrade(), self.ctx.upgrade()) else {
            return;
        };
        let op = Op {
            shared: self.shared.clone(),
            handle,
            ctx,
        };
        incoming::ring(&op, ringing.clone());
    }
}

/// Every `every`, re-reads the account and trunk of each open line and re-registers a line
/// whose registration changed (registrar, user, password, expiry, or registration switched
/// off or on), so an admin's edit reaches the PBX without browsers registering again. Ends
/// with `shutdown`.
pub(super) async fn watch_registry(
    shared: std::sync::Arc<Shared>,
    every: Duration,
    shutdown: tokio_util::sync::CancellationToken,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        for line in shared.service.lines.open().await {
            let extension = line.spec.extension.clone();
            let account = match shared.storage.accounts().get_by_extension(&extension).await {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(%extension, error = %e, "account of an open line unreadable");
                    continue;
                }
            };
            let Ok(trunk) = shared.storage.trunks().get(account.spec.trunk_id).await else {
                continue;
            };
            let Some(settings) = line_settings(&account, &trunk) else {
                continue;
            };
            match line.refresh(settings.registration).await {
                Ok(true) => {
                    tracing::info!(%extension, trunk = %trunk.spec.name, "account line re-registered after a registry change")
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(%extension, trunk = %trunk.spec.name, error = %e, "re-registration after a registry change failed")
                }
            }
        }
    }
}

pub(super) async fn register(
    op: &Op,
    extension: &str,
    secret: &str,
    tx: Option<&str>,
) -> Result<Option<Registered>, SipError> {
    let storage = &op.shared.storage;
    let account = storage
        .accounts()
        .authenticate_web(extension, secret)
        .await
        .map_err(|e| SipError::new(ERROR_UNKNOWN, format!("Registry error: {e}")))?;
    let Some(account) = account else {
        tracing::warn!(account = %extension, "sip register for an account refused: unknown account or wrong secret");
        return Err(unauthorized());
    };
    let trunk = storage
        .trunks()
        .get(account.spec.trunk_id)
        .await
        .map_err(|e| SipError::new(ERROR_UNKNOWN, format!("Registry error: {e}")))?;
    if !trunk.spec.enabled {
        return Err(SipError::new(
            ERROR_WRONG_STATE,
            format!("Wrong state (trunk {} is disabled)", trunk.spec.name),
        ));
    }
    let LineSettings {
        aor,
        domain,
        proxy,
        registration,
    } = line_settings(&account, &trunk)
        .ok_or_else(|| SipError::new(ERROR_UNKNOWN, "The account's SIP URI is not usable"))?;
    let register_sent = registration.is_some();
    if register_sent {
        op.event(tx, events::result(None, "registering", json!({})), None);
    }
    let config = &op.shared.config;
    let ua_config = UaConfig {
        bind: SocketAddr::new(config.local_ip, 0),
        rtp_ip: config.local_ip,
        rtp_ports: config.rtp_port_min..=config.rtp_port_max,
        codecs: SIP_CODECS.to_vec(),
        user_agent: config.user_agent.clone(),
        timers: super::register::timers(&op.shared),
        // Caller id on a trunk without registration: the account's own address of record.
        identity: aor.user.clone().map(|user| (user, domain.clone())),
        transport: match trunk.spec.transport {
            crate::storage::Transport::Tcp => bifrons_sip::Transport::Tcp,
            _ => bifrons_sip::Transport::Udp,
        },
        ..UaConfig::default()
    };
    let routing = LineRouting {
        router: op.shared.service.router.clone(),
        unanswered_code: config.unanswered_code,
        ring_timeout: Duration::from_secs(config.ring_timeout),
    };
    let spec = LineSpec {
        extension: account.spec.extension.clone(),
        aor: account.spec.sip_uri.clone(),
        registration,
        proxy: proxy.clone(),
        trunk: trunk.spec.name.clone(),
    };
    let line = match op
        .shared
        .service
        .lines
        .open_line(spec, ua_config, routing)
        .await
    {
        Ok(line) => line,
        Err(e) => {
            let (code, reason) = failure_status(&e);
            tracing::warn!(account = %extension, trunk = %trunk.spec.name, code, %reason, "account registration failed");
            op.event(
                tx,
                events::result(
                    None,
                    "registration_failed",
                    json!({ "code": code, "reason": reason }),
                ),
                None,
            );
            return Ok(None);
        }
    };
    let target = Arc::new(HandleTarget {
        shared: op.shared.clone(),
        handle: Arc::downgrade(&op.handle),
        ctx: op.ctx.weak(),
    });
    let route = op
        .shared
        .service
        .router
        .register(&account.spec.extension, target);
    tracing::info!(account = %extension, trunk = %trunk.spec.name, "browser registered for account");
    op.event(
        tx,
        events::result(
            None,
            "registered",
            json!({
                "username": account.spec.sip_uri,
                "register_sent": register_sent,
                "account": account.spec.extension,
                "displayname": account.spec.display_name,
            }),
        ),
        None,
    );
    // The trunk's codec list, in its order, limited to what the bridge handles.
    let mut codecs: Vec<bifrons_sip::Codec> = trunk
        .spec
        .codecs
        .iter()
        .filter_map(|c| match c.to_ascii_lowercase().as_str() {
            "opus" => Some(bifrons_sip::Codec::Opus),
            "pcmu" => Some(bifrons_sip::Codec::Pcmu),
            "pcma" => Some(bifrons_sip::Codec::Pcma),
            _ => None,
        })
        .collect();
    if codecs.is_empty() {
        tracing::warn!(trunk = %trunk.spec.name, codecs = ?trunk.spec.codecs, "no bridgeable codec on the trunk: offering the defaults");
        codecs = SIP_CODECS.to_vec();
    }
    let dtmf_info = trunk.spec.dtmf_mode == crate::storage::DtmfMode::Info;
    let srtp = match trunk.spec.srtp {
        crate::storage::TrunkSrtp::Off => None,
        crate::storage::TrunkSrtp::Optional => Some(bifrons_sip::srtp::SrtpMode::Optional),
        crate::storage::TrunkSrtp::Mandatory => Some(bifrons_sip::srtp::SrtpMode::Mandatory),
    };
    let via_trunk = (!register_sent)
        .then(|| SipUri::parse(&proxy).map(|p| p.hostport))
        .flatten();
    Ok(Some(Registered {
        username: account.spec.sip_uri,
        register_sent,
        ua: line.ua.clone(),
        account: Some(account.spec.extension),
        via_trunk,
        codecs,
        dtmf_info,
        srtp,
        _line: Some(line),
        _events: None,
        _route: Some(route),
    }))
}
