//! A Janus session: its handles, its activity clock and where its events go.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, Notify};
use tokio::time::Instant;

use super::handle::Handle;
use crate::events::{Event, EventBus, HandleEvent};
use crate::ids::{HandleId, SessionId};
use crate::plugins::HandleOwner;

/// Where a session's events are delivered.
#[derive(Clone)]
pub enum Sink {
    /// Kept in the session's queue for HTTP long polls (or until a `claim`).
    Queue,
    /// Pushed on a WebSocket connection; if the socket's writer has gone, events fall back to
    /// the queue.
    Socket {
        /// The connection's id ([`crate::core::Core::next_connection_id`]), to find the
        /// sessions a closing socket owned.
        connection: u64,
        /// The connection's writer task, which serialises each event to Janus JSON.
        tx: mpsc::UnboundedSender<Event>,
    },
}

/// Events kept for a session with no long poll pending; beyond this the oldest are dropped.
const MAX_QUEUED_EVENTS: usize = 1000;

/// A Janus session.
pub struct Session {
    /// The id clients address it by (`session_id`), chosen by the client at `create` or random.
    pub id: SessionId,
    /// When `create` made it.
    pub created: Instant,
    last_activity: Mutex<Instant>,
    /// Per-session timeout (Admin API): `None` uses the global one, `Some(0)` never expires.
    timeout_override: Mutex<Option<u64>>,
    handles: Mutex<HashMap<HandleId, Arc<Handle>>>,
    sink: Mutex<Sink>,
    queue: Mutex<VecDeque<Event>>,
    notify: Notify,
    transport: Mutex<&'static str>,
    destroyed: AtomicBool,
    bus: EventBus,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Session {
    /// A session delivering to `sink`, publishing what it delivers on `bus`.
    pub fn new(
        id: SessionId,
        sink: Sink,
        transport: &'static str,
        now: Instant,
        bus: EventBus,
    ) -> Self {
        Self {
            id,
            created: now,
            last_activity: Mutex::new(now),
            timeout_override: Mutex::new(None),
            handles: Mutex::new(HashMap::new()),
            sink: Mutex::new(sink),
            queue: Mutex::new(VecDeque::new()),
            notify: Notify::new(),
            transport: Mutex::new(transport),
            destroyed: AtomicBool::new(false),
            bus,
        }
    }

    /// Any accepted request keeps the session alive.
    pub fn touch(&self, now: Instant) {
        *lock(&self.last_activity) = now;
    }

    /// When the last accepted request arrived (creation, until one does).
    pub fn last_activity(&self) -> Instant {
        *lock(&self.last_activity)
    }

    /// Sets this session's own timeout in seconds (Admin API `set_session_timeout` on a
    /// session): `Some(0)` never expires, `None` (Janus' `-1`) goes back to the global one.
    pub fn set_timeout_override(&self, timeout: Option<u64>) {
        *lock(&self.timeout_override) = timeout;
    }

    /// The timeout in force given the global one; 0 means never.
    pub fn timeout(&self, global: u64) -> u64 {
        lock(&self.timeout_override).unwrap_or(global)
    }

    /// Whether the session has been idle longer than its timeout at `now`.
    pub fn is_expired(&self, global_timeout: u64, now: Instant) -> bool {
        let timeout = self.timeout(global_timeout);
        timeout != 0
            && now.saturating_duration_since(self.last_activity()) >= Duration::from_secs(timeout)
    }

    /// Package name of the transport that created or last claimed it
    /// (`janus.transport.http`, `janus.transport.websockets`).
    pub fn transport(&self) -> &'static str {
        *lock(&self.transport)
    }

    /// Sends future events to `sink`, flushing what was queued meanwhile (used by `claim`).
    pub fn rebind(&self, sink: Sink, transport: &'static str) {
        let queued: Vec<Event> = lock(&self.queue).drain(..).collect();
        *lock(&self.transport) = transport;
        *lock(&self.sink) = sink;
        for event in queued {
            self.deliver_event(event);
        }
    }

    /// The connection the session is bound to, if a WebSocket.
    pub fn connection(&self) -> Option<u64> {
        match &*lock(&self.sink) {
            Sink::Socket { connection, .. } => Some(*connection),
            Sink::Queue => None,
        }
    }

    /// Detaches the session from a closed socket so that its events queue up until a `claim`.
    pub fn unbind_connection(&self, connection: u64) {
        let mut sink = lock(&self.sink);
        if matches!(&*sink, Sink::Socket { connection: c, .. } if *c == connection) {
            *sink = Sink::Queue;
        }
    }

    /// Up to `max` queued events, waiting at most `hold` for the first one.
    pub async fn poll_events(&self, max: usize, hold: Duration) -> Vec<Event> {
        let deadline = Instant::now() + hold;
        loop {
            let notified = self.notify.notified();
            {
                let mut queue = lock(&self.queue);
                if !queue.is_empty() {
                    let n = max.min(queue.len());
                    return queue.drain(..n).collect();
                }
            }
            if self.is_destroyed() || tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Vec::new();
            }
        }
    }

    /// Adds a handle made by `attach`; one with the same id is replaced (ids are drawn free).
    pub fn add_handle(&self, handle: Arc<Handle>) {
        lock(&self.handles).insert(handle.id, handle);
    }

    /// The handle `id`, if attached to this session.
    pub fn handle(&self, id: HandleId) -> Option<Arc<Handle>> {
        lock(&self.handles).get(&id).cloned()
    }

    /// Takes the handle `id` out of the session (for `detach`), without detaching it.
    pub fn remove_handle(&self, id: HandleId) -> Option<Arc<Handle>> {
        lock(&self.handles).remove(&id)
    }

    /// Ids of the attached handles, in no particular order (Admin API `list_handles`).
    pub fn handle_ids(&self) -> Vec<HandleId> {
        lock(&self.handles).keys().copied().collect()
    }

    /// Removes and returns every handle (session teardown).
    pub fn take_handles(&self) -> Vec<Arc<Handle>> {
        lock(&self.handles).drain().map(|(_, h)| h).collect()
    }

    /// Marks the session destroyed and wakes its pending long polls (they answer empty);
    /// true only for the first call, so that teardown runs once.
    pub fn mark_destroyed(&self) -> bool {
        let first = !self.destroyed.swap(true, Ordering::AcqRel);
        self.notify.notify_waiters();
        first
    }

    /// Whether [`Session::mark_destroyed`] has been called.
    pub fn is_destroyed(&self) -> bool {
        self.destroyed.load(Ordering::Acquire)
    }
}

impl Session {
    /// Delivers an event to the client (and to the event bus's observers).
    pub fn push(&self, event: Event) {
        self.bus.publish(&event);
        self.deliver_event(event);
    }

    fn deliver_event(&self, event: Event) {
        let sink = lock(&self.sink).clone();
        let event = match sink {
            Sink::Socket { tx, .. } => match tx.send(event) {
                Ok(()) => return,
                Err(mpsc::error::SendError(event)) => event,
            },
            Sink::Queue => event,
        };
        let mut queue = lock(&self.queue);
        if queue.len() >= MAX_QUEUED_EVENTS {
            queue.pop_front();
        }
        queue.push_back(event);
        drop(queue);
        self.notify.notify_one();
    }
}

impl HandleOwner for Session {
    fn deliver(&self, handle: HandleId, event: HandleEvent) {
        self.push(Event::Handle {
            session: self.id,
            handle,
            event,
        });
    }

    fn end_handle(&self, handle: HandleId) {
        if let Some(handle) = self.remove_handle(handle) {
            tokio::spawn(async move { handle.ctx.detach().await });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(n: u64) -> Event {
        Event::Timeout {
            session: SessionId(n),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn expires_only_after_idle_timeout_and_touch_refreshes() {
        let start = Instant::now();
        let s = Session::new(SessionId(1), Sink::Queue, "http", start, EventBus::new());
        assert!(!s.is_expired(60, start + Duration::from_secs(59)));
        assert!(s.is_expired(60, start + Duration::from_secs(60)));
        s.touch(start + Duration::from_secs(30));
        assert!(!s.is_expired(60, start + Duration::from_secs(60)));
        s.set_timeout_override(Some(0));
        assert!(!s.is_expired(60, start + Duration::from_secs(10_000)));
    }

    #[tokio::test(start_paused = true)]
    async fn long_poll_returns_queued_events_or_times_out() {
        let s = Arc::new(Session::new(
            SessionId(1),
            Sink::Queue,
            "http",
            Instant::now(),
            EventBus::new(),
        ));
        assert!(s.poll_events(1, Duration::from_secs(30)).await.is_empty());
        s.push(n(1));
        s.push(n(2));
        s.push(n(3));
        assert_eq!(s.poll_events(2, Duration::from_secs(30)).await.len(), 2);
        assert_eq!(s.poll_events(10, Duration::from_secs(30)).await, vec![n(3)]);
        let waiter = tokio::spawn({
            let s = s.clone();
            async move { s.poll_events(10, Duration::from_secs(30)).await }
        });
        tokio::time::sleep(Duration::from_secs(5)).await;
        s.push(n(4));
        assert_eq!(waiter.await.unwrap(), vec![n(4)]);
    }

    #[tokio::test]
    async fn socket_sink_receives_and_claim_flushes_queue() {
        let bus = EventBus::new();
        let s = Session::new(
            SessionId(7),
            Sink::Queue,
            "http",
            Instant::now(),
            bus.clone(),
        );
        let mut observed = bus.subscribe();
        s.push(n(1));
        let (tx, mut rx) = mpsc::unbounded_channel();
        s.rebind(Sink::Socket { connection: 3, tx }, "ws");
        assert_eq!(rx.recv().await.unwrap(), n(1));
        s.push(n(2));
        assert_eq!(rx.recv().await.unwrap(), n(2));
        assert_eq!(
            observed.recv().await.unwrap(),
            n(1),
            "the bus sees each event once"
        );
        assert_eq!(observed.recv().await.unwrap(), n(2));
        s.unbind_connection(3);
        assert_eq!(s.connection(), None);
    }
}
