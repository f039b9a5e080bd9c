//! The composition root: configuration → media engine → services → plugins → core, then the
//! listeners, served until a shutdown future completes (Ctrl-C or SIGTERM for the binary,
//! anything for a test), as in tokio's mini-redis.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::serve::ListenerExt;
use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::api::{http, websocket};
use crate::config::Config;
use crate::core::Core;
use crate::events::EventBus;
use crate::logging::LogControl;
use crate::media::MediaEngine;
use crate::plugins::registry::PluginRegistry;
use crate::plugins::{PluginFactory, PluginHost};
use crate::services::Services;
use crate::session::watchdog;
use crate::storage::Storage;

/// Builds the core with the plugins of this build.
pub async fn build_core(
    config: Config,
    log: LogControl,
    storage: Storage,
) -> anyhow::Result<Arc<Core>> {
    build_core_with(config, log, storage, &PluginRegistry::builtin()).await
}

/// Builds the core with the given plugin factories (tests pass their own plugins).
pub async fn build_core_with(
    config: Config,
    log: LogControl,
    storage: Storage,
    factories: &[PluginFactory],
) -> anyhow::Result<Arc<Core>> {
    let config = Arc::new(config);
    let media = Arc::new(
        MediaEngine::new(
            &config.ice,
            &config.dtls,
            &config.media,
            Duration::from_secs(config.general.no_media_timer.max(1)),
            config.general.slowlink_threshold,
        )
        .context("starting the media engine")?,
    );
    let services = Services::start(&config, &storage).context("starting the services")?;
    let events = EventBus::new();
    let shutdown = CancellationToken::new();
    let host = PluginHost {
        config: config.clone(),
        storage: storage.clone(),
        media: media.clone(),
        services: services.clone(),
        events: events.clone(),
        shutdown: shutdown.clone(),
    };
    let plugins = PluginRegistry::start(&host, factories).await?;
    Ok(Core::new(&host, plugins, log))
}

/// The bound listeners of the enabled APIs. Port 0 in the configuration binds an ephemeral
/// port; [`Listeners::addresses`] tells which.
pub struct Listeners {
    /// Janus API over HTTP (and the demo pages).
    pub janus_http: Option<TcpListener>,
    /// Janus API over WebSocket.
    pub janus_ws: Option<TcpListener>,
    /// Admin API over HTTP.
    pub admin_http: Option<TcpListener>,
    /// Admin API over WebSocket.
    pub admin_ws: Option<TcpListener>,
}

/// Where each enabled listener is bound.
#[derive(Debug, Clone, Copy, Default)]
pub struct Addresses {
    /// Janus API over HTTP.
    pub janus_http: Option<SocketAddr>,
    /// Janus API over WebSocket.
    pub janus_ws: Option<SocketAddr>,
    /// Admin API over HTTP.
    pub admin_http: Option<SocketAddr>,
    /// Admin API over WebSocket.
    pub admin_ws: Option<SocketAddr>,
}

async fn bind(name: &str, addr: SocketAddr) -> anyhow::Result<TcpListener> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("{name}: cannot listen on {addr}"))?;
    tracing::info!("{name} listening on {}", listener.local_addr()?);
    Ok(listener)
}

impl Listeners {
    /// Binds every listener `config` enables. Errors name the listener and address.
    pub async fn bind(config: &Config) -> anyhow::Result<Self> {
        async fn bind_if(
            enabled: bool,
            name: &str,
            addr: SocketAddr,
        ) -> anyhow::Result<Option<TcpListener>> {
            Ok(match enabled {
                true => Some(bind(name, addr).await?),
                false => None,
            })
        }
        let c = config;
        Ok(Self {
            janus_http: bind_if(
                c.http.enabled,
                "Janus API (HTTP)",
                (c.http.bind, c.http.port).into(),
            )
            .await?,
            janus_ws: bind_if(
                c.websocket.enabled,
                "Janus API (WebSocket)",
                (c.websocket.bind, c.websocket.port).into(),
            )
            .await?,
            admin_http: bind_if(
                c.admin.http_enabled,
                "Admin API (HTTP)",
                (c.admin.bind, c.admin.http_port).into(),
            )
            .await?,
            admin_ws: bind_if(
                c.admin.websocket_enabled,
                "Admin API (WebSocket)",
                (c.admin.bind, c.admin.websocket_port).into(),
            )
            .await?,
        })
    }

    /// The bound addresses.
    pub fn addresses(&self) -> Addresses {
        let addr = |l: &Option<TcpListener>| l.as_ref().and_then(|l| l.local_addr().ok());
        Addresses {
            janus_http: addr(&self.janus_http),
            janus_ws: addr(&self.janus_ws),
            admin_http: addr(&self.admin_http),
            admin_ws: addr(&self.admin_ws),
        }
    }
}

/// Serves the Janus API, the Admin API and the demos until `shutdown` completes, then
/// destroys every session (handles detach), stops the plugins and closes the registry.
pub async fn run(
    core: Arc<Core>,
    listeners: Listeners,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    watchdog::spawn(core.sessions.clone(), core.shutdown.clone());
    let routed: Vec<(TcpListener, Router)> = [
        (
            listeners.janus_http,
            http::janus_router as fn(Arc<Core>) -> Router,
        ),
        (listeners.janus_ws, websocket::janus_router),
        (listeners.admin_http, admin_http_router),
        (listeners.admin_ws, websocket::admin_router),
    ]
    .into_iter()
    .filter_map(|(l, make)| l.map(|l| (l, make(core.clone()))))
    .collect();
    let mut servers = Vec::new();
    for (listener, router) in routed {
        let stop = core.shutdown.clone();
        // Janus API messages are small request/answer pairs: without TCP_NODELAY, Nagle's
        // algorithm holds each reply until the client's delayed ACK (~40 ms per round trip).
        let listener = listener.tap_io(|tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "TCP_NODELAY");
            }
        });
        servers.push(tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .await
        }));
    }
    shutdown.await;
    tracing::info!("shutting down");
    for session in core.sessions.all() {
        core.sessions.destroy(&session).await;
    }
    core.plugins.shutdown().await;
    core.services.shutdown().await;
    core.shutdown.cancel();
    core.storage.close().await;
    for server in servers {
        let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
    }
    Ok(())
}

/// The admin HTTP listener: the admin panel (`/panel/...`) beside the Admin API.
fn admin_http_router(core: Arc<Core>) -> Router {
    crate::api::admin::panel_router(&core).merge(http::admin_router(core))
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return std::future::pending().await,
            };
        tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
