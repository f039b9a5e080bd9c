//! A plugin handle: one attachment of a session to a plugin.

use std::sync::Arc;

use tokio::time::Instant;

use crate::ids::HandleId;
use crate::plugins::HandleCtx;

/// A handle attached to exactly one plugin. The plugin's typed state lives in the context.
pub struct Handle {
    /// The handle's id.
    pub id: HandleId,
    /// The client's `opaque_id`, if it gave one.
    pub opaque_id: Option<String>,
    /// When it was attached.
    pub created: Instant,
    /// The handle's context: events, media, plugin state.
    pub ctx: Arc<HandleCtx>,
}

impl Handle {
    /// The package of the handle's plugin.
    pub fn plugin(&self) -> &'static str {
        self.ctx.package()
    }

    /// Tears the handle down (see [`HandleCtx`]): tasks, media, plugin, then `detached`.
    pub async fn detach(&self) {
        self.ctx.detach().await;
    }
}
