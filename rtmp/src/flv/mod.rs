//! FLV tag payloads (the body of RTMP audio/video messages) ⇄ H.264 and AAC.
//!
//! Only H.264 and AAC are carried through Bifrons without transcoding; everything else, including
//! Enhanced RTMP's FourCC codecs (HEVC, AV1, VP9), is recognised and reported as
//! [`FlvError::UnsupportedCodec`] so the caller can refuse the stream with a clear reason.

mod audio;
mod avc;
mod error;
mod file;
mod video;

/// Checks only the codec fields of a tag body (cheap, for the ingest path): `Ok` for H.264 video
/// or AAC audio, [`FlvError::UnsupportedCodec`] otherwise.
pub fn check_supported_codec(data: &[u8], video: bool) -> Result<(), FlvError> {
    let Some(&first) = data.first() else {
        return Ok(());
    };
    let supported = if video {
        first & 0x80 == 0 && (first & 0x0f == 7 || first >> 4 == 5)
    } else {
        first >> 4 == 10
    };
    if supported {
        return Ok(());
    }
    let bytes = bytes::Bytes::copy_from_slice(&data[..data.len().min(8)]);
    let error = if video {
        parse_video_tag(&bytes, 0, 4).err()
    } else {
        parse_audio_tag(&bytes, 0).err()
    };
    Err(error.unwrap_or(FlvError::Invalid("codec header")))
}

pub use audio::{
    aac_config_tag, aac_frame_tag, parse_audio_specific_config, parse_audio_tag, AudioTag,
};
pub use avc::{
    parse_avc_config, serialize_avc_config, split_length_prefixed, write_length_prefixed,
};
pub use error::FlvError;
pub use file::{parse_flv_file, FlvFileTag, FlvTagKind};
pub use video::{
    avc_config_tag, avc_end_of_sequence_tag, avc_frame_tag, parse_video_tag, VideoTag,
};
