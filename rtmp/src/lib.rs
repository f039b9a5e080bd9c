//! RTMP for Bifrons: an ingest server (stream-key check through a callback), an egress client,
//! FLV tag ⇄ H.264/AAC conversion and H.264 RTP packetization (RFC 6184).
//!
//! For the streaming plugin: [`server::RtmpServer::events`] tells which keys go live and stop,
//! [`server::RtmpServer::subscribe`] yields a key's media as H.264 access units and AAC frames
//! (starting at the last keyframe), [`rtp::H264Packetizer`] turns those into RTP, and
//! [`client::RtmpPublisher`] pushes media out to any RTMP server.

#![warn(missing_docs)]

pub mod client;
pub mod error;
pub mod flv;
pub mod gop;
mod handshake;
pub mod media;
pub mod name;
pub mod rtp;
pub mod server;
pub mod tag;

pub use error::RtmpError;
pub use media::{AacConfig, AudioFrame, AvcConfig, VideoFrame};
pub use rml_rtmp::sessions::StreamMetadata;
