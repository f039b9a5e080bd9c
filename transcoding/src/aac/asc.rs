//! The MPEG-4 AudioSpecificConfig (ISO/IEC 14496-3 §1.6.2.1), as sent in RTMP's AAC sequence
//! header and in the `config` of an SDP `mpeg4-generic` format.
//!
//! This is the one parser of it in Bifrons: the RTMP crate reads FLV sequence headers with it
//! and the AAC decoder checks its input with it.

use crate::error::{Result, TranscodeError};

/// Sampling frequencies in Hz, indexed by `samplingFrequencyIndex` (ISO/IEC 14496-3 Table 1.18).
const RATES: [u32; 13] = [
    96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
];

/// Why bytes are not a usable AudioSpecificConfig.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AscError {
    /// The bytes end inside the leading fields.
    #[error("truncated AudioSpecificConfig: need {needed} bytes, have {available}")]
    Truncated {
        /// Bytes needed to read the field that was cut.
        needed: usize,
        /// Bytes that were there.
        available: usize,
    },
    /// `samplingFrequencyIndex` 13 or 14, which ISO/IEC 14496-3 reserves.
    #[error("reserved AAC sampling frequency index {0}")]
    ReservedFrequencyIndex(u8),
    /// An explicit (24-bit) sampling frequency of 0 Hz.
    #[error("AAC sampling frequency 0 Hz")]
    ZeroSampleRate,
}

impl From<AscError> for TranscodeError {
    fn from(e: AscError) -> Self {
        TranscodeError::malformed("AudioSpecificConfig", e)
    }
}

/// The fields of an AudioSpecificConfig that Bifrons acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioSpecificConfig {
    /// Audio object type (2 = AAC-LC, 5 = SBR, 29 = PS); escaped types (31 + 6 bits) are
    /// returned as 32 and up.
    pub object_type: u8,
    /// Sampling rate in Hz.
    pub sample_rate: u32,
    /// `channelConfiguration` (1 = mono, 2 = stereo; 0 = defined in a program config element).
    pub channels: u8,
}

impl AudioSpecificConfig {
    /// Parses the leading fields (object type, sampling frequency, channel configuration);
    /// trailing extension data is left to the decoder, which gets the bytes verbatim.
    ///
    /// Errors: [`AscError`] for cut or reserved fields. It converts into
    /// [`TranscodeError::Malformed`] with `?`.
    pub fn parse(bytes: &[u8]) -> std::result::Result<Self, AscError> {
        let mut bits = Bits { bytes, pos: 0 };
        let mut object_type = bits.read(5)? as u8;
        if object_type == 31 {
            object_type = 32 + bits.read(6)? as u8;
        }
        let index = bits.read(4)? as u8;
        let sample_rate = match index {
            15 => bits.read(24)?,
            _ => *RATES
                .get(usize::from(index))
                .ok_or(AscError::ReservedFrequencyIndex(index))?,
        };
        let channels = bits.read(4)? as u8;
        if sample_rate == 0 {
            return Err(AscError::ZeroSampleRate);
        }
        Ok(Self {
            object_type,
            sample_rate,
            channels,
        })
    }

    /// The two-byte AAC-LC config for a rate from the standard table and 1-7 channels.
    ///
    /// Errors: [`TranscodeError::Unsupported`] for a rate outside the table.
    pub fn lc_bytes(sample_rate: u32, channels: u8) -> Result<[u8; 2]> {
        let index = RATES
            .iter()
            .position(|&r| r == sample_rate)
            .ok_or_else(|| TranscodeError::Unsupported(format!("AAC at {sample_rate} Hz")))?;
        let v: u16 = (2 << 11) | ((index as u16) << 7) | ((channels as u16 & 0x0F) << 3);
        Ok(v.to_be_bytes())
    }
}

/// MSB-first bit reader over the config bytes.
struct Bits<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Bits<'_> {
    fn read(&mut self, n: usize) -> std::result::Result<u32, AscError> {
        let mut v = 0u32;
        for _ in 0..n {
            let byte = *self.bytes.get(self.pos / 8).ok_or(AscError::Truncated {
                needed: self.pos / 8 + 1,
                available: self.bytes.len(),
            })?;
            v = (v << 1) | ((byte >> (7 - self.pos % 8)) & 1) as u32;
            self.pos += 1;
        }
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_usual_rtmp_configs() {
        // 0x12 0x10: AAC-LC, 44.1 kHz, stereo (what OBS sends by default).
        let asc = AudioSpecificConfig::parse(&[0x12, 0x10]).unwrap();
        assert_eq!(
            asc,
            AudioSpecificConfig {
                object_type: 2,
                sample_rate: 44100,
                channels: 2
            }
        );
        assert_eq!(
            AudioSpecificConfig::lc_bytes(44100, 2).unwrap(),
            [0x12, 0x10]
        );
        assert_eq!(
            AudioSpecificConfig::lc_bytes(48000, 1).unwrap(),
            [0x11, 0x88]
        );
    }

    #[test]
    fn cut_reserved_and_zero_rate_configs_are_refused() {
        assert_eq!(
            AudioSpecificConfig::parse(&[0x12]),
            Err(AscError::Truncated {
                needed: 2,
                available: 1
            })
        );
        // Index 13 is reserved.
        assert_eq!(
            AudioSpecificConfig::parse(&[0x16, 0x80]),
            Err(AscError::ReservedFrequencyIndex(13))
        );
        // Index 15 with an explicit 24-bit rate of 0.
        assert_eq!(
            AudioSpecificConfig::parse(&[0x17, 0x80, 0x00, 0x00, 0x10]),
            Err(AscError::ZeroSampleRate)
        );
        assert!(matches!(
            TranscodeError::from(AscError::ZeroSampleRate),
            TranscodeError::Malformed {
                codec: "AudioSpecificConfig",
                ..
            }
        ));
    }

    #[test]
    fn escaped_object_type_and_explicit_rate_are_read() {
        // 11111 000010 1111 <24-bit 22050> 0001 : object type 31+6 bits (34), explicit rate.
        let mut bits: u64 = 0b11111;
        bits = (bits << 6) | 2;
        bits = (bits << 4) | 15;
        bits = (bits << 24) | 22050;
        bits = (bits << 4) | 1;
        // 43 bits, left-aligned in 6 bytes.
        let bytes = (bits << (48 - 43)).to_be_bytes();
        let asc = AudioSpecificConfig::parse(&bytes[2..]).unwrap();
        assert_eq!(
            (asc.object_type, asc.sample_rate, asc.channels),
            (34, 22050, 1)
        );
    }
}
