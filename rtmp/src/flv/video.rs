//! FLV VIDEODATA payloads: legacy AVC tags and recognition of Enhanced RTMP FourCC tags.

use bytes::{BufMut, Bytes, BytesMut};

use super::avc::{
    parse_avc_config, serialize_avc_config, split_length_prefixed, write_length_prefixed,
};
use super::error::{need, FlvError};
use crate::media::{AvcConfig, VideoFrame};

const CODEC_AVC: u8 = 7;
const FRAME_KEY: u8 = 1;
const FRAME_INTER: u8 = 2;
/// Enhanced RTMP marks its extended header with the top bit of the first byte.
const EX_HEADER: u8 = 0x80;

/// A parsed FLV video tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VideoTag {
    /// AVC sequence header: decoder configuration for the frames that follow.
    Config(AvcConfig),
    /// One access unit.
    Frame(VideoFrame),
    /// AVC end of sequence.
    EndOfSequence,
    /// A video info/command frame (frame type 5) carrying no picture.
    Command,
}

/// Parses a video tag body. `nal_length_size` comes from the last sequence header (4 before any).
pub fn parse_video_tag(
    data: &Bytes,
    timestamp_ms: u32,
    nal_length_size: u8,
) -> Result<VideoTag, FlvError> {
    need("video tag header", data, 1)?;
    let first = data[0];
    if first & EX_HEADER != 0 {
        need("Enhanced RTMP FourCC", data, 5)?;
        let fourcc = String::from_utf8_lossy(&data[1..5]).into_owned();
        let name = match &data[1..5] {
            b"hvc1" => "HEVC (hvc1)".to_string(),
            b"av01" => "AV1 (av01)".to_string(),
            b"vp09" => "VP9 (vp09)".to_string(),
            _ => format!("Enhanced RTMP FourCC {fourcc:?}"),
        };
        return Err(FlvError::UnsupportedCodec(name));
    }
    let frame_type = first >> 4;
    let codec = first & 0x0f;
    if frame_type == 5 {
        return Ok(VideoTag::Command);
    }
    if codec != CODEC_AVC {
        let name = match codec {
            2 => "Sorenson H.263",
            3 => "Screen video",
            4 => "VP6",
            5 => "VP6 with alpha",
            6 => "Screen video v2",
            12 => "HEVC (legacy codec id 12)",
            _ => "unknown FLV video codec",
        };
        return Err(FlvError::UnsupportedCodec(format!(
            "{name} (codec id {codec})"
        )));
    }
    need("AVC video tag header", data, 5)?;
    // The composition time is a signed 24-bit big-endian value.
    let cts = (i32::from(data[2]) << 16 | i32::from(data[3]) << 8 | i32::from(data[4])) << 8 >> 8;
    let body = data.slice(5..);
    match data[1] {
        0 => Ok(VideoTag::Config(parse_avc_config(&body)?)),
        1 => {
            let nalus = split_length_prefixed(&body, nal_length_size)?;
            // The FLV frame type is what the encoder declared; an IDR NAL is what a decoder
            // needs. Trust either, since some encoders mark recovery-point frames as key.
            let keyframe = frame_type == FRAME_KEY || nalus.iter().any(|n| n[0] & 0x1f == 5);
            Ok(VideoTag::Frame(VideoFrame {
                dts_ms: timestamp_ms,
                cts_ms: cts,
                keyframe,
                nalus,
            }))
        }
        2 => Ok(VideoTag::EndOfSequence),
        _ => Err(FlvError::Invalid("AVC packet type")),
    }
}

fn avc_header(out: &mut BytesMut, keyframe: bool, packet_type: u8, cts: i32) {
    let frame_type = if keyframe { FRAME_KEY } else { FRAME_INTER };
    out.put_u8(frame_type << 4 | CODEC_AVC);
    out.put_u8(packet_type);
    let cts = cts.clamp(-(1 << 23), (1 << 23) - 1) as u32;
    out.put_slice(&cts.to_be_bytes()[1..]);
}

/// Builds the AVC sequence header tag body for `config`.
pub fn avc_config_tag(config: &AvcConfig) -> Bytes {
    let record = serialize_avc_config(config);
    let mut out = BytesMut::with_capacity(5 + record.len());
    avc_header(&mut out, true, 0, 0);
    out.put_slice(&record);
    out.freeze()
}

/// Builds an AVC NALU tag body (4-byte length prefixes) for one access unit.
pub fn avc_frame_tag(frame: &VideoFrame) -> Bytes {
    let mut out =
        BytesMut::with_capacity(5 + frame.nalus.iter().map(|n| n.len() + 4).sum::<usize>());
    avc_header(&mut out, frame.keyframe, 1, frame.cts_ms);
    write_length_prefixed(&mut out, &frame.nalus);
    out.freeze()
}

/// Builds the AVC end-of-sequence tag body.
pub fn avc_end_of_sequence_tag() -> Bytes {
    let mut out = BytesMut::with_capacity(5);
    avc_header(&mut out, true, 2, 0);
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn avc_frame_round_trips_with_negative_composition_time() {
        let frame = VideoFrame {
            dts_ms: 1000,
            cts_ms: -40,
            keyframe: false,
            nalus: vec![Bytes::from_static(&[0x41, 0x9a, 0x01])],
        };
        let tag = avc_frame_tag(&frame);
        assert_eq!(
            parse_video_tag(&tag, 1000, 4).unwrap(),
            VideoTag::Frame(frame)
        );
    }

    #[test]
    fn idr_nal_marks_keyframe() {
        let frame = VideoFrame {
            dts_ms: 0,
            cts_ms: 80,
            keyframe: true,
            nalus: vec![Bytes::from_static(&[0x65, 0x88])],
        };
        match parse_video_tag(&avc_frame_tag(&frame), 0, 4).unwrap() {
            VideoTag::Frame(f) => assert!(f.keyframe),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn enhanced_rtmp_codecs_are_unsupported() {
        for (fourcc, name) in [(b"hvc1", "HEVC"), (b"av01", "AV1"), (b"vp09", "VP9")] {
            let mut tag = vec![0x80 | 0x10];
            tag.extend_from_slice(fourcc);
            tag.extend_from_slice(&[0, 0, 0]);
            match parse_video_tag(&Bytes::from(tag), 0, 4) {
                Err(FlvError::UnsupportedCodec(c)) => assert!(c.contains(name), "{c}"),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn legacy_non_avc_codec_is_unsupported() {
        let tag = Bytes::from_static(&[0x14, 0, 0]);
        assert!(matches!(
            parse_video_tag(&tag, 0, 4),
            Err(FlvError::UnsupportedCodec(_))
        ));
    }

    proptest! {
        #[test]
        fn arbitrary_video_tags_never_panic(data in proptest::collection::vec(any::<u8>(), 0..256), nls in 0u8..6) {
            let _ = parse_video_tag(&Bytes::from(data), 0, nls);
        }
    }
}
