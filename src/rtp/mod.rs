//! Pure RTP helpers, sans I/O: sequence-number arithmetic, loss windows, and the rewriting
//! that lets a sink see one continuous stream while its sources change. No clock is read
//! here: time comes in as a parameter, so tests drive it.
//!
//! Used by the media engine (loss for `slowlink`) and by the services that forward one
//! source to many sinks (mountpoints, rooms).

mod loss;
mod switching;

pub use loss::LossWindow;
pub use switching::{RtpHeader, RtpRewriter};
