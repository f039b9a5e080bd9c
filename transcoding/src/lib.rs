//! Codecs and DSP for Bifrons: everything needed when two sides of a call disagree on a codec.
//!
//! Browsers speak Opus and VP8/H.264, PBXs often only G.711, RTMP encoders send H.264 + AAC.
//! This crate holds the encoders, decoders, resampler and audio mixer that bridge them, and
//! [`pipeline`]s that chain them from payload to payload. It does no networking: callers hand
//! it payloads and timestamps and get payloads and timestamps back.

pub mod aac;
pub mod error;
pub mod frame;
pub mod g711;
pub mod mixer;
pub mod opus_codec;
pub mod pipeline;
pub mod resample;
pub mod video;

#[cfg(test)]
mod testutil;

pub use error::{Result, TranscodeError};
pub use frame::AudioFrame;
