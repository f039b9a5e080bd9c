//! The plugin contract: the one page a plugin author reads.
//!
//! A plugin is the Janus face of a feature: it parses its requests, keeps per-handle state,
//! pushes its events and maps what clients ask onto the shared services. It is a Rust type
//! implementing [`Plugin`], started once at boot by a factory that receives a [`PluginHost`]
//! (its configuration, the registry, the media engine, the services, the event bus and a
//! shutdown token), and listed in [`registry::PluginRegistry::builtin`] (or handed to
//! [`crate::server::build_core_with`] by a binary of your own).
//!
//! # Life of a handle
//! 1. `attach` → [`Plugin::create_handle`] returns the plugin's typed per-handle state
//!    ([`Plugin::Handle`]). The core keeps it beside the handle's [`HandleCtx`] and hands both
//!    back on every later call: no lookup, no downcast.
//! 2. `message` → [`Plugin::handle_message`]: answer synchronously with [`PluginResult::Ok`],
//!    or asynchronously with [`PluginResult::Async`] (the core sends the `ack` first, then
//!    runs `work`, which pushes events carrying the request's transaction). A JSEP answer in
//!    the message has already been applied by the core.
//! 3. Media: [`Plugin::setup_media`] once ICE and DTLS are up, then [`Plugin::incoming_rtp`],
//!    [`Plugin::incoming_rtcp`], [`Plugin::incoming_data`].
//! 4. [`Plugin::hangup_media`] when the PeerConnection goes away (the handle stays).
//! 5. `detach`, session end or [`HandleCtx::end`] → tasks from [`HandleCtx::spawn`] are
//!    cancelled, the PeerConnection is closed, then [`Plugin::destroy_handle`] runs once.
//!
//! # Threads and ordering
//! - `handle_message` runs on the request's task. Over HTTP two messages of one handle may run
//!   concurrently (each request is its own task); over WebSocket the requests of one
//!   connection are handled one after the other, so a slow `handle_message` holds up that
//!   socket: do slow work (negotiation, storage) in [`PluginResult::Async`]. `Async` work runs
//!   on its own task: per-handle state that messages change must be atomics or behind the
//!   handle's own lock.
//! - Events pushed while `handle_message` runs reach the client before the request's own
//!   `success`/`ack`. An event answering the request (with its transaction) therefore belongs
//!   in `Async` work, which starts once the `ack` is on its way (janode drops an event that
//!   comes before its `ack`).
//! - `incoming_rtp` of one handle is called from one task per remote stream (one for audio,
//!   one for video), in arrival order per stream; audio and video calls may run at the same
//!   time. `incoming_rtcp` and `incoming_data` come from other tasks. These calls are
//!   synchronous and must not block or do codec work: hand frames to `services::workers`
//!   through a bounded queue, and send with a [`MediaSender`], which never blocks.
//! - `setup_media`, `hangup_media` and `destroy_handle` of one handle never overlap one
//!   another; `destroy_handle` is the last call for a handle, after which its media calls
//!   stop (a packet already being delivered may still finish).
//! - No lock is shared between handles on the media path: a handle's state belongs to it,
//!   and what handles share (rooms, mountpoints) lives in services with their own fan-out.
//!
//! # Lifetimes
//! Per-handle state must not own its [`HandleCtx`] (keep a [`HandleRef`], which is weak):
//! the context owns the state, and a cycle would keep a detached handle alive.
//!
//! # A complete example
//! `examples/hello_plugin.rs` is a gateway binary with a plugin of its own beside the built-in
//! ones (`cargo run --example hello_plugin`); `tests/api_plugin_host.rs` drives a plugin over
//! the real HTTP API with the in-process harness. Implement the trait with
//! `#[async_trait::async_trait]`; the media types a plugin needs are re-exported here.

pub mod audiobridge;
pub mod echotest;
mod erased;
mod handle_ctx;
mod host;
pub mod registry;
pub mod sip;
pub mod streaming;
pub mod voicemail;

use std::sync::Arc;

use futures::future::BoxFuture;
use serde_json::Value;

#[doc(hidden)]
pub use handle_ctx::HandleOwner;
pub use handle_ctx::{HandleCtx, HandleRef};
pub use host::{PluginFactory, PluginHost, RegisteredPlugin};

#[doc(no_inline)]
pub use crate::media::{
    AnswerPlan, Codec, DataMessage, Direction, Jsep, JsepType, MediaKind, MediaSender, Negotiated,
    NegotiatedStream, OfferPlan, RtcpFeedback, RtpPacket, StreamInfo, StreamPlan,
};

/// Name, version and description shown in `server_info`.
#[derive(Debug, Clone)]
pub struct PluginDescriptor {
    /// Package name clients attach to, e.g. `janus.plugin.echotest`.
    pub package: &'static str,
    /// Human-readable name.
    pub name: &'static str,
    /// Who wrote it.
    pub author: &'static str,
    /// One line on what it does.
    pub description: &'static str,
    /// Version as Janus numbers it (e.g. 1 for 0.0.1).
    pub version: u32,
    /// Version as text.
    pub version_string: &'static str,
}

/// A `message` request handed to a plugin.
#[derive(Debug, Clone)]
pub struct PluginMessage {
    /// The request's transaction, to put in the events that answer it.
    pub transaction: String,
    /// The `body` object.
    pub body: Value,
    /// The `jsep`, validated (type known, SDP parses); an answer was already applied.
    pub jsep: Option<Jsep>,
}

/// How a plugin answers a `message`.
pub enum PluginResult {
    /// Synchronous answer: becomes `success` with `plugindata.data` = this value.
    Ok(Value),
    /// Asynchronous: the client gets `ack` (with `hint` if any), then `work` runs and pushes events.
    Async {
        /// Text for the `ack`'s `hint`.
        hint: Option<String>,
        /// The work, started once the `ack` is on its way.
        work: BoxFuture<'static, ()>,
    },
    /// The plugin could not handle the message at all (Janus error 462). Application errors
    /// (bad room, wrong PIN...) are not this: they go inside `Ok`/event data as `error_code`.
    Error(String),
}

/// Why a plugin refused an `attach` (Janus 461 with this text).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct AttachError(pub String);

/// A plugin hosted by the gateway. See the module documentation for the threading rules.
#[async_trait::async_trait]
pub trait Plugin: Send + Sync + 'static {
    /// The plugin's per-handle state, created by [`Plugin::create_handle`] and handed back
    /// with every call about that handle.
    type Handle: Send + Sync + 'static;

    /// Package, name and version, for `attach` and `server_info`.
    fn descriptor(&self) -> &PluginDescriptor;

    /// A new handle attached; an error refuses the attach (Janus 461).
    fn create_handle(&self, ctx: &HandleCtx) -> Result<Self::Handle, AttachError>;

    /// A `message` from the client.
    async fn handle_message(
        &self,
        handle: &Arc<Self::Handle>,
        ctx: &Arc<HandleCtx>,
        message: PluginMessage,
    ) -> PluginResult;

    /// ICE and DTLS are up: media can flow.
    fn setup_media(&self, _handle: &Self::Handle, _ctx: &HandleCtx) {}

    /// An RTP packet from the handle's PeerConnection, on the remote stream `stream`.
    fn incoming_rtp(
        &self,
        _handle: &Self::Handle,
        _ctx: &HandleCtx,
        _stream: &StreamInfo,
        _packet: RtpPacket,
    ) {
    }

    /// RTCP feedback from the handle's PeerConnection about our outgoing stream of `kind`.
    fn incoming_rtcp(
        &self,
        _handle: &Self::Handle,
        _ctx: &HandleCtx,
        _kind: MediaKind,
        _feedback: RtcpFeedback,
    ) {
    }

    /// A data-channel message from the handle's PeerConnection.
    fn incoming_data(
        &self,
        _handle: &Self::Handle,
        _ctx: &HandleCtx,
        _label: &str,
        _message: DataMessage,
    ) {
    }

    /// The PeerConnection went away; the handle remains attached.
    fn hangup_media(&self, _handle: &Self::Handle, _ctx: &HandleCtx) {}

    /// The handle is being detached: release what it holds (its PeerConnection is closed
    /// and its spawned tasks cancelled already).
    async fn destroy_handle(&self, _handle: &Arc<Self::Handle>, _ctx: &HandleCtx) {}

    /// Plugin-specific state for the Admin API's `handle_info`.
    fn query_handle(&self, _handle: &Self::Handle) -> Value {
        Value::Object(Default::default())
    }

    /// Admin API `message_plugin`: the `request` object; `Some` is the reply's `response`.
    /// `None` (the default) says the plugin takes no Admin API messages, and the client gets
    /// Janus' answer for a plugin without the hook: error 490 "Plugin doesn't support Admin
    /// API messages".
    async fn handle_admin_message(&self, _request: Value) -> Option<Value> {
        None
    }

    /// The gateway is stopping: every handle was destroyed already.
    async fn shutdown(&self) {}
}
