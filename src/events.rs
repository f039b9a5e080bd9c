//! Typed events: what the core and plugins tell clients, as Rust values.
//!
//! Sessions queue these; exactly one module, `api::janus_json`, turns them into Janus JSON.
//! Every event a session delivers is also published on the [`EventBus`], which metrics and
//! event handlers (and tests) subscribe to.

use serde_json::Value;
use tokio::sync::broadcast;

use crate::ids::{HandleId, Mid, SessionId};
use crate::media::{Jsep, LocalCandidate, MediaKind};

/// An event about one handle (Janus sends each with `session_id` and `sender`).
#[derive(Debug, Clone, PartialEq)]
pub enum HandleEvent {
    /// ICE and DTLS are up (`webrtcup`).
    WebrtcUp,
    /// Media of `kind` on `mid` started or stopped arriving (`media`, after `no_media_timer`).
    Media {
        /// The stream.
        mid: Mid,
        /// Audio or video.
        kind: MediaKind,
        /// Whether packets arrive.
        receiving: bool,
    },
    /// Losses reached the slow-link threshold (`slowlink`).
    Slowlink {
        /// The stream.
        mid: Mid,
        /// Audio or video.
        kind: MediaKind,
        /// `true`: the peer loses what we send; `false`: we lose what it sends.
        uplink: bool,
        /// Packets lost in about a second.
        lost: u64,
    },
    /// The PeerConnection closed (`hangup`), with Janus' reason text.
    Hangup {
        /// e.g. `Janus API`, `Close PC`, `ICE failed`.
        reason: String,
    },
    /// A local ICE candidate (full trickle), or the end of them (`trickle`).
    Trickle(LocalCandidate),
    /// The handle is gone (`detached`).
    Detached,
    /// A plugin's own `event`: `plugindata` with the plugin's package and `data`, and an
    /// optional JSEP; `transaction` ties it to the request that caused it.
    Plugin {
        /// Package name, e.g. `janus.plugin.echotest`.
        plugin: &'static str,
        /// The request's transaction, if this answers one.
        transaction: Option<String>,
        /// The plugin's payload.
        data: Value,
        /// An offer or answer for the client, if any.
        jsep: Option<Jsep>,
    },
}

/// An event for a session's client.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The session expired (`timeout`).
    Timeout {
        /// The session.
        session: SessionId,
    },
    /// Something happened on one of the session's handles.
    Handle {
        /// The session.
        session: SessionId,
        /// The handle (`sender`).
        handle: HandleId,
        /// What happened.
        event: HandleEvent,
    },
}

impl Event {
    /// The session this event is for.
    pub fn session(&self) -> SessionId {
        match self {
            Event::Timeout { session } | Event::Handle { session, .. } => *session,
        }
    }
}

/// Events kept per slow subscriber before it starts missing the oldest (it is told how many).
const BUS_CAPACITY: usize = 4096;

/// Every event delivered to a client, for observers (metrics, event handlers, tests).
///
/// Publishing costs nothing while nobody subscribes; a subscriber that falls more than
/// 4096 events behind loses the oldest (`RecvError::Lagged`), never slows the gateway.
#[derive(Clone)]
pub struct EventBus {
    tx: broadcast::Sender<Event>,
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new()
    }
}

impl EventBus {
    /// A bus with no subscriber.
    pub fn new() -> Self {
        Self {
            tx: broadcast::channel(BUS_CAPACITY).0,
        }
    }

    /// Receives every event published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }

    /// Publishes `event` to the subscribers, if any (cloned only then).
    pub fn publish(&self, event: &Event) {
        if self.tx.receiver_count() > 0 {
            let _ = self.tx.send(event.clone());
        }
    }
}
