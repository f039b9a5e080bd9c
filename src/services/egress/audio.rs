//! The audio of an egress: Opus RTP (48 kHz clock) → AAC-LC 48 kHz stereo raw access units,
//! one per 1024 samples, stamped on the same 48 kHz clock as the Opus input so that the
//! [`super::timeline::Timeline`] maps both alike. Lost packets (a sequence gap of a few) are
//! concealed so the AAC cadence holds.
//!
//! Runs on a codec worker, never on the async runtime.

use bifrons_rtmp::AacConfig;
use bifrons_transcoding::aac::AacEncoderConfig;
use bifrons_transcoding::pipeline::{AudioPacket, OpusToAac};
use bytes::Bytes;

use crate::media::RtpPacket;

/// AAC sample rate (Hz): the Opus clock, so no resampling.
pub const AAC_RATE: u32 = 48_000;
/// Opus samples per 20 ms packet at 48 kHz, for concealment.
const OPUS_PACKET: u32 = 960;
/// Largest gap (packets) concealed; beyond it the stream simply goes on.
const MAX_CONCEALED: u16 = 5;

/// Opus → AAC for one mountpoint.
pub struct AudioRoute {
    pipeline: OpusToAac,
    config: AacConfig,
    last_seq: Option<u16>,
    /// Frames that failed to decode.
    pub errors: u64,
}

impl AudioRoute {
    /// An AAC-LC encoder at `bitrate` bit/s, 48 kHz stereo. Errors when fdk-aac refuses.
    pub fn new(bitrate: u32) -> Result<Self, String> {
        let pipeline = OpusToAac::new(AacEncoderConfig {
            sample_rate: AAC_RATE,
            channels: 2,
            bitrate,
        })
        .map_err(|e| e.to_string())?;
        let config = AacConfig {
            object_type: 2,
            sample_rate: AAC_RATE,
            channels: 2,
            raw: Bytes::copy_from_slice(pipeline.audio_specific_config()),
        };
        Ok(Self {
            pipeline,
            config,
            last_seq: None,
            errors: 0,
        })
    }

    /// The AudioSpecificConfig for the FLV AAC sequence header.
    pub fn config(&self) -> &AacConfig {
        &self.config
    }

    /// Takes one Opus packet; appends the AAC units it completes (timestamps on the 48 kHz
    /// RTP clock) to `out`.
    pub fn push(&mut self, packet: &RtpPacket, out: &mut Vec<AudioPacket>) {
        if let Some(last) = self.last_seq {
            let gap = packet.sequence_number.wrapping_sub(last);
            if gap == 0 || gap > 0x8000 {
                return; // duplicate or late
            }
            for k in (1..gap.min(MAX_CONCEALED + 1)).rev() {
                let ts = packet.timestamp.wrapping_sub(u32::from(k) * OPUS_PACKET);
                if let Ok(units) = self.pipeline.lost(ts) {
                    out.extend(units);
                }
            }
        }
        self.last_seq = Some(packet.sequence_number);
        match self.pipeline.push(&packet.payload, packet.timestamp) {
            Ok(units) => out.extend(units),
            Err(e) => {
                if self.errors % 100 == 0 {
                    tracing::debug!(error = %e, "Opus packet not transcoded for egress");
                }
                self.errors += 1;
            }
        }
    }
}
