//! The MPEG-4 AudioSpecificConfig (ISO 14496-3 §1.6.2.1), as sent in RTMP's AAC sequence header.

use crate::error::{Result, TranscodeError};

/// Sampling frequencies indexed by `samplingFrequencyIndex`.
const RATES: [u32; 13] = [
    96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
];

/// The fields of an AudioSpecificConfig that Bifrons acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioSpecificConfig {
    /// Audio object type (2 = AAC-LC).
    pub object_type: u8,
    /// Sampling rate in Hz.
    pub sample_rate: u32,
    /// Channel configuration (1 = mono, 2 = stereo).
    pub channels: u8,
}

impl AudioSpecificConfig {
    /// Parses the leading fields; trailing extension data is left to the decoder.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let mut bits = Bits { bytes, pos: 0 };
        let mut object_type = bits.read(5)? as u8;
        if object_type == 31 {
            object_type = 32 + bits.read(6)? as u8;
        }
        let index = bits.read(4)? as usize;
        let sample_rate = if index == 15 {
            bits.read(24)?
        } else {
            *RATES
                .get(index)
                .ok_or_else(|| bad(format!("sampling frequency index {index}")))?
        };
        let channels = bits.read(4)? as u8;
        if sample_rate == 0 {
            return Err(bad("sample rate 0"));
        }
        Ok(Self {
            object_type,
            sample_rate,
            channels,
        })
    }

    /// The two-byte AAC-LC config for a rate from the standard table and 1-7 channels.
    pub fn lc_bytes(sample_rate: u32, channels: u8) -> Result<[u8; 2]> {
        let index = RATES
            .iter()
            .position(|&r| r == sample_rate)
            .ok_or_else(|| TranscodeError::Unsupported(format!("AAC at {sample_rate} Hz")))?;
        let v: u16 = (2 << 11) | ((index as u16) << 7) | ((channels as u16 & 0x0F) << 3);
        Ok(v.to_be_bytes())
    }
}

fn bad(reason: impl ToString) -> TranscodeError {
    TranscodeError::malformed("AudioSpecificConfig", reason)
}

struct Bits<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Bits<'_> {
    fn read(&mut self, n: usize) -> Result<u32> {
        let mut v = 0u32;
        for _ in 0..n {
            let byte = *self
                .bytes
                .get(self.pos / 8)
                .ok_or_else(|| bad("truncated"))?;
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
        assert!(AudioSpecificConfig::parse(&[0x12]).is_err());
        assert!(AudioSpecificConfig::parse(&[0x16, 0x80]).is_err());
    }
}
