//! FLV tag payloads (the body of RTMP audio/video messages) ⇄ H.264 and AAC.
//!
//! Only H.264 and AAC are carried through Bifrons without transcoding; everything else, including
//! Enhanced RTMP's FourCC codecs (HEVC, AV1, VP9), is recognised and reported as
//! [`FlvError::UnsupportedCodec`] so the caller can refuse the stream with a clear reason.

mod audio;
mod avc;
mod error;
mod video;

pub use audio::{aac_config_tag, aac_frame_tag, parse_audio_tag, parse_audio_specific_config, AudioTag};
pub use avc::{parse_avc_config, serialize_avc_config, split_length_prefixed, write_length_prefixed};
pub use error::FlvError;
pub use video::{avc_config_tag, avc_end_of_sequence_tag, avc_frame_tag, parse_video_tag, VideoTag};
