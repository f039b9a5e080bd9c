//! Audio routes: Opus ⇄ G.711 (SIP legs) and AAC ⇄ Opus (RTMP ingest and egress).

use super::assemble::FrameAssembler;
use super::clock::ClockMap;
use super::AudioPacket;
use crate::aac::{AacDecoder, AacEncoder, AacEncoderConfig};
use crate::error::Result;
use crate::frame::AudioFrame;
use crate::g711::{self, G711Law, G711_RATE};
use crate::opus_codec::{OpusDecoder, OpusEncoder, OpusEncoderConfig, OPUS_RATE};
use crate::resample::Resampler;

/// Browser → PBX: Opus (48 kHz) to PCMU/PCMA (8 kHz), one G.711 packet per Opus packet.
pub struct OpusToG711 {
    law: G711Law,
    decoder: OpusDecoder,
    resampler: Resampler,
    clock: ClockMap,
    encoded: Vec<u8>,
}

impl OpusToG711 {
    /// A pipeline producing `law` payloads.
    pub fn new(law: G711Law) -> Result<Self> {
        Ok(Self {
            law,
            decoder: OpusDecoder::new(1)?,
            resampler: Resampler::new(OPUS_RATE, G711_RATE, 1)?,
            clock: ClockMap::new(OPUS_RATE, G711_RATE),
            encoded: Vec::new(),
        })
    }

    /// Transcodes one Opus payload with its 48 kHz RTP timestamp.
    pub fn push(&mut self, payload: &[u8], timestamp: u32) -> Result<Option<AudioPacket>> {
        let pcm = self.decoder.decode(payload, timestamp)?;
        self.emit(pcm)
    }

    /// Conceals a lost Opus packet that should have started at `timestamp`.
    pub fn lost(&mut self, timestamp: u32) -> Result<Option<AudioPacket>> {
        let pcm = self.decoder.conceal(timestamp)?;
        self.emit(pcm)
    }

    fn emit(&mut self, pcm: AudioFrame) -> Result<Option<AudioPacket>> {
        let narrow = self.resampler.process(&pcm)?;
        if narrow.samples.is_empty() {
            return Ok(None);
        }
        g711::encode_into(self.law, &narrow.samples, &mut self.encoded);
        Ok(Some(AudioPacket {
            payload: self.encoded.clone(),
            timestamp: self.clock.map(pcm.timestamp),
        }))
    }
}

/// PBX → browser: PCMU/PCMA (8 kHz) to Opus (48 kHz, mono, 20 ms by default).
pub struct G711ToOpus {
    law: G711Law,
    resampler: Resampler,
    clock: ClockMap,
    assembler: FrameAssembler,
    encoder: OpusEncoder,
}

impl G711ToOpus {
    /// A pipeline taking `law` payloads and encoding Opus with `opus` settings (mono).
    pub fn new(law: G711Law, opus: OpusEncoderConfig) -> Result<Self> {
        let opus = OpusEncoderConfig {
            channels: 1,
            ..opus
        };
        Ok(Self {
            law,
            resampler: Resampler::new(G711_RATE, OPUS_RATE, 1)?,
            clock: ClockMap::new(G711_RATE, OPUS_RATE),
            assembler: FrameAssembler::new(opus.frame.samples(), OPUS_RATE, 1),
            encoder: OpusEncoder::new(opus)?,
        })
    }

    /// Transcodes one G.711 payload (any packetisation) with its 8 kHz RTP timestamp.
    pub fn push(&mut self, payload: &[u8], timestamp: u32) -> Result<Vec<AudioPacket>> {
        let pcm = g711::decode_frame(self.law, payload, timestamp);
        let mut wide = self.resampler.process(&pcm)?;
        wide.timestamp = self.clock.map(timestamp);
        encode_frames(&mut self.assembler, &mut self.encoder, &wide)
    }
}

fn encode_frames(
    assembler: &mut FrameAssembler,
    encoder: &mut OpusEncoder,
    pcm: &AudioFrame,
) -> Result<Vec<AudioPacket>> {
    let mut out = Vec::new();
    for frame in assembler.push(pcm) {
        let payload = encoder.encode(&frame)?.to_vec();
        out.push(AudioPacket {
            payload,
            timestamp: frame.timestamp,
        });
    }
    Ok(out)
}

/// RTMP ingest → browsers: AAC (ASC + raw units) to Opus.
pub struct AacToOpus {
    decoder: AacDecoder,
    resampler: Option<Resampler>,
    clock: ClockMap,
    assembler: FrameAssembler,
    encoder: OpusEncoder,
    channels: u8,
}

impl AacToOpus {
    /// A pipeline for the stream described by `audio_specific_config`, producing Opus with
    /// `opus` settings (its channel count is the output's; AAC is up/down-mixed to it).
    pub fn new(audio_specific_config: &[u8], opus: OpusEncoderConfig) -> Result<Self> {
        let decoder = AacDecoder::new(audio_specific_config)?;
        let rate = decoder.config().sample_rate;
        let resampler = if rate == OPUS_RATE {
            None
        } else {
            Some(Resampler::new(rate, OPUS_RATE, opus.channels)?)
        };
        Ok(Self {
            decoder,
            resampler,
            clock: ClockMap::new(rate, OPUS_RATE),
            assembler: FrameAssembler::new(opus.frame.samples(), OPUS_RATE, opus.channels),
            encoder: OpusEncoder::new(opus)?,
            channels: opus.channels,
        })
    }

    /// Transcodes one raw AAC unit; `timestamp` is in the AAC sample-rate clock
    /// (RTMP's millisecond timestamps times rate/1000).
    pub fn push(&mut self, access_unit: &[u8], timestamp: u32) -> Result<Vec<AudioPacket>> {
        let pcm = self
            .decoder
            .decode(access_unit, timestamp)?
            .with_channels(self.channels);
        let mut wide = match &mut self.resampler {
            Some(r) => r.process(&pcm)?,
            None => pcm,
        };
        wide.timestamp = self.clock.map(timestamp);
        encode_frames(&mut self.assembler, &mut self.encoder, &wide)
    }
}

/// Browsers → RTMP egress: Opus to AAC-LC raw units (plus the ASC for the sequence header).
pub struct OpusToAac {
    decoder: OpusDecoder,
    resampler: Option<Resampler>,
    encoder: AacEncoder,
    clock: ClockMap,
}

impl OpusToAac {
    /// A pipeline producing AAC with `aac` settings.
    pub fn new(aac: AacEncoderConfig) -> Result<Self> {
        let resampler = if aac.sample_rate == OPUS_RATE {
            None
        } else {
            Some(Resampler::new(OPUS_RATE, aac.sample_rate, aac.channels)?)
        };
        Ok(Self {
            decoder: OpusDecoder::new(aac.channels)?,
            resampler,
            encoder: AacEncoder::new(aac)?,
            clock: ClockMap::new(OPUS_RATE, aac.sample_rate),
        })
    }

    /// The AudioSpecificConfig for the FLV AAC sequence header.
    pub fn audio_specific_config(&self) -> &[u8] {
        self.encoder.audio_specific_config()
    }

    /// Transcodes one Opus payload with its 48 kHz RTP timestamp; output timestamps are in
    /// the AAC sample-rate clock, one unit every 1024 samples.
    pub fn push(&mut self, payload: &[u8], timestamp: u32) -> Result<Vec<AudioPacket>> {
        let pcm = self.decoder.decode(payload, timestamp)?;
        self.encode(pcm)
    }

    /// Conceals a lost Opus packet so the AAC stream keeps its cadence.
    pub fn lost(&mut self, timestamp: u32) -> Result<Vec<AudioPacket>> {
        let pcm = self.decoder.conceal(timestamp)?;
        self.encode(pcm)
    }

    fn encode(&mut self, pcm: AudioFrame) -> Result<Vec<AudioPacket>> {
        let mapped = self.clock.map(pcm.timestamp);
        let mut pcm = match &mut self.resampler {
            Some(r) => r.process(&pcm)?,
            None => pcm,
        };
        pcm.timestamp = mapped;
        Ok(self
            .encoder
            .encode(&pcm)?
            .into_iter()
            .map(|p| AudioPacket {
                payload: p.data,
                timestamp: p.timestamp,
            })
            .collect())
    }
}
