//! Transcoder pipelines a plugin holds for one media direction: encoded payloads with RTP
//! timestamps in, encoded payloads with timestamps in the output codec's clock out.
//!
//! Each pipeline is a plain struct driven by its caller; codec work is CPU-bound, so callers
//! run it on a blocking thread, never on the async runtime.

mod assemble;
mod audio;
mod clock;
mod video;

pub use audio::{AacToOpus, G711ToOpus, OpusToAac, OpusToG711};
#[cfg(feature = "h264")]
pub use video::{H264ToVp8, Vp8ToH264};

/// One encoded audio payload and its timestamp in its codec's clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioPacket {
    /// The codec payload (an RTP payload, or a raw AAC access unit).
    pub payload: Vec<u8>,
    /// Timestamp in the codec's clock (48 kHz Opus, 8 kHz G.711, the AAC sample rate).
    pub timestamp: u32,
}

#[cfg(test)]
mod tests;
