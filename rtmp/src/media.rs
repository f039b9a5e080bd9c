//! Codec-level media types shared by the FLV conversion, the RTP packetizer, the server and the
//! client: what the streaming plugin sees, independent of RTMP's framing.

use bytes::Bytes;

/// H.264 decoder configuration (the content of an AVCDecoderConfigurationRecord).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvcConfig {
    /// `AVCProfileIndication` (66 baseline, 77 main, 100 high, ...).
    pub profile: u8,
    /// `profile_compatibility` flags.
    pub compatibility: u8,
    /// `AVCLevelIndication` (31 = level 3.1).
    pub level: u8,
    /// Bytes in each NAL unit length prefix of the frames that follow (1, 2 or 4).
    pub nal_length_size: u8,
    /// Sequence parameter sets, without length prefix or start code.
    pub sps: Vec<Bytes>,
    /// Picture parameter sets, without length prefix or start code.
    pub pps: Vec<Bytes>,
}

impl AvcConfig {
    /// Builds the configuration from in-band parameter sets (as a WebRTC publisher sends them),
    /// taking profile, compatibility and level from the first SPS.
    pub fn from_parameter_sets(sps: Vec<Bytes>, pps: Vec<Bytes>) -> Option<Self> {
        let first = sps.first()?;
        if first.len() < 4 || first[0] & 0x1f != 7 || pps.is_empty() {
            return None;
        }
        Some(Self {
            profile: first[1],
            compatibility: first[2],
            level: first[3],
            nal_length_size: 4,
            sps,
            pps,
        })
    }
}

/// One H.264 access unit: all NAL units of one picture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoFrame {
    /// Decode timestamp in milliseconds (the FLV tag timestamp).
    pub dts_ms: u32,
    /// Composition time offset: presentation time is `dts_ms + cts_ms`.
    pub cts_ms: i32,
    /// True for an IDR picture, from which a decoder can start.
    pub keyframe: bool,
    /// The NAL units, without length prefix or start code.
    pub nalus: Vec<Bytes>,
}

impl VideoFrame {
    /// Presentation timestamp in milliseconds (never negative).
    pub fn pts_ms(&self) -> u32 {
        (i64::from(self.dts_ms) + i64::from(self.cts_ms)).max(0) as u32
    }
}

/// AAC decoder configuration (an AudioSpecificConfig, ISO 14496-3 §1.6.2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AacConfig {
    /// Audio object type (2 = AAC-LC, 5 = SBR, 29 = PS).
    pub object_type: u8,
    /// Sampling frequency in Hz.
    pub sample_rate: u32,
    /// Channel configuration (1 = mono, 2 = stereo).
    pub channels: u8,
    /// The AudioSpecificConfig bytes as received, for decoders that want them verbatim.
    pub raw: Bytes,
}

/// One raw AAC frame (no ADTS header).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioFrame {
    /// Timestamp in milliseconds (the FLV tag timestamp).
    pub timestamp_ms: u32,
    /// The raw AAC access unit.
    pub data: Bytes,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_from_in_band_parameter_sets() {
        let sps = Bytes::from_static(&[0x67, 0x42, 0xe0, 0x1f, 0xda]);
        let pps = Bytes::from_static(&[0x68, 0xce, 0x3c, 0x80]);
        let config = AvcConfig::from_parameter_sets(vec![sps], vec![pps]).unwrap();
        assert_eq!(
            (config.profile, config.compatibility, config.level),
            (0x42, 0xe0, 0x1f)
        );
        assert!(
            AvcConfig::from_parameter_sets(vec![Bytes::from_static(&[0x68, 1, 2, 3])], vec![])
                .is_none()
        );
    }
}
