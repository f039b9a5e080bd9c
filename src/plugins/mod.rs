//! The plugin contract: the one page a plugin author reads.
//!
//! A plugin is a Rust type implementing [`Plugin`], registered at start-up in [`registry`].
//! The core calls it; a plugin never talks to transports. Everything a plugin may do to the
//! outside world goes through the [`Gateway`] it is handed for each handle:
//! push events to the client, negotiate the PeerConnection, send RTP/RTCP/data, close media.
//!
//! Life of a handle, as the core drives it:
//! 1. `attach` → [`Plugin::create_handle`] (store per-handle state with [`Gateway::set_state`]).
//! 2. `message` → [`Plugin::handle_message`]: answer synchronously with [`PluginResult::Ok`],
//!    or asynchronously with [`PluginResult::Async`] (the core acks first, then runs `work`,
//!    which pushes events carrying the request's transaction).
//! 3. Media: [`Plugin::setup_media`] once ICE and DTLS are up, then [`Plugin::incoming_rtp`],
//!    [`Plugin::incoming_rtcp`], [`Plugin::incoming_data`] on the media tasks. These are
//!    synchronous and must not block: hand heavy work (codecs) to a dedicated thread.
//! 4. [`Plugin::hangup_media`] when the PeerConnection goes away (the handle stays).
//! 5. `detach` or session end → [`Plugin::destroy_handle`].

pub mod echotest;
mod gateway;
pub mod registry;

use std::sync::Arc;

use futures::future::BoxFuture;
use serde_json::Value;

pub use gateway::{EventTarget, Gateway};

use crate::media::{DataMessage, Jsep, MediaKind, RtcpFeedback, RtpPacket};
use crate::session::HandleId;

/// Name, version and description shown in `server_info`.
#[derive(Debug, Clone)]
pub struct PluginDescriptor {
    pub name: &'static str,
    pub author: &'static str,
    pub description: &'static str,
    pub version: u32,
    pub version_string: &'static str,
}

/// A `message` request handed to a plugin.
#[derive(Debug, Clone)]
pub struct PluginMessage {
    pub transaction: String,
    pub body: Value,
    pub jsep: Option<Jsep>,
}

/// How a plugin answers a `message`.
pub enum PluginResult {
    /// Synchronous answer: becomes `success` with `plugindata.data` = this value.
    Ok(Value),
    /// Asynchronous: the client gets `ack` (with `hint` if any), then `work` runs and pushes events.
    Async {
        hint: Option<String>,
        work: BoxFuture<'static, ()>,
    },
    /// The plugin could not handle the message at all (Janus error 462). Application errors
    /// (bad room, wrong PIN...) are not this: they go inside `Ok`/event data as `error_code`.
    Error(String),
}

/// A plugin hosted by the gateway.
#[async_trait::async_trait]
pub trait Plugin: Send + Sync + 'static {
    /// Package name clients attach to, e.g. `janus.plugin.echotest`.
    fn package(&self) -> &'static str;

    /// What `server_info` says about this plugin.
    fn descriptor(&self) -> PluginDescriptor;

    /// A new handle attached; returning an error refuses the attach (Janus 461).
    fn create_handle(&self, gateway: &Arc<Gateway>) -> Result<(), String>;

    /// A `message` from the client, with its optional JSEP already validated by the core.
    async fn handle_message(&self, gateway: Arc<Gateway>, message: PluginMessage) -> PluginResult;

    /// Admin API `message_plugin`; answers synchronously.
    fn handle_admin_message(&self, request: Value) -> Value {
        request
    }

    /// ICE and DTLS are up: media can flow.
    fn setup_media(&self, _gateway: &Arc<Gateway>) {}

    /// An RTP packet from the handle's PeerConnection.
    fn incoming_rtp(&self, _gateway: &Arc<Gateway>, _kind: MediaKind, _packet: RtpPacket) {}

    /// RTCP feedback from the handle's PeerConnection about media we send it.
    fn incoming_rtcp(&self, _gateway: &Arc<Gateway>, _kind: MediaKind, _feedback: RtcpFeedback) {}

    /// A data-channel message from the handle's PeerConnection.
    fn incoming_data(&self, _gateway: &Arc<Gateway>, _label: &str, _message: DataMessage) {}

    /// The PeerConnection went away; the handle remains attached.
    fn hangup_media(&self, _gateway: &Arc<Gateway>) {}

    /// The handle is being detached; drop every resource tied to it.
    fn destroy_handle(&self, _handle: HandleId) {}

    /// Plugin-specific state for the Admin API's `handle_info`.
    fn query_handle(&self, _gateway: &Arc<Gateway>) -> Value {
        Value::Object(Default::default())
    }
}
