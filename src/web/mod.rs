//! Web pages served by the gateway itself: the demos (the admin panel comes later).

pub mod demos;
pub mod whep;
