//! Sessions and handles: lifetimes, timeouts and event delivery.

mod handle;
mod manager;
#[allow(clippy::module_inception)]
mod session;
pub mod watchdog;

pub use handle::Handle;
pub use manager::{IdInUse, SessionManager};
pub use session::{Session, Sink};
