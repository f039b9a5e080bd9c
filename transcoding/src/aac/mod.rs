//! AAC-LC as RTMP carries it: an AudioSpecificConfig once, then raw access units.
//!
//! Both directions use the Fraunhofer FDK AAC library (`fdk-aac`, sources bundled and built by
//! the crate, so no system package is needed). One library for both sides keeps the ASC
//! handling and the encoder delay consistent, and its decoder is the reference-quality one
//! Android ships, continuously fuzzed upstream.

mod asc;
mod decoder;
mod encoder;

pub use asc::AudioSpecificConfig;
pub use decoder::AacDecoder;
pub use encoder::{AacEncoder, AacEncoderConfig, AacPacket};

/// Samples per channel in one AAC-LC access unit.
pub const AAC_FRAME_SAMPLES: usize = 1024;

#[cfg(test)]
mod tests;
