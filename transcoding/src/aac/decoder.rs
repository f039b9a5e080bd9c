//! AAC decoding from AudioSpecificConfig + raw access units.

use fdk_aac::dec::{Decoder, Transport};

use super::asc::AudioSpecificConfig;
use crate::error::{Result, TranscodeError};
use crate::frame::AudioFrame;

/// Room for the largest frame the decoder may emit: 2048 samples (SBR) x 8 channels.
const PCM_CAPACITY: usize = 2048 * 8;

/// Decodes one AAC stream whose configuration arrived out of band.
pub struct AacDecoder {
    inner: Decoder,
    config: AudioSpecificConfig,
    pcm: Vec<i16>,
}

impl AacDecoder {
    /// Builds a decoder from the stream's AudioSpecificConfig (RTMP's AAC sequence header).
    pub fn new(audio_specific_config: &[u8]) -> Result<Self> {
        let config = AudioSpecificConfig::parse(audio_specific_config)?;
        if !matches!(config.object_type, 2 | 5 | 29) {
            return Err(TranscodeError::Unsupported(format!(
                "AAC object type {}",
                config.object_type
            )));
        }
        if !(1..=2).contains(&config.channels) {
            return Err(TranscodeError::Unsupported(format!(
                "AAC channel configuration {}",
                config.channels
            )));
        }
        let mut inner = Decoder::new(Transport::Raw);
        inner
            .config_raw(audio_specific_config)
            .map_err(|e| TranscodeError::malformed("AudioSpecificConfig", e))?;
        Ok(Self {
            inner,
            config,
            pcm: vec![0; PCM_CAPACITY],
        })
    }

    /// The parsed configuration.
    pub fn config(&self) -> &AudioSpecificConfig {
        &self.config
    }

    /// Decodes one raw access unit into PCM at the stream's rate and channel count.
    pub fn decode(&mut self, access_unit: &[u8], timestamp: u32) -> Result<AudioFrame> {
        if access_unit.is_empty() {
            return Err(TranscodeError::malformed("aac", "empty access unit"));
        }
        // `fill` reports how many bytes it took; a raw unit must go in whole.
        let taken = self
            .inner
            .fill(access_unit)
            .map_err(|e| TranscodeError::malformed("aac", e))?;
        if taken != access_unit.len() {
            return Err(TranscodeError::malformed(
                "aac",
                "access unit larger than the decoder's buffer",
            ));
        }
        let result = self.inner.decode_frame(&mut self.pcm);
        if let Err(e) = result {
            // Drop whatever the failed unit left buffered so the next unit starts clean.
            let _ = self.inner.decode_frame(&mut self.pcm);
            return Err(TranscodeError::malformed("aac", e));
        }
        let info = self.inner.stream_info();
        let channels = info.numChannels;
        let frames = info.frameSize;
        let rate = info.sampleRate;
        if !(1..=2).contains(&channels) || frames <= 0 || rate <= 0 {
            return Err(TranscodeError::malformed(
                "aac",
                format!("{channels} channels, {frames} samples"),
            ));
        }
        let n = (frames * channels) as usize;
        if n > self.pcm.len() {
            return Err(TranscodeError::malformed(
                "aac",
                "frame larger than expected",
            ));
        }
        Ok(AudioFrame {
            samples: self.pcm[..n].to_vec(),
            sample_rate: rate as u32,
            channels: channels as u8,
            timestamp,
        })
    }
}
