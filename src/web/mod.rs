//! Web pages served by the gateway itself: the demos and the admin panel.

pub mod demos;
pub mod panel;
pub mod voicemail;
pub mod whep;
pub mod whip;
pub mod wish;
