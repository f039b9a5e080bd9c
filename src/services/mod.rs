//! Services: the engines that many handles and several plugins share.
//!
//! A service is started once at boot by the composition root, owns the threads, sockets and
//! files behind a feature, and is handed to every plugin that needs it. It knows no Janus JSON
//! and no plugin: plugins map Janus requests onto services, and features that cross plugins
//! (a room recorded, a SIP call transcoded) meet here instead of one plugin importing another.
//! What a service exposes (counters, open recordings, jobs per worker) is also what the admin
//! panel's live view and the metrics read.
//!
//! Services depend only on [`crate::config`], [`crate::storage`] and external crates.
//!
//! - [`workers`]: codec work (transcoding legs, mixers) on `cores − 1` OS threads with a 20 ms
//!   clock, fed through bounded queues.
//! - [`recording`]: Opus → Ogg files written by one writer thread, flushed page by page, each
//!   with its row in the registry.

#![warn(missing_docs)]

pub mod recording;
pub mod workers;
