//! AAC-LC as RTMP carries it: an AudioSpecificConfig once, then raw access units.
//!
//! The [`AudioSpecificConfig`] parser is pure Rust and always built: the RTMP crate reads
//! sequence headers with it. The encoder and decoder (feature `aac`) use the Fraunhofer FDK
//! AAC library (`fdk-aac`, sources bundled and built by the crate, so no system package is
//! needed). One library for both sides keeps the ASC handling and the encoder delay
//! consistent, and its decoder is the reference-quality one Android ships, continuously fuzzed
//! upstream.

mod asc;
#[cfg(feature = "aac")]
mod decoder;
#[cfg(feature = "aac")]
mod encoder;

pub use asc::{AscError, AudioSpecificConfig};
#[cfg(feature = "aac")]
pub use decoder::AacDecoder;
#[cfg(feature = "aac")]
pub use encoder::{AacEncoder, AacEncoderConfig, AacPacket};

/// Samples per channel in one AAC-LC access unit.
pub const AAC_FRAME_SAMPLES: usize = 1024;

#[cfg(all(test, feature = "aac"))]
mod tests;
