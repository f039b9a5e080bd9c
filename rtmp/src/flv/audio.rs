//! FLV AUDIODATA payloads ⇄ AAC (AudioSpecificConfig + raw frames).

use bifrons_transcoding::aac::AudioSpecificConfig;
use bytes::{BufMut, Bytes, BytesMut};

use super::error::{need, FlvError};
use crate::media::{AacConfig, AudioFrame};

const FORMAT_AAC: u8 = 10;
/// Enhanced RTMP's "ExAudio" sound format: a FourCC follows.
const FORMAT_EX_AUDIO: u8 = 9;
/// AAC tags always declare 44 kHz, 16-bit, stereo; the real values are in the ASC.
const AAC_TAG_HEADER: u8 = FORMAT_AAC << 4 | 0x0f;

/// A parsed FLV audio tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AudioTag {
    /// AAC sequence header.
    Config(AacConfig),
    /// One raw AAC frame.
    Frame(AudioFrame),
}

/// Parses an audio tag body.
pub fn parse_audio_tag(data: &Bytes, timestamp_ms: u32) -> Result<AudioTag, FlvError> {
    need("audio tag header", data, 1)?;
    let format = data[0] >> 4;
    if format != FORMAT_AAC {
        let name = match format {
            0 | 3 => "linear PCM".to_string(),
            1 => "ADPCM".to_string(),
            2 => "MP3".to_string(),
            4..=6 => "Nellymoser".to_string(),
            7 => "G.711 A-law".to_string(),
            8 => "G.711 mu-law".to_string(),
            FORMAT_EX_AUDIO if data.len() >= 5 => {
                format!(
                    "Enhanced RTMP audio FourCC {:?}",
                    String::from_utf8_lossy(&data[1..5])
                )
            }
            11 => "Speex".to_string(),
            14 => "MP3 8 kHz".to_string(),
            _ => format!("FLV sound format {format}"),
        };
        return Err(FlvError::UnsupportedCodec(name));
    }
    need("AAC tag header", data, 2)?;
    let body = data.slice(2..);
    match data[1] {
        0 => Ok(AudioTag::Config(parse_audio_specific_config(&body)?)),
        1 => Ok(AudioTag::Frame(AudioFrame {
            timestamp_ms,
            data: body,
        })),
        _ => Err(FlvError::Invalid("AAC packet type")),
    }
}

/// Reads object type, sampling rate and channels from an AudioSpecificConfig
/// (ISO/IEC 14496-3 §1.6.2.1, the body of an AAC sequence header), keeping the bytes verbatim.
///
/// Errors: [`FlvError::Truncated`] when the fields are cut, [`FlvError::Invalid`] for a
/// reserved sampling frequency index or a 0 Hz rate.
pub fn parse_audio_specific_config(data: &Bytes) -> Result<AacConfig, FlvError> {
    let asc = AudioSpecificConfig::parse(data)?;
    Ok(AacConfig {
        object_type: asc.object_type,
        sample_rate: asc.sample_rate,
        channels: asc.channels,
        raw: data.clone(),
    })
}

/// Builds the AAC sequence header tag body.
pub fn aac_config_tag(config: &AacConfig) -> Bytes {
    let mut out = BytesMut::with_capacity(2 + config.raw.len());
    out.put_u8(AAC_TAG_HEADER);
    out.put_u8(0);
    out.put_slice(&config.raw);
    out.freeze()
}

/// Builds a raw AAC frame tag body.
pub fn aac_frame_tag(frame: &AudioFrame) -> Bytes {
    let mut out = BytesMut::with_capacity(2 + frame.data.len());
    out.put_u8(AAC_TAG_HEADER);
    out.put_u8(1);
    out.put_slice(&frame.data);
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn aac_lc_48k_stereo_config_is_read() {
        // 00010 0011 0010 000 : AAC-LC, 48 kHz, 2 channels
        let raw = Bytes::from_static(&[0x11, 0x90]);
        let config = parse_audio_specific_config(&raw).unwrap();
        assert_eq!(
            (config.object_type, config.sample_rate, config.channels),
            (2, 48000, 2)
        );
        assert_eq!(
            parse_audio_tag(&aac_config_tag(&config), 0).unwrap(),
            AudioTag::Config(config)
        );
    }

    #[test]
    fn aac_frame_round_trips() {
        let frame = AudioFrame {
            timestamp_ms: 23,
            data: Bytes::from_static(&[0x21, 0x10, 0x05]),
        };
        assert_eq!(
            parse_audio_tag(&aac_frame_tag(&frame), 23).unwrap(),
            AudioTag::Frame(frame)
        );
    }

    #[test]
    fn mp3_is_unsupported() {
        let tag = Bytes::from_static(&[0x2f, 0xff, 0xfb]);
        assert!(
            matches!(parse_audio_tag(&tag, 0), Err(FlvError::UnsupportedCodec(c)) if c == "MP3")
        );
    }

    proptest! {
        #[test]
        fn arbitrary_audio_tags_never_panic(data in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = parse_audio_tag(&Bytes::from(data), 0);
        }
    }
}
