//! The plugins this build hosts, by package name.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{echotest::EchoTest, Plugin};

/// Plugins available for `attach`, keyed by package name.
#[derive(Clone)]
pub struct PluginRegistry {
    plugins: BTreeMap<&'static str, Arc<dyn Plugin>>,
}

impl PluginRegistry {
    /// Every plugin of this build.
    pub fn builtin() -> Self {
        Self::from_plugins(vec![Arc::new(EchoTest)])
    }

    pub fn from_plugins(list: Vec<Arc<dyn Plugin>>) -> Self {
        Self {
            plugins: list.into_iter().map(|p| (p.package(), p)).collect(),
        }
    }

    pub fn get(&self, package: &str) -> Option<Arc<dyn Plugin>> {
        self.plugins.get(package).cloned()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<dyn Plugin>> {
        self.plugins.values()
    }
}
