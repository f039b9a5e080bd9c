//! AAC from an RTMP publisher → Opus (48 kHz) for WebRTC viewers, on a codec worker
//! (`services::workers`), never on the async runtime. The ingest task queues raw AAC frames;
//! each 20 ms tick decodes, resamples and encodes what arrived and publishes the Opus packets
//! into the mountpoint with continuous timestamps.

use bifrons_transcoding::opus_codec::{OpusEncoderConfig, OpusFrameDuration};
use bifrons_transcoding::pipeline::AacToOpus;
use bytes::Bytes;

use crate::media::{MediaKind, RtpPacket};
use crate::services::streams::Mountpoint;
use crate::services::workers::{InputReceiver, JobStatus, MediaJob, QueueStats};

/// Payload type the mountpoint's Opus carries (viewers' own is set by their sink).
pub const OPUS_PT: u8 = 111;

/// Opus bitrate for transcoded AAC, bit/s.
const OPUS_BITRATE: i32 = 64_000;

/// What the ingest task hands the job.
pub enum AacInput {
    /// A new AudioSpecificConfig (the publisher's sequence header).
    Config {
        /// The ASC bytes.
        asc: Bytes,
        /// Sampling rate it announces, Hz.
        sample_rate: u32,
        /// Channels it announces.
        channels: u8,
    },
    /// One raw AAC access unit with its FLV timestamp (ms).
    Frame {
        /// The access unit.
        data: Bytes,
        /// FLV timestamp, ms.
        timestamp_ms: u32,
    },
}

/// The transcoding job of one RTMP publish.
pub struct AacToOpusJob {
    input: InputReceiver<AacInput>,
    pipeline: Option<(AacToOpus, u32)>,
    mountpoint: Mountpoint,
    ssrc: u32,
    seq: u16,
    /// Frames that could not be decoded (logged once per 100).
    errors: u64,
}

impl AacToOpusJob {
    /// A job reading `input` and publishing Opus into `mountpoint` as SSRC `ssrc`.
    pub fn new(input: InputReceiver<AacInput>, mountpoint: Mountpoint, ssrc: u32) -> Self {
        Self {
            input,
            pipeline: None,
            mountpoint,
            ssrc,
            seq: rand::random(),
            errors: 0,
        }
    }

    fn handle(&mut self, item: AacInput) {
        match item {
            AacInput::Config {
                asc,
                sample_rate,
                channels,
            } => {
                let config = OpusEncoderConfig {
                    channels: channels.clamp(1, 2),
                    sample_rate: bifrons_transcoding::opus_codec::OPUS_RATE,
                    bitrate: OPUS_BITRATE,
                    frame: OpusFrameDuration::Ms20,
                    fec: false,
                    dtx: false,
                    expected_loss_percent: 0,
                    complexity: 5,
                };
                match AacToOpus::new(&asc, config) {
                    Ok(p) => self.pipeline = Some((p, sample_rate.max(1))),
                    Err(e) => {
                        tracing::warn!(error = %e, "AAC configuration refused; audio dropped");
                        self.pipeline = None;
                    }
                }
            }
            AacInput::Frame { data, timestamp_ms } => {
                let Some((pipeline, rate)) = &mut self.pipeline else {
                    // AAC before its sequence header cannot be decoded.
                    self.errors += 1;
                    return;
                };
                let ts = (u64::from(timestamp_ms) * u64::from(*rate) / 1000) as u32;
                match pipeline.push(&data, ts) {
                    Ok(packets) => {
                        for p in packets {
                            self.seq = self.seq.wrapping_add(1);
                            self.mountpoint.publish(
                                MediaKind::Audio,
                                RtpPacket {
                                    payload_type: OPUS_PT,
                                    sequence_number: self.seq,
                                    timestamp: p.timestamp,
                                    ssrc: self.ssrc,
                                    marker: false,
                                    payload: Bytes::from(p.payload),
                                },
                            );
                        }
                    }
                    Err(e) => {
                        if self.errors % 100 == 0 {
                            tracing::warn!(error = %e, "AAC frame not decoded");
                        }
                        self.errors += 1;
                    }
                }
            }
        }
    }
}

impl MediaJob for AacToOpusJob {
    fn tick(&mut self, _now: std::time::Duration) -> JobStatus {
        for _ in 0..self.input.queued() {
            let Some(item) = self.input.try_recv() else {
                break;
            };
            self.handle(item);
        }
        JobStatus::Continue
    }

    fn queues(&self) -> Vec<QueueStats> {
        vec![self.input.stats()]
    }

    fn name(&self) -> &str {
        "aac→opus"
    }
}
