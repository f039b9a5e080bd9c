//! Codecs and DSP for Bifrons: everything needed when two sides of a call disagree on a codec.
//!
//! Browsers speak Opus and VP8/H.264, PBXs often only G.711, RTMP encoders send H.264 + AAC.
//! This crate holds the encoders, decoders, resampler and audio mixer that bridge them, and
//! [`pipeline`]s that chain them from payload to payload. It does no networking: callers hand
//! it payloads and timestamps and get payloads and timestamps back.
//!
//! The codecs that link C libraries sit behind cargo features, all on by default: `opus`,
//! `aac` (FDK AAC), `vp8` (libvpx), `h264` (OpenH264) and `resample` (rubato). Without them
//! the crate is pure Rust: [`g711`], the [`aac::AudioSpecificConfig`] parser, the [`mixer`]
//! and the frame types. That is the part the SIP and RTMP crates depend on.

#![warn(missing_docs)]

pub mod aac;
pub mod error;
pub mod frame;
pub mod g711;
pub mod mixer;
#[cfg(feature = "opus")]
pub mod opus_codec;
pub mod pipeline;
#[cfg(feature = "resample")]
pub mod resample;
pub mod video;

// Which measuring helpers a test build uses depends on the codec features it has.
#[cfg(test)]
#[allow(dead_code)]
mod testutil;

pub use error::{Result, TranscodeError};
pub use frame::AudioFrame;
