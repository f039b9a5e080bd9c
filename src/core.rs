//! The gateway's shared state: configuration, sessions, plugins, media engine, auth.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::time::Instant;

use crate::api::auth::Auth;
use crate::config::Config;
use crate::logging::LogControl;
use crate::media::MediaEngine;
use crate::plugins::registry::PluginRegistry;
use crate::plugins::EventTarget;
use crate::session::{Session, SessionManager};
use crate::storage::Storage;

/// Everything the transports and the watchdog share.
pub struct Core {
    pub config: Config,
    pub sessions: SessionManager,
    pub plugins: PluginRegistry,
    pub media: Arc<MediaEngine>,
    pub auth: Auth,
    pub log: LogControl,
    /// The SQL registry (accounts, trunks, stream keys, recordings).
    pub storage: Storage,
    accepting: AtomicBool,
    next_connection: AtomicU64,
    pub started: std::time::SystemTime,
}

impl Core {
    pub fn new(
        config: Config,
        plugins: PluginRegistry,
        media: MediaEngine,
        log: LogControl,
        storage: Storage,
    ) -> Arc<Self> {
        Arc::new(Self {
            sessions: SessionManager::new(config.general.session_timeout),
            auth: Auth::new(&config.general.api_secret, config.general.token_auth),
            plugins,
            media: Arc::new(media),
            log,
            storage,
            accepting: AtomicBool::new(true),
            next_connection: AtomicU64::new(1),
            started: std::time::SystemTime::now(),
            config,
        })
    }

    /// Whether `create` is allowed (false in drain mode).
    pub fn accepting_sessions(&self) -> bool {
        self.accepting.load(Ordering::Relaxed)
    }

    pub fn set_accepting_sessions(&self, accept: bool) {
        self.accepting.store(accept, Ordering::Relaxed);
    }

    /// A fresh id for a transport connection (WebSocket), to bind sessions to it.
    pub fn next_connection_id(&self) -> u64 {
        self.next_connection.fetch_add(1, Ordering::Relaxed)
    }

    /// Removes a session and detaches its handles (each yields `detached`).
    pub async fn destroy_session(&self, session: &Arc<Session>) {
        self.sessions.remove(session.id);
        if !session.mark_destroyed() {
            return;
        }
        for handle in session.take_handles() {
            handle.detach().await;
        }
        tracing::info!(session_id = %session.id, "session destroyed");
    }

    /// Reaps expired sessions: `timeout` event to the client, then teardown.
    pub async fn reap_expired(&self, now: Instant) {
        for session in self.sessions.take_expired(now) {
            tracing::info!(session_id = %session.id, "session timed out");
            session.push(json!({ "janus": "timeout", "session_id": session.id.0 }));
            self.destroy_session(&session).await;
        }
    }

    /// A WebSocket closed: its sessions survive, their events queued, so that a new connection
    /// can `claim` them; unclaimed, they go after `reclaim_session_timeout` seconds when that is
    /// set, else at the ordinary session timeout.
    pub fn connection_closed(self: &Arc<Self>, connection: u64) {
        let owned: Vec<Arc<Session>> = self
            .sessions
            .all()
            .into_iter()
            .filter(|s| s.connection() == Some(connection))
            .collect();
        let reclaim = self.config.general.reclaim_session_timeout;
        for session in owned {
            session.unbind_connection(connection);
            if reclaim == 0 {
                continue;
            }
            let core = self.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(reclaim)).await;
                if session.connection().is_none()
                    && session.transport() == crate::api::WEBSOCKET_TRANSPORT
                {
                    core.destroy_session(&session).await;
                }
            });
        }
    }

    /// Checks session timeouts every 2 s, like Janus' watchdog.
    pub fn spawn_watchdog(self: &Arc<Self>) {
        let core = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(2));
            loop {
                tick.tick().await;
                let Some(core) = core.upgrade() else { break };
                core.reap_expired(Instant::now()).await;
            }
        });
    }
}
