//! The plugins this build hosts, by package name.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Context;
use serde_json::Value;

use super::erased::DynPlugin;
use super::host::RegisteredPlugin;
use super::{
    audiobridge, echotest, sip, streaming, voicemail, PluginDescriptor, PluginFactory, PluginHost,
};

/// What a plugin made of an Admin API `message_plugin`.
#[derive(Debug, Clone, PartialEq)]
pub enum AdminReply {
    /// No plugin has that package (Janus: 460 "Invalid plugin").
    NoSuchPlugin,
    /// The plugin takes no Admin API messages (Janus: 490 "Plugin doesn't support Admin API
    /// messages").
    Unsupported,
    /// The plugin's answer, the reply's `response`.
    Response(Value),
}

/// Plugins available for `attach`, keyed by package name.
#[derive(Clone, Default)]
pub struct PluginRegistry {
    plugins: BTreeMap<&'static str, Arc<dyn DynPlugin>>,
}

impl PluginRegistry {
    /// The factories of every plugin of this build, in start order.
    pub fn builtin() -> Vec<PluginFactory> {
        vec![
            echotest::factory,
            sip::factory,
            streaming::factory,
            audiobridge::factory,
            voicemail::factory,
        ]
    }

    /// Starts each plugin with `host`; the first failure stops the boot, naming the plugin.
    pub async fn start(host: &PluginHost, factories: &[PluginFactory]) -> anyhow::Result<Self> {
        let mut started = Vec::new();
        for (n, factory) in factories.iter().enumerate() {
            let plugin = factory(host)
                .await
                .with_context(|| format!("starting plugin #{}", n + 1))?;
            tracing::info!(plugin = plugin.0.descriptor().package, "plugin started");
            started.push(plugin);
        }
        Ok(Self::from_plugins(started))
    }

    /// A registry of plugins started elsewhere (tests).
    pub fn from_plugins(list: Vec<RegisteredPlugin>) -> Self {
        Self {
            plugins: list
                .into_iter()
                .map(|p| (p.0.descriptor().package, p.0))
                .collect(),
        }
    }

    pub(crate) fn get(&self, package: &str) -> Option<Arc<dyn DynPlugin>> {
        self.plugins.get(package).cloned()
    }

    /// What `server_info` lists.
    pub fn descriptors(&self) -> impl Iterator<Item = &PluginDescriptor> {
        self.plugins.values().map(|p| p.descriptor())
    }

    /// Admin API `message_plugin`: what the plugin of `package` answers to `request`.
    pub async fn admin_message(&self, package: &str, request: Value) -> AdminReply {
        let Some(plugin) = self.get(package) else {
            return AdminReply::NoSuchPlugin;
        };
        match plugin.handle_admin_message(request).await {
            Some(response) => AdminReply::Response(response),
            None => AdminReply::Unsupported,
        }
    }

    /// Tells every plugin the gateway stops (after every handle was destroyed).
    pub async fn shutdown(&self) {
        for plugin in self.plugins.values() {
            plugin.shutdown().await;
        }
    }
}
