//! Video: raw I420 frames, VP8 through libvpx (feature `vp8`) and H.264 through OpenH264
//! (feature `h264`).

mod frame;
#[cfg(feature = "h264")]
pub mod h264;
#[cfg(feature = "vp8")]
pub mod vp8;

pub use frame::{EncodedVideo, VideoFrame};

/// RTP clock of every video payload format Bifrons carries.
pub const VIDEO_CLOCK: u32 = 90_000;

#[cfg(all(test, any(feature = "vp8", feature = "h264")))]
pub(crate) mod testpattern;
