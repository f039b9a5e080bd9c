//! Bifrons: a WebRTC gateway speaking the Janus API, between browsers and SIP/RTMP peers.
//!
//! Layers, each owning one thing: [`api`] (transports and the Janus/Admin API), [`session`]
//! (sessions, handles, timeouts), [`plugins`] (the plugin contract and the plugins),
//! [`media`] (the WebRTC engine), [`services`] (engines started once at boot and shared by
//! many handles and plugins: codec workers, recording), [`storage`] (the SQL registry),
//! [`config`], [`web`] (pages served by the gateway).

pub mod api;
pub mod config;
pub mod core;
pub mod logging;
pub mod media;
pub mod plugins;
pub mod server;
pub mod services;
pub mod session;
pub mod storage;
pub mod web;
