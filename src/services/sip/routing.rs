//! The inbound router: which targets an incoming call to an extension rings.
//!
//! Targets register for an extension (a SIP handle registered as that user, a room's dial-in
//! number, a mountpoint's listen-in number) and unregister by dropping their [`RouteGuard`].
//! A call rings every target registered for its extension at once, first accept wins (the
//! forking of a PBX ring group); with none, it goes to the fallback (voicemail) if one is set.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use super::ringing::RingingCall;

/// An incoming call as the router sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundCall {
    /// The dialled extension (Request-URI user part).
    pub extension: String,
    /// The caller's URI (`From`).
    pub caller: String,
    /// The SIP `Call-ID`, to tell calls apart.
    pub call_id: String,
}

/// A SIP MESSAGE (RFC 3428) that arrived on an account's line, outside any call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundMessage {
    /// The account's extension it came in for.
    pub extension: String,
    /// The sender's URI (`From`).
    pub from: String,
    /// The sender's display name, if any.
    pub display_name: Option<String>,
    /// Its Content-Type.
    pub content_type: String,
    /// Its body.
    pub body: Vec<u8>,
}

/// A message landed in an extension's mailbox (message waiting, RFC 3842's idea for browsers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoicemailNotice {
    /// The mailbox's extension.
    pub extension: String,
    /// The new message's `recordings` row id.
    pub recording_id: i64,
    /// The caller's URI.
    pub caller: String,
    /// Unheard messages in the mailbox now.
    pub new: i64,
    /// Messages in the mailbox now.
    pub total: i64,
}

/// What kind of feature a target is, for the Admin API and the panel's live view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TargetKind {
    /// A browser registered through the SIP plugin.
    Handle,
    /// An audio-bridge room's dial-in number.
    Room,
    /// A mailbox (the fallback for unanswered calls).
    Mailbox,
    /// A mountpoint to listen to.
    Mountpoint,
}

/// Something that can be offered an inbound call.
pub trait CallTarget: Send + Sync {
    /// What this target is.
    fn kind(&self) -> TargetKind;
    /// Offers the call (ring the browser, join the room...). Must not block: the answer, if
    /// any, comes later through the SIP service's call API.
    fn offer(&self, call: &InboundCall);

    /// Offers a live SIP call ringing its targets: a target that can take it subscribes to
    /// `ringing` (before this returns) and claims it on accept. Default: [`CallTarget::offer`].
    fn ring(&self, call: &InboundCall, ringing: &Arc<RingingCall>) {
        let _ = ringing;
        self.offer(call);
    }

    /// Delivers a MESSAGE for the extension; returns whether this target took it. Must not
    /// block. Default: not taken (rooms and mountpoints have no use for text).
    fn message(&self, message: &InboundMessage) -> bool {
        let _ = message;
        false
    }

    /// Tells the target a message landed in its extension's mailbox. Must not block.
    /// Default: nothing (only browsers show message waiting).
    fn voicemail(&self, notice: &VoicemailNotice) {
        let _ = notice;
    }
}

/// Where a call to an extension goes.
#[derive(Clone)]
pub enum Route {
    /// Ring these targets together; the first to accept gets the call.
    Ring(Vec<Arc<dyn CallTarget>>),
    /// Nobody registered: the fallback target.
    Fallback(Arc<dyn CallTarget>),
}

impl std::fmt::Debug for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Route::Ring(targets) => write!(f, "Ring({} targets)", targets.len()),
            Route::Fallback(t) => write!(f, "Fallback({:?})", t.kind()),
        }
    }
}

type Table = HashMap<String, Vec<(u64, Arc<dyn CallTarget>)>>;

/// Extension → targets, plus an optional fallback.
#[derive(Default)]
pub struct InboundRouter {
    table: Arc<Mutex<Table>>,
    fallback: Mutex<Option<Arc<dyn CallTarget>>>,
    next_id: AtomicU64,
    unanswered: Mutex<Option<Arc<dyn super::UnansweredHook>>>,
}

/// Keeps a registration alive; dropping it unregisters the target.
#[must_use = "dropping the guard unregisters the target at once"]
pub struct RouteGuard {
    table: Weak<Mutex<Table>>,
    extension: String,
    id: u64,
}

impl Drop for RouteGuard {
    fn drop(&mut self) {
        let Some(table) = self.table.upgrade() else {
            return;
        };
        let mut table = table.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(targets) = table.get_mut(&self.extension) {
            targets.retain(|(id, _)| *id != self.id);
            if targets.is_empty() {
                table.remove(&self.extension);
            }
        }
    }
}

impl InboundRouter {
    /// Sets where unanswered calls go before they are refused (the voicemail service).
    pub fn set_unanswered_hook(&self, hook: Arc<dyn super::UnansweredHook>) {
        *self.unanswered.lock().unwrap_or_else(|e| e.into_inner()) = Some(hook);
    }

    /// The hook set by [`InboundRouter::set_unanswered_hook`], if any.
    pub fn unanswered_hook(&self) -> Option<Arc<dyn super::UnansweredHook>> {
        self.unanswered
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Registers `target` for `extension` until the returned guard is dropped.
    pub fn register(&self, extension: &str, target: Arc<dyn CallTarget>) -> RouteGuard {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.table
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(extension.to_string())
            .or_default()
            .push((id, target));
        RouteGuard {
            table: Arc::downgrade(&self.table),
            extension: extension.to_string(),
            id,
        }
    }

    /// Sets (or clears) the target of calls nobody is registered for.
    pub fn set_fallback(&self, target: Option<Arc<dyn CallTarget>>) {
        *self.fallback.lock().unwrap_or_else(|e| e.into_inner()) = target;
    }

    /// Where a call to `extension` goes; `None`: nowhere (answer 404 / 480).
    pub fn route(&self, extension: &str) -> Option<Route> {
        let targets: Vec<_> = self
            .table
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(extension)
            .map(|t| t.iter().map(|(_, t)| t.clone()).collect())
            .unwrap_or_default();
        if !targets.is_empty() {
            return Some(Route::Ring(targets));
        }
        self.fallback
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .map(Route::Fallback)
    }

    /// Offers `call` to its route's targets; returns how many were offered it.
    pub fn dispatch(&self, call: &InboundCall) -> usize {
        match self.route(&call.extension) {
            Some(Route::Ring(targets)) => {
                for t in &targets {
                    t.offer(call);
                }
                targets.len()
            }
            Some(Route::Fallback(t)) => {
                t.offer(call);
                1
            }
            None => 0,
        }
    }

    /// Like [`InboundRouter::dispatch`] for a live SIP call: each target gets
    /// [`CallTarget::ring`] with the ringing call.
    pub fn dispatch_ringing(&self, call: &InboundCall, ringing: &Arc<RingingCall>) -> usize {
        match self.route(&call.extension) {
            Some(Route::Ring(targets)) => {
                for t in &targets {
                    t.ring(call, ringing);
                }
                targets.len()
            }
            Some(Route::Fallback(t)) => {
                t.ring(call, ringing);
                1
            }
            None => 0,
        }
    }

    /// Hands `message` to every target registered for its extension (not the fallback: a
    /// mailbox takes calls, not text); returns how many took it.
    pub fn dispatch_message(&self, message: &InboundMessage) -> usize {
        match self.route(&message.extension) {
            Some(Route::Ring(targets)) => targets.iter().filter(|t| t.message(message)).count(),
            _ => 0,
        }
    }

    /// Tells every target registered for the notice's extension about a new mailbox message;
    /// returns how many targets were told.
    pub fn dispatch_voicemail(&self, notice: &VoicemailNotice) -> usize {
        match self.route(&notice.extension) {
            Some(Route::Ring(targets)) => {
                targets.iter().for_each(|t| t.voicemail(notice));
                targets.len()
            }
            _ => 0,
        }
    }

    /// Registered extensions and how many targets each has (for the live view).
    pub fn extensions(&self) -> Vec<(String, usize)> {
        let mut list: Vec<_> = self
            .table
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(e, t)| (e.clone(), t.len()))
            .collect();
        list.sort();
        list
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Recorder(TargetKind, Mutex<Vec<String>>);

    impl CallTarget for Recorder {
        fn kind(&self) -> TargetKind {
            self.0
        }
        fn offer(&self, call: &InboundCall) {
            self.1.lock().unwrap().push(call.call_id.clone());
        }
    }

    fn call(extension: &str, id: &str) -> InboundCall {
        InboundCall {
            extension: extension.into(),
            caller: "sip:alice@127.0.0.1".into(),
            call_id: id.into(),
        }
    }

    /// Takes MESSAGEs (a browser tab) and counts them.
    struct Texter(Mutex<Vec<String>>);

    impl CallTarget for Texter {
        fn kind(&self) -> TargetKind {
            TargetKind::Handle
        }
        fn offer(&self, _call: &InboundCall) {}
        fn message(&self, message: &InboundMessage) -> bool {
            self.0
                .lock()
                .unwrap()
                .push(String::from_utf8_lossy(&message.body).into_owned());
            true
        }
    }

    #[test]
    fn messages_reach_every_registered_tab_but_never_the_fallback() {
        let router = InboundRouter::default();
        let mailbox = Arc::new(Recorder(TargetKind::Mailbox, Mutex::default()));
        router.set_fallback(Some(mailbox.clone()));
        let message = InboundMessage {
            extension: "100".into(),
            from: "sip:bob@pbx".into(),
            display_name: Some("Bob".into()),
            content_type: "text/plain".into(),
            body: b"hi".to_vec(),
        };
        assert_eq!(
            router.dispatch_message(&message),
            0,
            "nobody: the mailbox takes no text"
        );
        let tab1 = Arc::new(Texter(Mutex::default()));
        let tab2 = Arc::new(Texter(Mutex::default()));
        let room = Arc::new(Recorder(TargetKind::Room, Mutex::default()));
        let _g = [
            router.register("100", tab1.clone()),
            router.register("100", tab2.clone()),
            router.register("100", room.clone()),
        ];
        assert_eq!(
            router.dispatch_message(&message),
            2,
            "both tabs, not the room"
        );
        assert_eq!(*tab1.0.lock().unwrap(), vec!["hi".to_string()]);
        assert_eq!(*tab2.0.lock().unwrap(), vec!["hi".to_string()]);
        assert!(mailbox.1.lock().unwrap().is_empty());
    }

    #[test]
    fn rings_every_registered_target_then_falls_back_when_they_leave() {
        let router = InboundRouter::default();
        let tab1 = Arc::new(Recorder(TargetKind::Handle, Mutex::default()));
        let tab2 = Arc::new(Recorder(TargetKind::Handle, Mutex::default()));
        let mailbox = Arc::new(Recorder(TargetKind::Mailbox, Mutex::default()));
        assert!(router.route("100").is_none());
        router.set_fallback(Some(mailbox.clone()));
        let g1 = router.register("100", tab1.clone());
        let g2 = router.register("100", tab2.clone());
        assert_eq!(router.extensions(), vec![("100".to_string(), 2)]);
        assert_eq!(router.dispatch(&call("100", "a")), 2);
        assert_eq!(*tab1.1.lock().unwrap(), vec!["a"]);
        assert_eq!(*tab2.1.lock().unwrap(), vec!["a"]);
        drop(g1);
        assert_eq!(router.dispatch(&call("100", "b")), 1);
        assert_eq!(*tab1.1.lock().unwrap(), vec!["a"], "unregistered on drop");
        drop(g2);
        assert!(router.extensions().is_empty());
        assert!(matches!(router.route("100"), Some(Route::Fallback(_))));
        router.dispatch(&call("100", "c"));
        assert_eq!(*mailbox.1.lock().unwrap(), vec!["c"]);
        router.set_fallback(None);
        assert_eq!(router.dispatch(&call("100", "d")), 0);
    }
}
