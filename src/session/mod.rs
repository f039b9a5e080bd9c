//! Sessions and handles: lifetimes, timeouts and event delivery.

mod handle;
mod manager;
// `session::session` holds the `Session` type, one file per concept like `handle` and
// `manager`; the module is private and re-exported, so the repeated name never shows.
#[allow(clippy::module_inception)]
mod session;
pub mod watchdog;

pub use handle::Handle;
pub use manager::{IdInUse, SessionManager};
pub use session::{Session, Sink};
