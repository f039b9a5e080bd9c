//! Bifrons: a WebRTC gateway speaking the Janus API, between browsers and SIP/RTMP peers.
//!
//! Layers, each importing only the ones below it:
//! [`api`] (transports, the Janus and Admin APIs, the one Janus JSON writer) →
//! [`core`] and [`server`] (shared state, composition root) → [`session`] (sessions,
//! handles, timeouts) → [`plugins`] (the plugin contract and the plugins) → [`services`]
//! (engines shared by many handles) → [`media`] (the WebRTC engine) → [`rtp`] (pure RTP
//! helpers) → [`config`],
//! [`storage`] (the SQL registry); [`events`], [`ids`], [`auth`] and [`logging`] are the
//! ground every layer may use. [`web`] serves pages.

#![warn(missing_docs)]

pub mod api;
pub mod audio_file;
pub mod auth;
pub mod config;
pub mod core;
pub mod events;
pub mod ids;
pub mod logging;
pub mod media;
pub mod plugins;
pub mod rtp;
pub mod server;
pub mod services;
pub mod session;
pub mod storage;
pub mod web;
