//! The SIP service: what every SIP-facing feature shares. The SIP plugin, the audio bridge and
//! voicemail meet here instead of importing one another.
//!
//! - [`InboundRouter`]: extension → who answers (handles, rooms, a mailbox).
//! - [`LinePool`]: one user agent and one registration per registry account, shared by all of
//!   the account's handles; its inbound calls go through the router.
//! - [`TrunkLines`]: the gateway's own registration to every trunk that asks for one,
//!   reported per trunk on the live view, re-applied when the registry changes.
//! - [`RingingCall`]: an inbound call ringing several targets, first accept wins, unanswered
//!   calls refused with the configured status.
//! - [`listen`]: listen lines, accounts bound to a mountpoint whose calls hear its audio.
//! - [`mwi`]: message waiting (RFC 3842) to SIP phones on an account's line.
//! - [`open_account_line`]: a registry account's line, opened without a browser.
//! - [`room_route`]: room dial-in, a room's extension answered and its callers put in the room.

mod account_line;
mod lines;
pub mod listen;
pub mod mwi;
mod ringing;
pub mod room_route;
mod routing;
mod trunk_lines;

use crate::web::panel::status::StatusBoard;
pub use account_line::{line_settings, line_ua_config, open_account_line, LineSettings, SipUri};
pub use lines::{AccountLine, LinePool, LineRouting, LineSpec};
pub use ringing::{
    RingState, RingingCall, Unanswered, UnansweredCall, UnansweredHook, MAILBOX_TARGET,
};
pub use trunk_lines::TrunkLines;

pub use routing::{
    CallTarget, InboundCall, InboundMessage, InboundRouter, Route, RouteGuard, TargetKind,
    VoicemailNotice,
};

/// The SIP service, started once at boot.
#[derive(Default)]
pub struct SipService {
    /// Where inbound calls go.
    pub router: std::sync::Arc<InboundRouter>,
    /// One user agent per registry account in use.
    pub lines: LinePool,
    /// The gateway's own registration to each trunk (started by the SIP plugin).
    pub trunks: std::sync::Arc<TrunkLines>,
}

impl SipService {
    /// A service with an empty routing table, reporting account registrations on `status`.
    pub fn new(status: StatusBoard) -> Self {
        Self {
            router: Default::default(),
            lines: LinePool::new(status),
            trunks: Default::default(),
        }
    }
}
