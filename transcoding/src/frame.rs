//! `AudioFrame`: the one PCM type every audio step in the crate takes and gives.

use crate::error::{Result, TranscodeError};

/// A block of interleaved signed 16-bit PCM with its clock.
///
/// `timestamp` counts samples (per channel) at `sample_rate`, RTP-style: it wraps at 2^32,
/// so callers compare timestamps with wrapping arithmetic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioFrame {
    /// Interleaved samples: `samples.len() == frames() * channels`.
    pub samples: Vec<i16>,
    /// Samples per second per channel.
    pub sample_rate: u32,
    /// 1 (mono) or 2 (stereo).
    pub channels: u8,
    /// Position of the first sample, in `sample_rate` units, wrapping.
    pub timestamp: u32,
}

impl AudioFrame {
    /// Builds a frame, checking that the sample count fits the channel layout.
    pub fn new(samples: Vec<i16>, sample_rate: u32, channels: u8, timestamp: u32) -> Result<Self> {
        if channels == 0 || channels > 2 {
            return Err(TranscodeError::Unsupported(format!("{channels} channels")));
        }
        if sample_rate == 0 {
            return Err(TranscodeError::Unsupported("sample rate 0".into()));
        }
        if samples.len() % channels as usize != 0 {
            return Err(TranscodeError::BadFrame(format!(
                "{} samples do not divide into {channels} channels",
                samples.len()
            )));
        }
        Ok(Self {
            samples,
            sample_rate,
            channels,
            timestamp,
        })
    }

    /// A frame of digital silence lasting `frames` samples per channel.
    pub fn silence(frames: usize, sample_rate: u32, channels: u8, timestamp: u32) -> Self {
        Self {
            samples: vec![0; frames * channels as usize],
            sample_rate,
            channels,
            timestamp,
        }
    }

    /// Samples per channel.
    pub fn frames(&self) -> usize {
        self.samples.len() / self.channels.max(1) as usize
    }

    /// Duration in microseconds.
    pub fn duration_us(&self) -> u64 {
        self.frames() as u64 * 1_000_000 / self.sample_rate as u64
    }

    /// The samples as floats in [-1, 1), the form resamplers and mixers compute in.
    pub fn to_f32(&self) -> Vec<f32> {
        self.samples.iter().map(|&s| s as f32 / 32768.0).collect()
    }

    /// Timestamp of the sample just after this frame (where the next frame should start).
    pub fn end_timestamp(&self) -> u32 {
        self.timestamp.wrapping_add(self.frames() as u32)
    }
}

impl AudioFrame {
    /// The same audio with `channels` channels: stereo is averaged down to mono, mono is
    /// duplicated up to stereo.
    pub fn with_channels(&self, channels: u8) -> AudioFrame {
        if channels == self.channels {
            return self.clone();
        }
        let samples = if channels == 1 {
            self.samples
                .chunks_exact(2)
                .map(|p| ((p[0] as i32 + p[1] as i32) / 2) as i16)
                .collect()
        } else {
            self.samples.iter().flat_map(|&s| [s, s]).collect()
        };
        AudioFrame {
            samples,
            sample_rate: self.sample_rate,
            channels,
            timestamp: self.timestamp,
        }
    }
}

/// Converts a float sample in [-1, 1] to i16, saturating instead of wrapping.
#[cfg_attr(not(feature = "resample"), allow(dead_code))]
pub(crate) fn f32_to_i16(x: f32) -> i16 {
    (x * 32768.0).round().clamp(-32768.0, 32767.0) as i16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_rejects_odd_sample_count_for_stereo() {
        assert!(AudioFrame::new(vec![0; 3], 48_000, 2, 0).is_err());
        assert!(AudioFrame::new(vec![0; 4], 48_000, 3, 0).is_err());
        let f = AudioFrame::new(vec![0; 4], 48_000, 2, 10).unwrap();
        assert_eq!(f.frames(), 2);
        assert_eq!(f.end_timestamp(), 12);
    }

    #[test]
    fn f32_conversion_saturates() {
        assert_eq!(f32_to_i16(2.0), 32767);
        assert_eq!(f32_to_i16(-2.0), -32768);
        assert_eq!(f32_to_i16(0.5), 16384);
    }
}
