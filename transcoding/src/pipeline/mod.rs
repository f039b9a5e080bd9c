//! Transcoder pipelines a plugin holds for one media direction: encoded payloads with RTP
//! timestamps in, encoded payloads with timestamps in the output codec's clock out.
//!
//! Each pipeline is a plain struct driven by its caller; codec work is CPU-bound, so callers
//! run it on a blocking thread, never on the async runtime.
//!
//! The audio routes need the `opus`, `aac` and `resample` features, the video routes `vp8`
//! and `h264` (all on by default).

#[cfg(all(feature = "opus", feature = "aac", feature = "resample"))]
mod assemble;
#[cfg(all(feature = "opus", feature = "aac", feature = "resample"))]
mod audio;
#[cfg(all(feature = "opus", feature = "aac", feature = "resample"))]
mod clock;
#[cfg(all(feature = "vp8", feature = "h264"))]
mod video;

#[cfg(all(feature = "opus", feature = "aac", feature = "resample"))]
pub use audio::{AacToOpus, G711ToOpus, OpusToAac, OpusToG711};
#[cfg(all(feature = "vp8", feature = "h264"))]
pub use video::{H264ToVp8, Vp8ToH264};

/// One encoded audio payload and its timestamp in its codec's clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioPacket {
    /// The codec payload (an RTP payload, or a raw AAC access unit).
    pub payload: Vec<u8>,
    /// Timestamp in the codec's clock (48 kHz Opus, 8 kHz G.711, the AAC sample rate).
    pub timestamp: u32,
}

#[cfg(all(test, feature = "opus", feature = "aac", feature = "resample"))]
mod tests;
