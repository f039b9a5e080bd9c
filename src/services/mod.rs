//! Services: long-lived engines started once at boot, shared by many handles and several
//! plugins. A service owns the sockets, threads and tables that no single handle owns; it
//! knows no Janus JSON, and it is what the panel's live view and the metrics read. Features
//! that cross plugins (the audio bridge dialling SIP, voicemail taking unanswered calls, WHEP
//! playing mountpoints) meet here, never by one plugin importing another.

pub mod sinks;
pub mod sip;
pub mod streams;

use std::sync::Arc;

/// The services a plugin can reach through its host.
#[derive(Clone)]
pub struct Services {
    /// SIP: the inbound router (and, with the SIP issue, the user-agent pool).
    pub sip: Arc<sip::SipService>,
    /// The mountpoint hub.
    pub streams: Arc<streams::MountpointHub>,
}

impl Services {
    /// Starts every service from the configuration. Errors name the service that failed.
    pub fn start(
        _config: &crate::config::Config,
        _storage: &crate::storage::Storage,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            sip: Arc::new(sip::SipService::new()),
            streams: Arc::new(streams::MountpointHub::new()),
        })
    }
}
