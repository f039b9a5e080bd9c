//! A plugin handle: one attachment of a session to a plugin, with its media context.

use std::sync::Arc;

use tokio::time::Instant;

use super::ids::HandleId;
use crate::plugins::{Gateway, Plugin};

/// A handle attached to exactly one plugin.
pub struct Handle {
    pub id: HandleId,
    pub plugin: Arc<dyn Plugin>,
    pub opaque_id: Option<String>,
    pub created: Instant,
    pub gateway: Arc<Gateway>,
}

impl Handle {
    /// Tears the handle down: media closed without a `hangup` event (Janus sends none while
    /// detaching), the plugin told, then the `detached` event.
    pub async fn detach(&self) {
        self.gateway.shutdown_media().await;
        self.plugin.destroy_handle(self.id);
        self.gateway
            .push_core_event("detached", serde_json::Map::new());
    }
}
