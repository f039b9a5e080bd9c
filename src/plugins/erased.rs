//! Type erasure, done once: the registry holds every plugin as `dyn DynPlugin`, and each
//! handle holds its plugin bound to its typed state as `dyn BoundHandle`. A media call is one
//! virtual call into `Bound<P>`, which calls `P`'s method with `&P::Handle`: no downcast.

use std::sync::Arc;

use futures::future::BoxFuture;
use futures::FutureExt;
use serde_json::Value;

use super::{AttachError, HandleCtx, Plugin, PluginDescriptor, PluginMessage, PluginResult};
use crate::media::{DataMessage, MediaKind, RtcpFeedback, RtpPacket, StreamInfo};

/// A plugin with its handle type erased.
pub(crate) trait DynPlugin: Send + Sync {
    fn descriptor(&self) -> &PluginDescriptor;
    /// Creates the handle's state and binds it to the plugin.
    fn bind(self: Arc<Self>, ctx: &HandleCtx) -> Result<Arc<dyn BoundHandle>, AttachError>;
    fn handle_admin_message(&self, request: Value) -> BoxFuture<'_, Option<Value>>;
    fn shutdown(&self) -> BoxFuture<'_, ()>;
}

/// One handle's plugin and state, bound together.
pub(crate) trait BoundHandle: Send + Sync {
    fn handle_message(
        &self,
        ctx: &Arc<HandleCtx>,
        message: PluginMessage,
    ) -> BoxFuture<'static, PluginResult>;
    fn setup_media(&self, ctx: &HandleCtx);
    fn incoming_rtp(&self, ctx: &HandleCtx, stream: &StreamInfo, packet: RtpPacket);
    fn incoming_rtcp(&self, ctx: &HandleCtx, kind: MediaKind, feedback: RtcpFeedback);
    fn incoming_data(&self, ctx: &HandleCtx, label: &str, message: DataMessage);
    fn hangup_media(&self, ctx: &HandleCtx);
    fn destroy(&self, ctx: &Arc<HandleCtx>) -> BoxFuture<'static, ()>;
    fn query(&self) -> Value;
}

/// Erases `P` (see [`DynPlugin`]).
pub(crate) struct Erased<P>(pub Arc<P>);

impl<P: Plugin> DynPlugin for Erased<P> {
    fn descriptor(&self) -> &PluginDescriptor {
        self.0.descriptor()
    }

    fn bind(self: Arc<Self>, ctx: &HandleCtx) -> Result<Arc<dyn BoundHandle>, AttachError> {
        let state = self.0.create_handle(ctx)?;
        Ok(Arc::new(Bound {
            plugin: self.0.clone(),
            state: Arc::new(state),
        }))
    }

    fn handle_admin_message(&self, request: Value) -> BoxFuture<'_, Option<Value>> {
        self.0.handle_admin_message(request)
    }

    fn shutdown(&self) -> BoxFuture<'_, ()> {
        self.0.shutdown()
    }
}

struct Bound<P: Plugin> {
    plugin: Arc<P>,
    state: Arc<P::Handle>,
}

impl<P: Plugin> BoundHandle for Bound<P> {
    fn handle_message(
        &self,
        ctx: &Arc<HandleCtx>,
        message: PluginMessage,
    ) -> BoxFuture<'static, PluginResult> {
        let (plugin, state, ctx) = (self.plugin.clone(), self.state.clone(), ctx.clone());
        async move { plugin.handle_message(&state, &ctx, message).await }.boxed()
    }

    fn setup_media(&self, ctx: &HandleCtx) {
        self.plugin.setup_media(&self.state, ctx);
    }

    fn incoming_rtp(&self, ctx: &HandleCtx, stream: &StreamInfo, packet: RtpPacket) {
        self.plugin.incoming_rtp(&self.state, ctx, stream, packet);
    }

    fn incoming_rtcp(&self, ctx: &HandleCtx, kind: MediaKind, feedback: RtcpFeedback) {
        self.plugin.incoming_rtcp(&self.state, ctx, kind, feedback);
    }

    fn incoming_data(&self, ctx: &HandleCtx, label: &str, message: DataMessage) {
        self.plugin.incoming_data(&self.state, ctx, label, message);
    }

    fn hangup_media(&self, ctx: &HandleCtx) {
        self.plugin.hangup_media(&self.state, ctx);
    }

    fn destroy(&self, ctx: &Arc<HandleCtx>) -> BoxFuture<'static, ()> {
        let (plugin, state, ctx) = (self.plugin.clone(), self.state.clone(), ctx.clone());
        async move { plugin.destroy_handle(&state, &ctx).await }.boxed()
    }

    fn query(&self) -> Value {
        self.plugin.query_handle(&self.state)
    }
}
