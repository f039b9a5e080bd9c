//! Start-up: builds the core from the configuration and serves every enabled listener
//! until Ctrl-C or SIGTERM.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use tokio::net::TcpListener;

use crate::api::{http, websocket};
use crate::config::Config;
use crate::core::Core;
use crate::logging::LogControl;
use crate::media::MediaEngine;
use crate::plugins::registry::PluginRegistry;
use crate::storage::Storage;

/// Builds the shared core (media engine, plugins, sessions) from `config`.
pub fn build_core(config: Config, log: LogControl, storage: Storage) -> anyhow::Result<Arc<Core>> {
    let media = MediaEngine::new(
        &config.ice,
        &config.dtls,
        Duration::from_secs(config.general.no_media_timer.max(1)),
        config.general.slowlink_threshold,
    )
    .context("starting the media engine")?;
    Ok(Core::new(
        config,
        PluginRegistry::builtin(),
        media,
        log,
        storage,
    ))
}

async fn bind(name: &str, addr: SocketAddr) -> anyhow::Result<TcpListener> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("{name}: cannot listen on {addr}"))?;
    tracing::info!("{name} listening on {}", listener.local_addr()?);
    Ok(listener)
}

/// Serves the Janus API, the Admin API and the demos until shutdown.
pub async fn run(core: Arc<Core>) -> anyhow::Result<()> {
    core.spawn_watchdog();
    let c = &core.config;
    let mut listeners: Vec<(TcpListener, Router)> = Vec::new();
    if c.http.enabled {
        listeners.push((
            bind("Janus API (HTTP)", (c.http.bind, c.http.port).into()).await?,
            http::janus_router(core.clone()),
        ));
    }
    if c.websocket.enabled {
        listeners.push((
            bind(
                "Janus API (WebSocket)",
                (c.websocket.bind, c.websocket.port).into(),
            )
            .await?,
            websocket::janus_router(core.clone()),
        ));
    }
    if c.admin.http_enabled {
        listeners.push((
            bind("Admin API (HTTP)", (c.admin.bind, c.admin.http_port).into()).await?,
            http::admin_router(core.clone()),
        ));
    }
    if c.admin.websocket_enabled {
        listeners.push((
            bind(
                "Admin API (WebSocket)",
                (c.admin.bind, c.admin.websocket_port).into(),
            )
            .await?,
            websocket::admin_router(core.clone()),
        ));
    }
    let (stop_tx, _) = tokio::sync::broadcast::channel::<()>(1);
    let mut servers = Vec::new();
    for (listener, router) in listeners {
        let mut stop = stop_tx.subscribe();
        servers.push(tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    let _ = stop.recv().await;
                })
                .await
        }));
    }
    shutdown_signal().await;
    tracing::info!("shutting down");
    for session in core.sessions.all() {
        core.destroy_session(&session).await;
    }
    core.storage.close().await;
    let _ = stop_tx.send(());
    for server in servers {
        let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
    }
    Ok(())
}

async fn shutdown_signal() {
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
