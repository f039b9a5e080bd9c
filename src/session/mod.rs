//! Sessions and handles: lifetimes, timeouts and event delivery.

mod handle;
mod ids;
mod manager;
#[allow(clippy::module_inception)]
mod session;

pub use handle::Handle;
pub use ids::{HandleId, SessionId};
pub use manager::{IdInUse, SessionManager};
pub use session::{Session, Sink};
