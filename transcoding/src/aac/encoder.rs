//! AAC-LC encoding to raw access units for RTMP egress.

use fdk_aac::enc::{AudioObjectType, BitRate, ChannelMode, Encoder, EncoderParams, Transport};

use super::AAC_FRAME_SAMPLES;
use crate::error::{Result, TranscodeError};
use crate::frame::AudioFrame;

/// How an AAC encoder is set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AacEncoderConfig {
    /// Input and output rate (44100 or 48000 are what RTMP servers expect).
    pub sample_rate: u32,
    /// 1 or 2.
    pub channels: u8,
    /// Constant bitrate in bits per second.
    pub bitrate: u32,
}

impl Default for AacEncoderConfig {
    fn default() -> Self {
        Self {
            sample_rate: 48_000,
            channels: 2,
            bitrate: 128_000,
        }
    }
}

/// One encoded access unit and its timestamp (in the encoder's sample rate).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AacPacket {
    /// A raw AAC access unit (no ADTS header), as an FLV AAC raw tag carries it.
    pub data: Vec<u8>,
    /// Position of the unit's first sample, in `sample_rate` units.
    pub timestamp: u32,
}

/// Buffers PCM into 1024-sample frames and encodes each to one AAC-LC access unit.
pub struct AacEncoder {
    inner: Encoder,
    config: AacEncoderConfig,
    asc: Vec<u8>,
    pending: Vec<i16>,
    out: Vec<u8>,
    next_ts: Option<u32>,
}

fn lib_err(e: fdk_aac::enc::EncoderError) -> TranscodeError {
    TranscodeError::codec("fdk-aac", e)
}

impl AacEncoder {
    /// Creates an AAC-LC encoder with raw (not ADTS) output.
    pub fn new(config: AacEncoderConfig) -> Result<Self> {
        let channels = match config.channels {
            1 => ChannelMode::Mono,
            2 => ChannelMode::Stereo,
            n => {
                return Err(TranscodeError::Unsupported(format!(
                    "AAC with {n} channels"
                )))
            }
        };
        let inner = Encoder::new(EncoderParams {
            bit_rate: BitRate::Cbr(config.bitrate),
            sample_rate: config.sample_rate,
            transport: Transport::Raw,
            channels,
            audio_object_type: AudioObjectType::Mpeg4LowComplexity,
        })
        .map_err(|e| TranscodeError::Unsupported(format!("AAC encoder: {e}")))?;
        let info = inner.info().map_err(lib_err)?;
        let asc = info.confBuf[..(info.confSize as usize).min(info.confBuf.len())].to_vec();
        let out = vec![0; (info.maxOutBufBytes as usize).max(8192)];
        Ok(Self {
            inner,
            config,
            asc,
            pending: Vec::new(),
            out,
            next_ts: None,
        })
    }

    /// The AudioSpecificConfig to send once before the access units (FLV AAC sequence header).
    pub fn audio_specific_config(&self) -> &[u8] {
        &self.asc
    }

    /// The configuration this encoder was built with.
    pub fn config(&self) -> &AacEncoderConfig {
        &self.config
    }

    /// Feeds PCM of any length; returns the access units completed by it (often one or none).
    pub fn encode(&mut self, frame: &AudioFrame) -> Result<Vec<AacPacket>> {
        if frame.sample_rate != self.config.sample_rate || frame.channels != self.config.channels {
            return Err(TranscodeError::BadFrame(format!(
                "AAC encoder takes {} Hz x{}, got {} Hz x{}",
                self.config.sample_rate, self.config.channels, frame.sample_rate, frame.channels
            )));
        }
        // Units are stamped from the first input onwards, one unit per 1024 samples; the
        // encoder's fixed priming delay is the same for every unit.
        self.next_ts.get_or_insert(frame.timestamp);
        self.pending.extend_from_slice(&frame.samples);
        let block = AAC_FRAME_SAMPLES * self.config.channels as usize;
        let mut packets = Vec::new();
        let mut offset = 0;
        while self.pending.len() - offset >= block {
            let mut input = &self.pending[offset..offset + block];
            while !input.is_empty() {
                let info = self.inner.encode(input, &mut self.out).map_err(lib_err)?;
                if info.input_consumed == 0 && info.output_size == 0 {
                    return Err(TranscodeError::codec("fdk-aac", "encoder made no progress"));
                }
                input = &input[info.input_consumed.min(input.len())..];
                if info.output_size > 0 {
                    let ts = self.next_ts.unwrap_or(0);
                    self.next_ts = Some(ts.wrapping_add(AAC_FRAME_SAMPLES as u32));
                    packets.push(AacPacket {
                        data: self.out[..info.output_size].to_vec(),
                        timestamp: ts,
                    });
                }
            }
            offset += block;
        }
        self.pending.drain(..offset);
        Ok(packets)
    }
}
