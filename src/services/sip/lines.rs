//! Account lines: one user agent (and one registration) per registry account, shared by every
//! handle registered for it, however many browser tabs that is.
//!
//! A line starts when the first handle asks for its account, registers through the account's
//! trunk (the user agent refreshes the registration before it expires), and stops when the last
//! handle lets go of it. Inbound calls to the line are offered through the [`InboundRouter`]
//! to every target registered for the account's extension, as one [`RingingCall`].

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use bifrons_sip::{Account, SipError, Ua, UaConfig, UaEvent, UaEvents};
use tokio_util::sync::{CancellationToken, DropGuard};

use super::ringing::{RingingCall, Unanswered};
use super::routing::{InboundCall, InboundMessage, InboundRouter};
use crate::storage::Timestamp;
use crate::web::panel::status::{RegistrationState, SipRegistration, StatusBoard};

/// How to reach a line's registrar, from the account and its trunk.
#[derive(Debug, Clone)]
pub struct LineSpec {
    /// The account's extension (the router key).
    pub extension: String,
    /// The account's address of record (`sip:user@domain`).
    pub aor: String,
    /// The registration to keep, `None` for a trunk authenticated by IP address.
    pub registration: Option<Account>,
    /// The trunk's registrar or proxy (`sip:host:port`), where calls go.
    pub proxy: String,
    /// The trunk's name in the registry (the live view groups registrations by it).
    pub trunk: String,
}

impl LineSpec {
    /// Reports this line's registration on the live view's status board.
    fn report(
        &self,
        status: &StatusBoard,
        state: RegistrationState,
        detail: Option<String>,
        expires_s: Option<u32>,
    ) {
        status.set_registration(SipRegistration {
            trunk: self.trunk.clone(),
            account: Some(self.extension.clone()),
            state,
            detail,
            expires_s,
            updated_ms: Timestamp::now().0,
        });
    }
}

/// One account's user agent, shared by its handles.
pub struct AccountLine {
    /// What the line was started with.
    pub spec: LineSpec,
    /// The user agent calls go out through.
    pub ua: Arc<Ua>,
    /// The registration kept now (changes with [`AccountLine::refresh`]).
    registration: tokio::sync::Mutex<Option<Account>>,
    /// Where the registration's state is reported.
    status: StatusBoard,
    _events: DropGuard,
}

impl AccountLine {
    /// Applies the registry's current `registration` for this account: re-registers (or
    /// unregisters) when it differs from the one kept. `Ok(true)` when something was sent.
    ///
    /// Errors: the registrar refused the new registration (the old one is forgotten; the next
    /// refresh retries).
    pub async fn refresh(&self, registration: Option<Account>) -> Result<bool, SipError> {
        let mut current = self.registration.lock().await;
        if *current == registration {
            return Ok(false);
        }
        let outcome = match &registration {
            Some(account) => {
                self.spec
                    .report(&self.status, RegistrationState::Registering, None, None);
                self.ua.register(account.clone()).await.map(Some)
            }
            None => self.ua.unregister().await.map(|()| None),
        };
        match &outcome {
            Ok(Some(expires)) => self.spec.report(
                &self.status,
                RegistrationState::Registered,
                None,
                Some(*expires),
            ),
            Ok(None) => self
                .spec
                .report(&self.status, RegistrationState::Unregistered, None, None),
            Err(e) => self.spec.report(
                &self.status,
                RegistrationState::Failed,
                Some(e.to_string()),
                None,
            ),
        }
        *current = registration;
        outcome.map(|_| true)
    }
}

impl Drop for AccountLine {
    fn drop(&mut self) {
        self.status
            .remove_registration(&self.spec.trunk, Some(&self.spec.extension));
        if self.spec.registration.is_some() {
            let ua = self.ua.clone();
            let extension = self.spec.extension.clone();
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move {
                    let _ = tokio::time::timeout(Duration::from_secs(3), ua.unregister()).await;
                    tracing::info!(%extension, "account line closed");
                });
            }
        }
    }
}

/// What inbound calls on a line need: the router, and what to answer when nobody takes it.
#[derive(Clone)]
pub struct LineRouting {
    /// Where calls to the extension go.
    pub router: Arc<InboundRouter>,
    /// Status for unanswered calls (480 or 486).
    pub unanswered_code: u16,
    /// How long a call rings.
    pub ring_timeout: Duration,
}

/// The open lines, by extension.
#[derive(Default)]
pub struct LinePool {
    lines: tokio::sync::Mutex<HashMap<String, Weak<AccountLine>>>,
    /// Where registrations are reported for the admin panel's live view.
    status: StatusBoard,
    /// One lock per extension being opened, so that a slow registrar holds up only the
    /// handles of its own account, never other accounts.
    opening: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl LinePool {
    /// A pool reporting its registrations on `status`.
    pub fn new(status: StatusBoard) -> Self {
        status.attach_sip();
        Self {
            status,
            ..Self::default()
        }
    }

    /// The line of `spec.extension`: the open one, or a new user agent registered with
    /// `spec.registration`. Concurrent callers for one account share one registration.
    ///
    /// Errors: the user agent cannot start, or the registrar refused (the caller reports the
    /// status as `registration_failed`).
    pub async fn open_line(
        &self,
        spec: LineSpec,
        config: UaConfig,
        routing: LineRouting,
    ) -> Result<Arc<AccountLine>, SipError> {
        let gate = self
            .opening
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(spec.extension.clone())
            .or_default()
            .clone();
        let _opening = gate.lock().await;
        if let Some(line) = self
            .lines
            .lock()
            .await
            .get(&spec.extension)
            .and_then(Weak::upgrade)
        {
            return Ok(line);
        }
        let (ua, events) = Ua::start(config).await?;
        if let Some(account) = spec.registration.clone() {
            spec.report(&self.status, RegistrationState::Registering, None, None);
            let expires = match ua.register(account).await {
                Ok(expires) => expires,
                Err(e) => {
                    spec.report(
                        &self.status,
                        RegistrationState::Failed,
                        Some(e.to_string()),
                        None,
                    );
                    return Err(e);
                }
            };
            spec.report(
                &self.status,
                RegistrationState::Registered,
                None,
                Some(expires),
            );
            tracing::info!(extension = %spec.extension, expires, "account line registered");
        }
        let stop = CancellationToken::new();
        tokio::spawn(route_calls(
            events,
            spec.extension.clone(),
            routing,
            stop.clone(),
        ));
        let line = Arc::new(AccountLine {
            registration: tokio::sync::Mutex::new(spec.registration.clone()),
            status: self.status.clone(),
            spec,
            ua: Arc::new(ua),
            _events: stop.drop_guard(),
        });
        let mut lines = self.lines.lock().await;
        lines.retain(|_, l| l.strong_count() > 0);
        lines.insert(line.spec.extension.clone(), Arc::downgrade(&line));
        drop(lines);
        self.opening
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, g| Arc::strong_count(g) > 1);
        Ok(line)
    }

    /// The open lines.
    pub async fn open(&self) -> Vec<Arc<AccountLine>> {
        let lines = self.lines.lock().await;
        lines.values().filter_map(Weak::upgrade).collect()
    }

    /// Extensions with an open line (the live view).
    pub async fn open_lines(&self) -> Vec<String> {
        let lines = self.lines.lock().await;
        let mut open: Vec<_> = lines
            .iter()
            .filter(|(_, l)| l.strong_count() > 0)
            .map(|(e, _)| e.clone())
            .collect();
        open.sort();
        open
    }
}

/// Offers a line's inbound calls to its extension's targets; a call nobody is registered for
/// is answered with the unanswered status at once.
async fn route_calls(
    mut events: UaEvents,
    extension: String,
    routing: LineRouting,
    stop: CancellationToken,
) {
    loop {
        let event = tokio::select! {
            _ = stop.cancelled() => return,
            e = events.next() => e,
        };
        match event {
            None => return,
            Some(UaEvent::IncomingCall(call)) => {
                let ringing = RingingCall::new(call, &extension, routing.unanswered_code);
                ringing.set_hook(routing.router.unanswered_hook());
                let offered = routing.router.dispatch_ringing(
                    &InboundCall {
                        extension: extension.clone(),
                        caller: ringing.caller.clone(),
                        call_id: ringing.id().to_string(),
                    },
                    &ringing,
                );
                if offered == 0 && ringing.to_mailbox(Unanswered::NobodyRegistered).await {
                    tokio::spawn(ringing.pump(routing.ring_timeout));
                    continue;
                }
                if offered == 0 {
                    tracing::info!(%extension, caller = %ringing.caller, code = routing.unanswered_code, "inbound call unanswered: nobody registered");
                    let _ = ringing.call.reject(routing.unanswered_code).await;
                    continue;
                }
                tokio::spawn(ringing.pump(routing.ring_timeout));
            }
            Some(UaEvent::Registration(e)) => {
                tracing::info!(%extension, event = ?e, "account line registration");
            }
            Some(UaEvent::Message {
                from,
                display_name,
                content_type,
                body,
            }) => {
                let message = InboundMessage {
                    extension: extension.clone(),
                    from,
                    display_name,
                    content_type,
                    body,
                };
                let taken = routing.router.dispatch_message(&message);
                tracing::info!(%extension, from = %message.from, taken, "MESSAGE on an account line");
            }
        }
    }
}
