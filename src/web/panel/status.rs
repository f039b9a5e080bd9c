//! The live view's data: what the core and the services report, as plain read-only records.
//!
//! Two inputs feed it. The Janus sessions come from a [`SessionSource`], which the API layer
//! implements over the core's session manager (the panel sits below the core and cannot read
//! it itself). SIP registrations and RTMP/WHIP publishers are pushed into a [`StatusBoard`]
//! by the services that own them: `set_*` when something changes, `remove_*` when it ends.
//! A service that feeds the board calls [`StatusBoard::attach_sip`] or
//! [`StatusBoard::attach_publishers`] once, so the page can tell "none right now" from "no
//! such service in this build".

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use futures::future::BoxFuture;
use serde::Serialize;
use utoipa::ToSchema;

use crate::storage::Timestamp;

/// One medium (m-line) of a handle's PeerConnection.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LiveMedia {
    /// The m-line's mid.
    pub mid: String,
    /// `audio`, `video` or `data`.
    pub kind: String,
    /// Packets received from the browser.
    pub packets_in: u64,
    /// Packets sent to the browser.
    pub packets_out: u64,
    /// Bytes received from the browser.
    pub bytes_in: u64,
    /// Bytes sent to the browser.
    pub bytes_out: u64,
    /// Receive bitrate since the previous sample, kbit/s (absent on the first sample).
    pub kbps_in: Option<f64>,
    /// Send bitrate since the previous sample, kbit/s.
    pub kbps_out: Option<f64>,
}

/// A plugin handle and the state of its PeerConnection, if it has one.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LiveHandle {
    /// Handle id.
    pub id: u64,
    /// Plugin package, e.g. `janus.plugin.echotest`.
    pub plugin: String,
    /// The client's opaque id.
    pub opaque_id: Option<String>,
    /// ICE state (`new`, `checking`, `connected`, ...).
    pub ice_state: Option<String>,
    /// DTLS state, as Janus names it (`connected`, ...).
    pub dtls_state: Option<String>,
    /// W3C PeerConnection state.
    pub peer_connection: Option<String>,
    /// Selected ICE candidate pair.
    pub selected_pair: Option<String>,
    /// Per-medium counters.
    pub media: Vec<LiveMedia>,
}

/// A Janus session.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LiveSession {
    /// Session id.
    pub id: u64,
    /// Transport package it was created over.
    pub transport: String,
    /// Its handles.
    pub handles: Vec<LiveHandle>,
}

/// Where a registration stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RegistrationState {
    /// REGISTER sent, no final answer yet.
    Registering,
    /// The registrar accepted it.
    Registered,
    /// The registrar refused it or did not answer.
    Failed,
    /// Not registered (disabled, or unregistered on purpose).
    Unregistered,
}

/// A SIP registration of a trunk (and account, when registering per account).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SipRegistration {
    /// Trunk name.
    pub trunk: String,
    /// Account extension, when the registration is per account.
    pub account: Option<String>,
    /// State.
    pub state: RegistrationState,
    /// Last answer, e.g. `200 OK` or `403 Forbidden`.
    pub detail: Option<String>,
    /// Seconds the registrar granted.
    pub expires_s: Option<u32>,
    /// When the state last changed, Unix ms.
    pub updated_ms: i64,
}

/// A live publisher: RTMP, WHIP or a janus.js handle's `publish` request.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Publisher {
    /// `rtmp`, `whip` or `publish`.
    pub protocol: String,
    /// Name of the stream key it published with (never the key).
    pub stream_key: String,
    /// Mountpoint it feeds.
    pub mountpoint: String,
    /// Encoder address.
    pub remote: Option<String>,
    /// Current viewers of the mountpoint.
    pub viewers: u32,
    /// Ingest bitrate, kbit/s.
    pub kbps: Option<f64>,
    /// Publishing since, Unix ms.
    pub since_ms: i64,
    /// Codecs the mountpoint relays from it, lower case (`["opus", "h264"]`).
    pub codecs: Vec<String>,
}

/// Which services feed the board in this process.
#[derive(Debug, Clone, Copy, Default, Serialize, ToSchema)]
pub struct Feeds {
    /// A SIP service reports registrations.
    pub sip: bool,
    /// A streaming service reports publishers.
    pub publishers: bool,
}

/// Everything the live view shows at one instant.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LiveSnapshot {
    /// When it was taken, Unix ms.
    pub generated_ms: i64,
    /// Janus sessions and their handles.
    pub sessions: Vec<LiveSession>,
    /// SIP registrations.
    pub sip_registrations: Vec<SipRegistration>,
    /// RTMP/WHIP publishers.
    pub publishers: Vec<Publisher>,
    /// Which of the lists above have a service behind them.
    pub feeds: Feeds,
    /// RTMP egresses of mountpoints (as the streaming plugin's `egress_list` shows them).
    #[schema(value_type = Vec<Object>)]
    pub egresses: Vec<serde_json::Value>,
}

/// Reads the Janus sessions; implemented by the API layer over the core.
pub trait SessionSource: Send + Sync {
    /// The current sessions, their handles and PeerConnection counters.
    fn sessions(&self) -> BoxFuture<'_, Vec<LiveSession>>;
}

/// A source with no sessions (a panel without a core, e.g. in unit tests).
#[derive(Debug, Default)]
pub struct NoSessions;

impl SessionSource for NoSessions {
    fn sessions(&self) -> BoxFuture<'_, Vec<LiveSession>> {
        Box::pin(async { Vec::new() })
    }
}

#[derive(Debug, Default)]
struct Board {
    feeds: Feeds,
    registrations: BTreeMap<(String, Option<String>), SipRegistration>,
    publishers: BTreeMap<String, Publisher>,
}

/// The registrations and publishers services report; cheap to clone, shared.
#[derive(Debug, Clone, Default)]
pub struct StatusBoard {
    inner: Arc<RwLock<Board>>,
}

impl StatusBoard {
    /// An empty board.
    pub fn new() -> Self {
        Self::default()
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Board> {
        self.inner.write().unwrap_or_else(|p| p.into_inner())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Board> {
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Declares that a SIP service reports registrations here.
    pub fn attach_sip(&self) {
        self.write().feeds.sip = true;
    }

    /// Declares that a streaming service reports publishers here.
    pub fn attach_publishers(&self) {
        self.write().feeds.publishers = true;
    }

    /// Sets the registration of `(trunk, account)`, stamping `updated_ms` now.
    pub fn set_registration(&self, mut registration: SipRegistration) {
        registration.updated_ms = Timestamp::now().0;
        let key = (registration.trunk.clone(), registration.account.clone());
        self.write().registrations.insert(key, registration);
    }

    /// Forgets the registration of `(trunk, account)` (trunk deleted).
    pub fn remove_registration(&self, trunk: &str, account: Option<&str>) {
        self.write()
            .registrations
            .remove(&(trunk.to_owned(), account.map(str::to_owned)));
    }

    /// Sets the publisher of `publisher.mountpoint`.
    pub fn set_publisher(&self, publisher: Publisher) {
        self.write()
            .publishers
            .insert(publisher.mountpoint.clone(), publisher);
    }

    /// Forgets the publisher of `mountpoint` (it stopped).
    pub fn remove_publisher(&self, mountpoint: &str) {
        self.write().publishers.remove(mountpoint);
    }

    /// The board's part of a snapshot.
    pub fn read_all(&self) -> (Vec<SipRegistration>, Vec<Publisher>, Feeds) {
        let b = self.read();
        (
            b.registrations.values().cloned().collect(),
            b.publishers.values().cloned().collect(),
            b.feeds,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn board_keeps_one_entry_per_trunk_and_mountpoint() {
        let board = StatusBoard::new();
        assert!(!board.read_all().2.sip);
        board.attach_sip();
        let reg = |state| SipRegistration {
            trunk: "pbx".into(),
            account: None,
            state,
            detail: None,
            expires_s: None,
            updated_ms: 0,
        };
        board.set_registration(reg(RegistrationState::Registering));
        board.set_registration(reg(RegistrationState::Registered));
        let (regs, pubs, feeds) = board.read_all();
        assert_eq!(regs.len(), 1);
        assert_eq!(regs[0].state, RegistrationState::Registered);
        assert!(regs[0].updated_ms > 0);
        assert!(pubs.is_empty() && feeds.sip && !feeds.publishers);
        board.remove_registration("pbx", None);
        assert!(board.read_all().0.is_empty());
    }
}
