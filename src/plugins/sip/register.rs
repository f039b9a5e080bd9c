//! `register` and `unregister` for guests and digest credentials: each handle gets its own
//! user agent (Janus' model), whose incoming calls ring this handle only. Registry accounts
//! share one user agent per account instead (see `account`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bifrons_sip::{
    Account, AuthFailure, Codec, RegistrationEvent, Ua, UaConfig, UaEvent, UaEvents,
};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::handle::{Registered, Registration};
use super::requests::{Register, RegisterKind, SipError, ERROR_ALREADY_REGISTERED, ERROR_IO_ERROR};
use super::{account, events, incoming, Op, Shared};
use crate::services::sip::RingingCall;

/// Codecs the gateway offers and accepts towards SIP peers, in preference order.
pub const SIP_CODECS: [Codec; 3] = [Codec::Opus, Codec::Pcmu, Codec::Pcma];

/// A user agent on the configured address, with the gateway's codecs, and the handle's own
/// `user_agent` and transport (`force_tcp`/`force_udp`) from its `register`.
pub async fn start_ua(shared: &Shared, request: &Register) -> Result<(Ua, UaEvents), SipError> {
    let config = UaConfig {
        bind: SocketAddr::new(shared.config.local_ip, 0),
        transport: request.transport.unwrap_or(bifrons_sip::Transport::Udp),
        rtp_ip: shared.config.local_ip,
        rtp_ports: shared.config.rtp_port_min..=shared.config.rtp_port_max,
        codecs: SIP_CODECS.to_vec(),
        user_agent: request
            .user_agent
            .clone()
            .unwrap_or_else(|| shared.config.user_agent.clone()),
        timers: timers(shared),
        ..UaConfig::default()
    };
    Ua::start(config).await.map_err(|e| {
        SipError::new(
            ERROR_IO_ERROR,
            format!("Could not start the SIP stack: {e}"),
        )
    })
}

/// SIP transaction timers from `[sip] timer_t1_ms` (T2 and T4 keep their RFC 3261 values).
pub fn timers(shared: &Shared) -> bifrons_sip::transaction::Timers {
    bifrons_sip::transaction::Timers {
        t1: Duration::from_millis(shared.config.timer_t1_ms),
        ..Default::default()
    }
}

/// The SIP status and reason of a failed registration, for `registration_failed`.
pub fn failure_status(error: &bifrons_sip::SipError) -> (u16, String) {
    use bifrons_sip::SipError as E;
    match error {
        E::Auth(AuthFailure::WrongCredentials { code }) => (*code, "Unauthorized".into()),
        E::Auth(AuthFailure::Forbidden) => (403, "Forbidden".into()),
        E::Auth(other) => (401, other.to_string()),
        E::Rejected { code, reason } => (*code, reason.clone()),
        E::Timeout => (408, "Request Timeout".into()),
        other => (500, other.to_string()),
    }
}

pub(super) async fn register(op: &Op, request: Register, tx: Option<&str>) -> Result<(), SipError> {
    {
        let mut state = op.handle.state.lock().await;
        match &state.registration {
            Registration::None => {}
            Registration::Registering => {
                return Err(SipError::new(
                    ERROR_ALREADY_REGISTERED,
                    "Already registering",
                ))
            }
            Registration::Registered(r) => {
                return Err(SipError::new(
                    ERROR_ALREADY_REGISTERED,
                    format!("Already registered ({})", r.username),
                ))
            }
        }
        state.registration = Registration::Registering;
        op.handle.summarize(&state);
    }
    let outcome = match request.kind.clone() {
        RegisterKind::Account { account, secret } => {
            account::register(op, &account, &secret, tx).await
        }
        RegisterKind::Guest => guest(op, &request, tx).await,
        RegisterKind::Credentials { secret } => credentials(op, &request, &secret, tx).await,
    };
    let mut state = op.handle.state.lock().await;
    match outcome {
        Ok(Some(registered)) => state.registration = Registration::Registered(registered),
        Ok(None) => state.registration = Registration::None,
        Err(e) => {
            state.registration = Registration::None;
            op.handle.summarize(&state);
            return Err(e);
        }
    }
    op.handle.summarize(&state);
    Ok(())
}

async fn guest(
    op: &Op,
    request: &Register,
    tx: Option<&str>,
) -> Result<Option<Registered>, SipError> {
    let (ua, ua_events) = start_ua(&op.shared, request).await?;
    let ua = Arc::new(ua);
    let username = request
        .username
        .as_ref()
        .map(|u| u.text.clone())
        .unwrap_or_else(|| format!("sip:guest@{}", ua.local_addr()));
    let stop = follow_ua(op, ua_events, username.clone());
    op.event(
        tx,
        events::result(
            None,
            "registered",
            json!({ "username": username, "register_sent": false }),
        ),
        None,
    );
    tracing::info!(%username, "sip guest ready");
    Ok(Some(Registered {
        username,
        register_sent: false,
        ua,
        account: None,
        via_trunk: None,
        codecs: SIP_CODECS.to_vec(),
        dtmf_info: false,
        srtp: None,
        _line: None,
        _events: Some(stop.drop_guard()),
        _route: None,
    }))
}

async fn credentials(
    op: &Op,
    request: &Register,
    secret: &bifrons_sip::DigestSecret,
    tx: Option<&str>,
) -> Result<Option<Registered>, SipError> {
    let Some(username) = request.username.clone() else {
        return Err(SipError::new(
            super::requests::ERROR_MISSING_ELEMENT,
            "Missing element (username)",
        ));
    };
    let (ua, ua_events) = start_ua(&op.shared, request).await?;
    let ua = Arc::new(ua);
    let registrar = request
        .proxy
        .as_ref()
        .map(|p| p.text.clone())
        .unwrap_or_else(|| format!("sip:{}", username.hostport));
    let domain = username
        .hostport
        .rsplit_once(':')
        .filter(|(_, p)| p.parse::<u16>().is_ok())
        .map_or(username.hostport.as_str(), |(h, _)| h)
        .to_string();
    op.event(tx, events::result(None, "registering", json!({})), None);
    let account = Account {
        registrar,
        user: username.user.clone().unwrap_or_default(),
        outbound_proxy: request.outbound_proxy.as_ref().map(|p| p.text.clone()),
        auth_user: request.authuser.clone(),
        secret: secret.clone(),
        domain: Some(domain),
        expires: request
            .register_ttl
            .unwrap_or(op.shared.config.register_ttl),
    };
    match ua.register(account).await {
        Ok(expires) => {
            let stop = follow_ua(op, ua_events, username.text.clone());
            tracing::info!(username = %username.text, expires, "sip registered");
            op.event(
                tx,
                events::result(
                    None,
                    "registered",
                    json!({ "username": username.text, "register_sent": true }),
                ),
                None,
            );
            Ok(Some(Registered {
                username: username.text,
                register_sent: true,
                ua,
                account: None,
                via_trunk: None,
                codecs: SIP_CODECS.to_vec(),
                dtmf_info: false,
                srtp: None,
                _line: None,
                _events: Some(stop.drop_guard()),
                _route: None,
            }))
        }
        Err(e) => {
            let (code, reason) = failure_status(&e);
            tracing::warn!(username = %username.text, code, %reason, "sip registration failed");
            op.event(
                tx,
                events::result(
                    None,
                    "registration_failed",
                    json!({ "code": code, "reason": reason }),
                ),
                None,
            );
            Ok(None)
        }
    }
}

/// Reads the handle's own user agent: its incoming calls ring this handle, registration
/// refresh failures and MESSAGEs become events. Cancelled when the token is.
fn follow_ua(op: &Op, mut ua_events: UaEvents, username: String) -> CancellationToken {
    let stop = CancellationToken::new();
    let token = stop.clone();
    let op = op.clone();
    let ctx = op.ctx.clone();
    ctx.spawn(async move {
        loop {
            let event = tokio::select! {
                _ = token.cancelled() => return,
                e = ua_events.next() => e,
            };
            match event {
                None => return,
                Some(UaEvent::IncomingCall(call)) => {
                    let ringing =
                        RingingCall::new(call, &username, op.shared.config.unanswered_code);
                    incoming::ring(&op, ringing.clone());
                    tokio::spawn(ringing.pump(Duration::from_secs(op.shared.config.ring_timeout)));
                }
                Some(UaEvent::Registration(RegistrationEvent::Failed(reason))) => {
                    tracing::warn!(%reason, "sip registration refresh failed");
                    op.event(
                        None,
                        events::result(
                            None,
                            "registration_failed",
                            json!({ "code": 500, "reason": reason }),
                        ),
                        None,
                    );
                }
                Some(UaEvent::Registration(_)) => {}
                Some(UaEvent::Message {
                    from,
                    display_name,
                    content_type,
                    body,
                }) => {
                    tracing::info!(sender = %from, %content_type, "sip MESSAGE received");
                    op.event(
                        None,
                        super::call::message_event(None, from, display_name, content_type, &body),
                        None,
                    )
                }
            }
        }
    });
    stop
}

pub(super) async fn unregister(op: &Op, tx: Option<&str>) -> Result<(), SipError> {
    let mut state = op.handle.state.lock().await;
    let Registration::Registered(r) = &state.registration else {
        return Err(SipError::wrong_state("not registered"));
    };
    let (username, sent) = (r.username.clone(), r.register_sent);
    if sent {
        op.event(tx, events::simple(None, "unregistering"), None);
    }
    let registration = std::mem::replace(&mut state.registration, Registration::None);
    op.handle.summarize(&state);
    drop(state);
    release(registration).await;
    op.event(
        tx,
        events::result(
            None,
            "unregistered",
            json!({ "username": username, "register_sent": sent }),
        ),
        None,
    );
    Ok(())
}

/// Lets a registration go: the handle's own user agent unregisters (bounded wait) and stops;
/// an account line is only left (the account keeps its registration for its other handles).
pub(super) async fn release(registration: Registration) {
    if let Registration::Registered(r) = registration {
        if r.register_sent && r.account.is_none() {
            let _ = tokio::time::timeout(Duration::from_secs(3), r.ua.unregister()).await;
        }
    }
}
