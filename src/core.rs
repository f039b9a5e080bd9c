//! The gateway's shared state: configuration, sessions, plugins, media engine, services, auth.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::auth::Auth;
use crate::config::Config;
use crate::events::EventBus;
use crate::logging::LogControl;
use crate::media::MediaEngine;
use crate::plugins::registry::PluginRegistry;
use crate::plugins::PluginHost;
use crate::services::Services;
use crate::session::SessionManager;
use crate::storage::Storage;

/// Everything the transports share, built by [`crate::server`].
pub struct Core {
    /// The configuration the gateway started with.
    pub config: Arc<Config>,
    /// Live sessions and their handles.
    pub sessions: Arc<SessionManager>,
    /// The started plugins.
    pub plugins: PluginRegistry,
    /// The WebRTC engine.
    pub media: Arc<MediaEngine>,
    /// The shared services.
    pub services: Services,
    /// Every event delivered to clients.
    pub events: EventBus,
    /// API secret and stored tokens.
    pub auth: Auth,
    /// The run-time log level.
    pub log: LogControl,
    /// The SQL registry (accounts, trunks, stream keys, recordings).
    pub storage: Storage,
    /// Cancelled when the gateway stops.
    pub shutdown: CancellationToken,
    accepting: AtomicBool,
    next_connection: AtomicU64,
    /// When the gateway started.
    pub started: std::time::SystemTime,
    /// Origin of the monotonic times the Admin API reports, in µs (Janus reports
    /// `janus_get_monotonic_time()` values; ours count from the gateway's start).
    pub monotonic_origin: tokio::time::Instant,
}

impl Core {
    /// Assembles the core from what the plugins were started with; sessions start empty.
    pub fn new(host: &PluginHost, plugins: PluginRegistry, log: LogControl) -> Arc<Self> {
        let general = &host.config.general;
        Arc::new(Self {
            sessions: Arc::new(SessionManager::new(
                general.session_timeout,
                host.events.clone(),
            )),
            auth: Auth::new(&general.api_secret, general.token_auth),
            plugins,
            media: host.media.clone(),
            services: host.services.clone(),
            events: host.events.clone(),
            log,
            storage: host.storage.clone(),
            shutdown: host.shutdown.clone(),
            accepting: AtomicBool::new(true),
            next_connection: AtomicU64::new(1),
            started: std::time::SystemTime::now(),
            monotonic_origin: tokio::time::Instant::now(),
            config: host.config.clone(),
        })
    }

    /// Whether `create` is allowed (false in drain mode).
    pub fn accepting_sessions(&self) -> bool {
        self.accepting.load(Ordering::Relaxed)
    }

    /// Turns drain mode off (`true`) or on (`false`), as Admin API `accept_new_sessions`.
    pub fn set_accepting_sessions(&self, accept: bool) {
        self.accepting.store(accept, Ordering::Relaxed);
    }

    /// A fresh id for a transport connection (WebSocket), to bind sessions to it.
    pub fn next_connection_id(&self) -> u64 {
        self.next_connection.fetch_add(1, Ordering::Relaxed)
    }
}
