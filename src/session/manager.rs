//! The table of live sessions.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::time::Instant;

use super::session::{Session, Sink};
use crate::events::{Event, EventBus};
use crate::ids::SessionId;

/// Live sessions by id, and the global session timeout.
pub struct SessionManager {
    sessions: Mutex<HashMap<SessionId, Arc<Session>>>,
    timeout: AtomicU64,
    bus: EventBus,
}

/// A client asked for a session id that is taken.
#[derive(Debug, PartialEq, Eq)]
pub struct IdInUse;

impl SessionManager {
    /// An empty table; `timeout_secs` is the global session timeout (0 = never), `bus`
    /// receives every event the sessions deliver.
    pub fn new(timeout_secs: u64, bus: EventBus) -> Self {
        Self {
            sessions: Mutex::new(HashMap::new()),
            timeout: AtomicU64::new(timeout_secs),
            bus,
        }
    }

    fn table(&self) -> std::sync::MutexGuard<'_, HashMap<SessionId, Arc<Session>>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Creates a session with the client's id, or a random free one.
    pub fn create(
        &self,
        requested: Option<SessionId>,
        sink: Sink,
        transport: &'static str,
        now: Instant,
    ) -> Result<Arc<Session>, IdInUse> {
        let mut table = self.table();
        let id = match requested {
            Some(id) if table.contains_key(&id) => return Err(IdInUse),
            Some(id) => id,
            None => loop {
                let id = SessionId::random();
                if !table.contains_key(&id) {
                    break id;
                }
            },
        };
        let session = Arc::new(Session::new(id, sink, transport, now, self.bus.clone()));
        table.insert(id, session.clone());
        Ok(session)
    }

    /// The session `id`, if live.
    pub fn get(&self, id: SessionId) -> Option<Arc<Session>> {
        self.table().get(&id).cloned()
    }

    /// Takes `id` out of the table (without tearing it down).
    pub fn remove(&self, id: SessionId) -> Option<Arc<Session>> {
        self.table().remove(&id)
    }

    /// Ids of the live sessions.
    pub fn ids(&self) -> Vec<SessionId> {
        self.table().keys().copied().collect()
    }

    /// Every live session.
    pub fn all(&self) -> Vec<Arc<Session>> {
        self.table().values().cloned().collect()
    }

    /// How many sessions are live.
    pub fn len(&self) -> usize {
        self.table().len()
    }

    /// Whether no session is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The global session timeout, seconds (0 = never).
    pub fn timeout(&self) -> u64 {
        self.timeout.load(Ordering::Relaxed)
    }

    /// Sets the global session timeout (Admin API `set_session_timeout`), seconds.
    pub fn set_timeout(&self, secs: u64) {
        self.timeout.store(secs, Ordering::Relaxed);
    }

    /// Removes a session and detaches its handles (each yields `detached`).
    pub async fn destroy(&self, session: &Arc<Session>) {
        self.remove(session.id);
        if !session.mark_destroyed() {
            return;
        }
        for handle in session.take_handles() {
            handle.detach().await;
        }
        tracing::info!(session_id = %session.id, "session destroyed");
    }

    /// Reaps the sessions expired at `now`: `timeout` event to the client, then teardown.
    pub async fn reap_expired(&self, now: Instant) {
        for session in self.take_expired(now) {
            tracing::info!(session_id = %session.id, "session timed out");
            session.push(Event::Timeout {
                session: session.id,
            });
            self.destroy(&session).await;
        }
    }

    /// Removes and returns the sessions idle past their timeout at `now`.
    pub fn take_expired(&self, now: Instant) -> Vec<Arc<Session>> {
        let global = self.timeout();
        let mut table = self.table();
        let expired: Vec<SessionId> = table
            .iter()
            .filter(|(_, s)| s.is_expired(global, now))
            .map(|(id, _)| *id)
            .collect();
        expired
            .into_iter()
            .filter_map(|id| table.remove(&id))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn client_chosen_id_conflicts_and_expiry_reaps() {
        let m = SessionManager::new(60, EventBus::new());
        let t0 = Instant::now();
        let a = m
            .create(Some(SessionId(1234)), Sink::Queue, "http", t0)
            .unwrap();
        assert_eq!(a.id, SessionId(1234));
        assert_eq!(
            m.create(Some(SessionId(1234)), Sink::Queue, "http", t0)
                .err(),
            Some(IdInUse)
        );
        let b = m.create(None, Sink::Queue, "http", t0).unwrap();
        b.touch(t0 + Duration::from_secs(50));
        let reaped = m.take_expired(t0 + Duration::from_secs(61));
        assert_eq!(
            reaped.iter().map(|s| s.id).collect::<Vec<_>>(),
            vec![SessionId(1234)]
        );
        assert!(m.get(SessionId(1234)).is_none());
        assert!(m.get(b.id).is_some());
        m.set_timeout(0);
        assert!(m.take_expired(t0 + Duration::from_secs(100_000)).is_empty());
    }
}
