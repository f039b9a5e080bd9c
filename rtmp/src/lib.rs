//! RTMP for Bifrons: an ingest server (stream-key check through a callback), an egress client,
//! FLV tag ⇄ H.264/AAC conversion and H.264 RTP packetization (RFC 6184).

pub mod flv;
pub mod media;
pub mod rtp;

pub use media::{AacConfig, AudioFrame, AvcConfig, VideoFrame};
