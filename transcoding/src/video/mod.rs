//! Video: raw I420 frames, VP8 through libvpx and (feature `h264`) H.264 through OpenH264.

mod frame;
#[cfg(feature = "h264")]
pub mod h264;
pub mod vp8;

pub use frame::{EncodedVideo, VideoFrame};

/// RTP clock of every video payload format Bifrons carries.
pub const VIDEO_CLOCK: u32 = 90_000;

#[cfg(test)]
pub(crate) mod testpattern;
