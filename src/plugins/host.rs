//! [`PluginHost`]: what a plugin is started with, and [`PluginFactory`], how it is started.

use std::sync::Arc;

use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;

use super::erased::{DynPlugin, Erased};
use super::Plugin;
use crate::config::Config;
use crate::events::EventBus;
use crate::media::MediaEngine;
use crate::services::Services;
use crate::storage::Storage;

/// Everything a plugin may use beyond its handles, handed to its factory once at boot.
#[derive(Clone)]
pub struct PluginHost {
    /// The whole configuration; a plugin reads its own section.
    pub config: Arc<Config>,
    /// The SQL registry (accounts, trunks, stream keys, recordings).
    pub storage: Storage,
    /// The WebRTC engine (PeerConnections are made through [`super::HandleCtx`]).
    pub media: Arc<MediaEngine>,
    /// The shared services (workers, recording, SIP, streams).
    pub services: Services,
    /// Every event delivered to clients, to observe.
    pub events: EventBus,
    /// Cancelled when the gateway stops; long-lived plugin tasks end on it.
    pub shutdown: CancellationToken,
}

/// A started plugin, ready for the registry.
pub struct RegisteredPlugin(pub(crate) Arc<dyn DynPlugin>);

impl RegisteredPlugin {
    /// Wraps a plugin for the registry.
    pub fn new<P: Plugin>(plugin: P) -> Self {
        Self(Arc::new(Erased(Arc::new(plugin))))
    }
}

/// Starts one plugin: reads its configuration, opens what it needs, fails the boot with a
/// clear error when it cannot.
pub type PluginFactory =
    for<'a> fn(&'a PluginHost) -> BoxFuture<'a, anyhow::Result<RegisteredPlugin>>;
