//! Trunk lines: the gateway's own registration to every trunk that asks for one, whether or
//! not any browser uses the trunk.
//!
//! A trunk registers on its own when it is enabled, has `register` on and names a user
//! (`auth_username`, else `username`); a trunk without a user registers per account only (see
//! [`super::LinePool`], which is unchanged). The registry is read again when the panel says it
//! changed ([`TrunkRegistrar::registry_changed`]) and every `[sip] registry_poll` seconds
//! (edits made with the CLI): a new or re-enabled trunk registers, an edited one (registrar,
//! user, password, expiry, transport) registers again from a fresh user agent, a disabled or
//! deleted one unregisters (`Expires: 0` for our Contact). A refused registration is tried
//! again at the first registry poll [`RETRY_AFTER`] later, one whose refresh failed at the next
//! poll, and either at once on the next change. Every state goes to the live view's
//! [`StatusBoard`] as the trunk's registration (`account: None`): `registering`, `registered`
//! with the granted expiry, `failed` with the SIP status and reason, `unregistered`.
//!
//! Calls arriving on a trunk line are offered through the [`InboundRouter`] to the extension
//! named like the trunk's user, and answered with the unanswered status when nobody takes it.
//! The password is used for the digest and never logged or reported.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bifrons_sip::{
    Account, AuthFailure, Codec, RegistrationEvent, SipError, Ua, UaConfig, UaEvent, UaEvents,
};
use futures::future::BoxFuture;
use tokio::sync::Notify;
use tokio_util::sync::{CancellationToken, DropGuard};

use super::ringing::RingingCall;
use super::routing::{InboundCall, InboundRouter};
use crate::config::SipConfig;
use crate::storage::{Page, Storage, Transport, Trunk};
use crate::web::panel::status::{RegistrationState, SipRegistration, StatusBoard};
use crate::web::panel::trunk_check::{TrunkRegistrar, TrunkTestResult};

/// How long a refused trunk registration waits before the registry poll tries it again
/// (an edit of the trunk retries at once).
pub const RETRY_AFTER: Duration = Duration::from_secs(120);

/// How long an unregistration (trunk disabled, deleted or edited) may take before the user
/// agent is dropped anyway.
const UNREGISTER_TIMEOUT: Duration = Duration::from_secs(3);

/// Codecs a trunk line's user agent offers (inbound calls are bridged by the SIP plugin).
const CODECS: [Codec; 3] = [Codec::Opus, Codec::Pcmu, Codec::Pcma];

/// What the lines need, set once by [`TrunkLines::start`].
struct Runtime {
    storage: Storage,
    status: StatusBoard,
    config: SipConfig,
    router: Arc<InboundRouter>,
}

/// The registration a trunk asks for; compared to tell an edit that matters. Deliberately
/// not `Debug`: it holds the password.
#[derive(Clone, PartialEq, Eq)]
struct Wanted {
    registrar: String,
    user: String,
    password: String,
    expires: u32,
    tcp: bool,
}

impl Wanted {
    /// The registration `trunk` asks for on its own; `None` when it does not register, or
    /// registers per account only (no user).
    fn of(trunk: &Trunk) -> Option<Wanted> {
        let s = &trunk.spec;
        if !s.register {
            return None;
        }
        let user = s.auth_username.clone().or_else(|| s.username.clone())?;
        Some(Wanted {
            registrar: s
                .outbound_proxy
                .clone()
                .unwrap_or_else(|| s.registrar_uri.clone()),
            user,
            password: s
                .password
                .as_ref()
                .map(|p| p.expose().to_owned())
                .unwrap_or_default(),
            expires: s.register_expiry_s,
            tcp: s.transport == Transport::Tcp,
        })
    }

    fn account(&self) -> Account {
        Account {
            registrar: self.registrar.clone(),
            outbound_proxy: None,
            user: self.user.clone(),
            auth_user: None,
            secret: bifrons_sip::DigestSecret::Password(self.password.clone()),
            domain: None,
            expires: self.expires,
        }
    }
}

/// One trunk's registration.
struct TrunkLine {
    name: String,
    wanted: Wanted,
    /// The registered user agent; `None` after a refusal.
    ua: Option<Arc<Ua>>,
    /// When a refused registration may be tried again.
    retry_at: Option<Instant>,
    /// Set when a refresh failed: the next reconcile registers again from a new user agent.
    lost: Arc<AtomicBool>,
    _events: Option<DropGuard>,
}

impl Drop for TrunkLine {
    fn drop(&mut self) {
        let Some(ua) = self.ua.take() else { return };
        let name = self.name.clone();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let done = tokio::time::timeout(UNREGISTER_TIMEOUT, ua.unregister()).await;
                tracing::info!(trunk = %name, unregistered = matches!(done, Ok(Ok(()))), "trunk line closed");
            });
        }
    }
}

/// The trunk lines of the gateway; idle until [`TrunkLines::start`].
#[derive(Default)]
pub struct TrunkLines {
    runtime: OnceLock<Runtime>,
    wake: Notify,
    lines: tokio::sync::Mutex<HashMap<i64, TrunkLine>>,
}

/// The SIP status and reason of a failed request.
fn failure_status(error: &SipError) -> (Option<u16>, String) {
    match error {
        SipError::Auth(AuthFailure::WrongCredentials { code }) => (
            Some(*code),
            if *code == 407 {
                "Proxy Authentication Required"
            } else {
                "Unauthorized"
            }
            .into(),
        ),
        SipError::Auth(AuthFailure::Forbidden) => (Some(403), "Forbidden".into()),
        SipError::Auth(other) => (Some(401), other.to_string()),
        SipError::Rejected { code, reason } => (Some(*code), reason.clone()),
        SipError::Timeout => (Some(408), "Request Timeout (no answer)".into()),
        other => (None, other.to_string()),
    }
}

fn detail(code: Option<u16>, reason: &str) -> String {
    match code {
        Some(c) => format!("{c} {reason}"),
        None => reason.to_owned(),
    }
}

/// Puts `trunk`'s own registration (`account: None`) on the board.
fn report(
    status: &StatusBoard,
    trunk: &str,
    state: RegistrationState,
    detail: Option<String>,
    expires_s: Option<u32>,
) {
    status.set_registration(SipRegistration {
        trunk: trunk.to_owned(),
        account: None,
        state,
        detail,
        expires_s,
        updated_ms: 0,
    });
}

/// Reason phrases of the statuses an OPTIONS usually gets (RFC 3261 §21).
fn reason_phrase(code: u16) -> &'static str {
    match code {
        200 => "OK",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        480 => "Temporarily Unavailable",
        483 => "Too Many Hops",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "",
    }
}

impl Runtime {
    fn ua_config(&self, tcp: bool) -> UaConfig {
        UaConfig {
            bind: SocketAddr::new(self.config.local_ip, 0),
            rtp_ip: self.config.local_ip,
            rtp_ports: self.config.rtp_port_min..=self.config.rtp_port_max,
            codecs: CODECS.to_vec(),
            user_agent: self.config.user_agent.clone(),
            timers: bifrons_sip::transaction::Timers {
                t1: Duration::from_millis(self.config.timer_t1_ms),
                ..Default::default()
            },
            transport: if tcp {
                bifrons_sip::Transport::Tcp
            } else {
                bifrons_sip::Transport::Udp
            },
            ..UaConfig::default()
        }
    }

    fn report(
        &self,
        trunk: &str,
        state: RegistrationState,
        detail: Option<String>,
        expires_s: Option<u32>,
    ) {
        report(&self.status, trunk, state, detail, expires_s);
    }

    /// Registers `trunk` from a new user agent and reports each step.
    async fn register(&self, name: String, wanted: Wanted) -> TrunkLine {
        self.report(&name, RegistrationState::Registering, None, None);
        let failed = |code: Option<u16>, reason: String| {
            tracing::warn!(trunk = %name, code, %reason, "trunk registration failed");
            self.report(
                &name,
                RegistrationState::Failed,
                Some(detail(code, &reason)),
                None,
            );
            TrunkLine {
                name: name.clone(),
                wanted: wanted.clone(),
                ua: None,
                retry_at: Some(Instant::now() + RETRY_AFTER),
                lost: Arc::default(),
                _events: None,
            }
        };
        let (ua, events) = match Ua::start(self.ua_config(wanted.tcp)).await {
            Ok(ua) => ua,
            Err(e) => return failed(None, format!("could not start the SIP stack: {e}")),
        };
        match ua.register(wanted.account()).await {
            Ok(expires) => {
                tracing::info!(trunk = %name, expires, "trunk registered");
                self.report(
                    &name,
                    RegistrationState::Registered,
                    Some("200 OK".into()),
                    Some(expires),
                );
                let stop = CancellationToken::new();
                let lost = Arc::new(AtomicBool::new(false));
                let watch = LineWatch {
                    trunk: name.clone(),
                    extension: wanted.user.clone(),
                    status: self.status.clone(),
                    router: self.router.clone(),
                    unanswered_code: self.config.unanswered_code,
                    ring_timeout: Duration::from_secs(self.config.ring_timeout),
                    lost: lost.clone(),
                };
                tokio::spawn(watch_line(events, watch, stop.clone()));
                TrunkLine {
                    name,
                    wanted,
                    ua: Some(Arc::new(ua)),
                    retry_at: None,
                    lost,
                    _events: Some(stop.drop_guard()),
                }
            }
            Err(e) => {
                let (code, reason) = failure_status(&e);
                failed(code, reason)
            }
        }
    }
}

impl TrunkLines {
    /// Starts keeping the registry's trunks registered: reports on `status`, offers inbound
    /// calls through `router`, re-reads the registry on [`TrunkRegistrar::registry_changed`]
    /// and every `config.registry_poll` seconds (0: on changes only), unregisters everything
    /// when `shutdown` is cancelled. A second call does nothing.
    pub fn start(
        self: &Arc<Self>,
        storage: Storage,
        status: StatusBoard,
        config: SipConfig,
        router: Arc<InboundRouter>,
        shutdown: CancellationToken,
    ) {
        let poll = (config.registry_poll > 0).then(|| Duration::from_secs(config.registry_poll));
        status.attach_sip();
        let runtime = Runtime {
            storage,
            status,
            config,
            router,
        };
        if self.runtime.set(runtime).is_err() {
            return;
        }
        tokio::spawn(self.clone().run(poll, shutdown));
    }

    async fn run(self: Arc<Self>, poll: Option<Duration>, shutdown: CancellationToken) {
        loop {
            self.reconcile().await;
            let tick = async {
                match poll {
                    Some(every) => tokio::time::sleep(every).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = self.wake.notified() => {}
                _ = tick => {}
            }
        }
        self.lines.lock().await.clear();
    }

    /// Brings the lines in line with the registry's trunks.
    async fn reconcile(&self) {
        let Some(rt) = self.runtime.get() else { return };
        let trunks = match rt.storage.trunks().list(Page::first(Page::MAX_LIMIT)).await {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(error = %e, "trunk lines: registry unreadable");
                return;
            }
        };
        let mut lines = self.lines.lock().await;
        let mut present = HashSet::new();
        let mut to_register = Vec::new();
        for trunk in &trunks {
            let id = trunk.id.0;
            present.insert(id);
            let name = trunk.spec.name.clone();
            let wanted = Wanted::of(trunk).filter(|_| trunk.spec.enabled);
            let current = lines.get(&id);
            let keep = match (current, &wanted) {
                (Some(line), Some(w)) => {
                    line.name == name
                        && line.wanted == *w
                        && line.retry_at.is_none_or(|at| at > Instant::now())
                        && !line.lost.load(Ordering::Relaxed)
                }
                _ => false,
            };
            if keep {
                continue;
            }
            if let Some(old) = lines.remove(&id) {
                if old.name != name {
                    rt.status.remove_registration(&old.name, None);
                }
            }
            match wanted {
                Some(w) => to_register.push((id, name, w)),
                None if trunk.spec.register && !trunk.spec.enabled => rt.report(
                    &name,
                    RegistrationState::Unregistered,
                    Some("trunk disabled".into()),
                    None,
                ),
                None => rt.status.remove_registration(&name, None),
            }
        }
        lines.retain(|id, line| {
            let keep = present.contains(id);
            if !keep {
                rt.status.remove_registration(&line.name, None);
            }
            keep
        });
        let registered = futures::future::join_all(
            to_register
                .into_iter()
                .map(|(id, name, w)| async move { (id, rt.register(name, w).await) }),
        )
        .await;
        lines.extend(registered);
    }

    /// Tests `trunk` with a user agent of its own: REGISTER (then unregister) when the trunk
    /// registers on its own, else OPTIONS to its registrar or outbound proxy.
    async fn run_test(&self, trunk: Trunk) -> Option<TrunkTestResult> {
        let rt = self.runtime.get()?;
        let wanted = Wanted::of(&trunk);
        let tcp = trunk.spec.transport == Transport::Tcp;
        let method = if wanted.is_some() {
            "REGISTER"
        } else {
            "OPTIONS"
        };
        let result = |ok, code, reason: String, rtt: Duration, expires_s| TrunkTestResult {
            ok,
            method: method.into(),
            code,
            reason,
            rtt_ms: rtt.as_millis() as u64,
            expires_s,
        };
        let (ua, _events) = match Ua::start(rt.ua_config(tcp)).await {
            Ok(ua) => ua,
            Err(e) => {
                return Some(result(
                    false,
                    None,
                    format!("could not start the SIP stack: {e}"),
                    Duration::ZERO,
                    None,
                ))
            }
        };
        let started = Instant::now();
        let outcome = match &wanted {
            Some(w) => match ua.register(w.account()).await {
                Ok(expires) => {
                    let rtt = started.elapsed();
                    let _ = tokio::time::timeout(UNREGISTER_TIMEOUT, ua.unregister()).await;
                    result(true, Some(200), "OK".into(), rtt, Some(expires))
                }
                Err(e) => {
                    let (code, reason) = failure_status(&e);
                    result(false, code, reason, started.elapsed(), None)
                }
            },
            None => {
                let target = trunk
                    .spec
                    .outbound_proxy
                    .clone()
                    .unwrap_or_else(|| trunk.spec.registrar_uri.clone());
                match ua.options(&target).await {
                    Ok(code) => result(
                        (200..300).contains(&code),
                        Some(code),
                        reason_phrase(code).into(),
                        started.elapsed(),
                        None,
                    ),
                    Err(e) => {
                        let (code, reason) = failure_status(&e);
                        result(false, code, reason, started.elapsed(), None)
                    }
                }
            }
        };
        tracing::info!(trunk = %trunk.spec.name, method, ok = outcome.ok, code = outcome.code, rtt_ms = outcome.rtt_ms, "trunk tested");
        Some(outcome)
    }
}

impl TrunkRegistrar for TrunkLines {
    fn registry_changed(&self) {
        self.wake.notify_one();
    }

    fn test(&self, trunk: Trunk) -> BoxFuture<'_, Option<TrunkTestResult>> {
        Box::pin(self.run_test(trunk))
    }
}

/// What [`watch_line`] reports to and routes through.
struct LineWatch {
    trunk: String,
    extension: String,
    status: StatusBoard,
    router: Arc<InboundRouter>,
    unanswered_code: u16,
    ring_timeout: Duration,
    lost: Arc<AtomicBool>,
}

/// Follows a registered trunk line: refreshes and their failures go to the board, inbound
/// calls to the router (extension = the trunk's user).
async fn watch_line(mut events: UaEvents, watch: LineWatch, stop: CancellationToken) {
    let LineWatch {
        trunk,
        extension,
        status,
        router,
        unanswered_code,
        ring_timeout,
        lost,
    } = watch;
    let report = |state, detail, expires_s| report(&status, &trunk, state, detail, expires_s);
    loop {
        let event = tokio::select! {
            _ = stop.cancelled() => return,
            e = events.next() => e,
        };
        match event {
            None => return,
            Some(UaEvent::Registration(RegistrationEvent::Registered { expires }))
            | Some(UaEvent::Registration(RegistrationEvent::Refreshed { expires })) => {
                lost.store(false, Ordering::Relaxed);
                report(
                    RegistrationState::Registered,
                    Some("200 OK".into()),
                    Some(expires),
                )
            }
            Some(UaEvent::Registration(RegistrationEvent::Failed(reason))) => {
                lost.store(true, Ordering::Relaxed);
                tracing::warn!(%trunk, %reason, "trunk registration refresh failed");
                report(RegistrationState::Failed, Some(reason), None)
            }
            Some(UaEvent::Registration(RegistrationEvent::Unregistered)) => {
                report(RegistrationState::Unregistered, None, None)
            }
            Some(UaEvent::IncomingCall(call)) => {
                let ringing = RingingCall::new(call, &extension, unanswered_code);
                let offered = router.dispatch_ringing(
                    &InboundCall {
                        extension: extension.clone(),
                        caller: ringing.caller.clone(),
                        call_id: ringing.id().to_string(),
                    },
                    &ringing,
                );
                if offered == 0 {
                    tracing::info!(%trunk, %extension, code = unanswered_code, "inbound call on a trunk line unanswered: nobody registered");
                    let _ = ringing.call.reject(unanswered_code).await;
                    continue;
                }
                tokio::spawn(ringing.pump(ring_timeout));
            }
            Some(UaEvent::Message { from, .. }) => {
                tracing::info!(%trunk, %from, "MESSAGE on a trunk line ignored");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{Secret, TrunkId, TrunkSpec};

    fn trunk(edit: impl FnOnce(&mut TrunkSpec)) -> Trunk {
        let mut spec = TrunkSpec::new("pbx", "sip:127.0.0.1:5060");
        spec.username = Some("dave".into());
        spec.password = Some(Secret::new("pw".to_string()));
        edit(&mut spec);
        Trunk {
            id: TrunkId(1),
            spec,
            created: crate::storage::Timestamp(0),
        }
    }

    #[test]
    fn a_trunk_registers_on_its_own_only_with_a_user_and_register_on() {
        assert!(Wanted::of(&trunk(|_| {})).is_some());
        assert!(Wanted::of(&trunk(|s| s.register = false)).is_none());
        assert!(Wanted::of(&trunk(|s| s.username = None)).is_none());
        let auth = Wanted::of(&trunk(|s| s.auth_username = Some("auth".into()))).unwrap();
        assert_eq!(auth.user, "auth");
        let proxied = Wanted::of(&trunk(|s| s.outbound_proxy = Some("sip:proxy".into()))).unwrap();
        assert_eq!(proxied.registrar, "sip:proxy");
    }

    #[test]
    fn a_new_password_or_expiry_is_an_edit_that_matters() {
        let base = Wanted::of(&trunk(|_| {})).unwrap();
        let pw = Wanted::of(&trunk(|s| {
            s.password = Some(Secret::new("new".to_string()))
        }))
        .unwrap();
        let exp = Wanted::of(&trunk(|s| s.register_expiry_s = 60)).unwrap();
        let codecs = Wanted::of(&trunk(|s| s.codecs = vec!["PCMU".into()])).unwrap();
        assert!(base != pw && base != exp && base == codecs);
    }

    #[test]
    fn failures_name_the_sip_status() {
        let wrong = SipError::Auth(AuthFailure::WrongCredentials { code: 401 });
        assert_eq!(failure_status(&wrong), (Some(401), "Unauthorized".into()));
        assert_eq!(
            failure_status(&SipError::Auth(AuthFailure::Forbidden)),
            (Some(403), "Forbidden".into())
        );
        assert_eq!(failure_status(&SipError::Timeout).0, Some(408));
        assert_eq!(detail(Some(403), "Forbidden"), "403 Forbidden");
    }
}
