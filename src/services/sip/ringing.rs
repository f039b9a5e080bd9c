//! An inbound call while it rings one or more targets (the browser tabs registered for an
//! account, or the one handle whose user agent received it): first accept wins, the others
//! learn who took it, and a call nobody takes is answered with the configured status.
//!
//! One task ([`RingingCall::pump`]) reads the call's SIP events and republishes them on a
//! broadcast channel every target subscribed to before ringing; the outcome of the ring phase
//! is a [`watch`] value ([`RingState`]) so a target that looks late still sees it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bifrons_sip::{Call, CallEvent, CallEvents, EndReason, Sdp};
use tokio::sync::{broadcast, watch};

/// Where the ring phase of a call stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RingState {
    /// Ringing; nobody took it yet.
    Ringing,
    /// Taken by the target with this id (a handle id).
    Taken(u64),
    /// Over before anyone took it: the SIP status and reason (487 when the caller
    /// cancelled, the unanswered status after the ring timeout or when everyone declined).
    Gone(u16, String),
}

/// What the router decided for an unanswered call, for logs and the voicemail hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unanswered {
    /// Every ringing target declined.
    AllDeclined,
    /// Nobody answered within the ring timeout.
    Timeout,
    /// Nobody was registered for the extension.
    NobodyRegistered,
}

/// The ring-phase value of a call the mailbox took: [`RingState::Taken`] by this target id
/// (handle ids are never 0).
pub const MAILBOX_TARGET: u64 = 0;

/// An unanswered inbound call handed to the [`UnansweredHook`]: answer it, hang it up through
/// `call`; `events` carries its later SIP events (DTMF, INFO, the end).
pub struct UnansweredCall {
    /// The SIP call.
    pub call: Arc<Call>,
    /// The call's events from now on.
    pub events: broadcast::Receiver<CallEvent>,
    /// The caller's URI (`From`).
    pub caller: String,
    /// The dialled extension.
    pub callee: String,
    /// Why it is unanswered.
    pub why: Unanswered,
}

/// What the SIP service calls for an inbound call nobody takes, before refusing it with the
/// unanswered status: the voicemail service's answering machine implements it.
#[async_trait::async_trait]
pub trait UnansweredHook: Send + Sync {
    /// Whether `extension` has a mailbox that takes unanswered calls.
    async fn wants(&self, extension: &str) -> bool;
    /// Takes the call (already claimed for [`MAILBOX_TARGET`]); must not block.
    fn take(&self, call: UnansweredCall);
}

/// An inbound call ringing its targets.
pub struct RingingCall {
    /// The SIP call (answer, reject, hang up through it).
    pub call: Arc<Call>,
    /// The caller's SDP offer, if the INVITE had one.
    pub offer: Option<Sdp>,
    /// The caller's URI (`From`).
    pub caller: String,
    /// The dialled extension or account.
    pub callee: String,
    state: watch::Sender<RingState>,
    events: broadcast::Sender<CallEvent>,
    targets: AtomicUsize,
    declined: AtomicUsize,
    unanswered_code: u16,
    pump: Mutex<Option<CallEvents>>,
    hook: Mutex<Option<Arc<dyn UnansweredHook>>>,
}

impl std::fmt::Debug for RingingCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RingingCall")
            .field("call_id", &self.call.id())
            .field("caller", &self.caller)
            .finish()
    }
}

impl RingingCall {
    /// Wraps an incoming `call` for `callee`; unanswered calls get `unanswered_code`
    /// (480 or 486).
    pub fn new(mut call: Call, callee: &str, unanswered_code: u16) -> Arc<Self> {
        let events = call.take_events();
        let offer = call.remote_offer().cloned();
        let caller = call.remote().to_string();
        let (state, _) = watch::channel(RingState::Ringing);
        let (tx, _) = broadcast::channel(64);
        Arc::new(Self {
            call: Arc::new(call),
            offer,
            caller,
            callee: callee.to_string(),
            state,
            events: tx,
            targets: AtomicUsize::new(0),
            declined: AtomicUsize::new(0),
            unanswered_code,
            pump: Mutex::new(Some(events)),
            hook: Mutex::new(None),
        })
    }

    /// The Call-ID.
    pub fn id(&self) -> &str {
        self.call.id()
    }

    /// Adds a ringing target: its view of the ring phase and of the call's later events.
    pub fn subscribe(&self) -> (watch::Receiver<RingState>, broadcast::Receiver<CallEvent>) {
        self.targets.fetch_add(1, Ordering::Relaxed);
        (self.state.subscribe(), self.events.subscribe())
    }

    /// The ring phase now.
    pub fn state(&self) -> RingState {
        self.state.borrow().clone()
    }

    /// Takes the call for `target` if nobody has: `true` for the winner only.
    pub fn claim(&self, target: u64) -> bool {
        self.state.send_if_modified(|s| {
            if *s == RingState::Ringing {
                *s = RingState::Taken(target);
                true
            } else {
                false
            }
        })
    }

    /// One target declined; when it was the last one still ringing the call is rejected
    /// with `code` (the decliner's own status for a single target, the unanswered status for
    /// a group). Returns whether the call was rejected now.
    pub async fn decline(&self, code: u16) -> bool {
        let declined = self.declined.fetch_add(1, Ordering::Relaxed) + 1;
        let targets = self.targets.load(Ordering::Relaxed);
        if declined < targets {
            return false;
        }
        let code = if targets == 1 {
            code
        } else {
            self.unanswered_code
        };
        self.give_up(code, Unanswered::AllDeclined).await
    }

    /// Where the call goes when nobody takes it, instead of the unanswered status.
    pub fn set_hook(&self, hook: Option<Arc<dyn UnansweredHook>>) {
        *self.hook.lock().unwrap_or_else(|e| e.into_inner()) = hook;
    }

    /// Hands the still-ringing call to the hook when its extension has a mailbox: `true` when
    /// the mailbox took it (the ring phase ends as taken by [`MAILBOX_TARGET`]).
    pub async fn to_mailbox(&self, why: Unanswered) -> bool {
        let hook = self.hook.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let Some(hook) = hook else { return false };
        if self.state() != RingState::Ringing || !hook.wants(&self.callee).await {
            return false;
        }
        let events = self.events.subscribe();
        if !self.claim(MAILBOX_TARGET) {
            return false;
        }
        tracing::info!(call_id = self.id(), caller = %self.caller, callee = %self.callee, ?why, "inbound call to the mailbox");
        hook.take(UnansweredCall {
            call: self.call.clone(),
            events,
            caller: self.caller.clone(),
            callee: self.callee.clone(),
            why,
        });
        true
    }

    async fn give_up(&self, code: u16, why: Unanswered) -> bool {
        if self.to_mailbox(why).await {
            return true;
        }
        let reason = bifrons_sip_reason(code);
        let gone = self.state.send_if_modified(|s| {
            if *s == RingState::Ringing {
                *s = RingState::Gone(code, reason.to_string());
                true
            } else {
                false
            }
        });
        if gone {
            tracing::info!(call_id = self.id(), caller = %self.caller, callee = %self.callee, code, ?why, "inbound call unanswered");
            if let Err(e) = self.call.reject(code).await {
                tracing::debug!(error = %e, "rejecting the unanswered call");
            }
        }
        gone
    }

    /// Reads the call's SIP events until it ends, republishing them; ends the ring phase on
    /// a CANCEL or after `ring_timeout`. Spawn it once, after the targets subscribed.
    pub async fn pump(self: Arc<Self>, ring_timeout: Duration) {
        let Some(mut events) = self.pump.lock().unwrap_or_else(|e| e.into_inner()).take() else {
            return;
        };
        let deadline = tokio::time::Instant::now() + ring_timeout;
        loop {
            let ringing = *self.state.borrow() == RingState::Ringing;
            let next = if ringing {
                match tokio::time::timeout_at(deadline, events.next()).await {
                    Ok(e) => e,
                    Err(_) => {
                        self.give_up(self.unanswered_code, Unanswered::Timeout)
                            .await;
                        continue;
                    }
                }
            } else {
                events.next().await
            };
            let Some(event) = next else { break };
            if let CallEvent::Ended(reason) = &event {
                let (code, text) = match reason {
                    EndReason::Cancelled => (487, "Request Terminated"),
                    _ => (200, "Session Terminated"),
                };
                self.state.send_if_modified(|s| {
                    if *s == RingState::Ringing {
                        *s = RingState::Gone(code, text.into());
                        true
                    } else {
                        false
                    }
                });
            }
            let _ = self.events.send(event);
        }
        self.state.send_if_modified(|s| {
            if *s == RingState::Ringing {
                *s = RingState::Gone(487, "Request Terminated".into());
                true
            } else {
                false
            }
        });
    }
}

/// Reason phrase of the statuses this module sends.
fn bifrons_sip_reason(code: u16) -> &'static str {
    match code {
        480 => "Temporarily Unavailable",
        486 => "Busy Here",
        487 => "Request Terminated",
        603 => "Decline",
        _ => "Declined",
    }
}
