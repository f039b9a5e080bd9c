//! The SIP service: what every SIP-facing feature shares. The SIP plugin, the audio bridge and
//! voicemail meet here instead of importing one another.
//!
//! Today it holds the [`InboundRouter`] (extension → who answers). The SIP issue adds the
//! user-agent pool (one `bifrons_sip` UA per registry account or trunk, shared by all of the
//! account's handles, re-registered when the registry changes) and call legs.

mod lines;
mod ringing;
mod routing;

pub use lines::{AccountLine, LinePool, LineRouting, LineSpec};
pub use ringing::{RingState, RingingCall, Unanswered};
pub use routing::{CallTarget, InboundCall, InboundRouter, Route, RouteGuard, TargetKind};

/// The SIP service, started once at boot.
#[derive(Default)]
pub struct SipService {
    /// Where inbound calls go.
    pub router: std::sync::Arc<InboundRouter>,
    /// One user agent per registry account in use.
    pub lines: LinePool,
}

impl SipService {
    /// A service with an empty routing table.
    pub fn new() -> Self {
        Self::default()
    }
}
