//! The worker job of a mailbox message: G.711 payloads from the caller's RTP → 48 kHz → Opus
//! 20 ms packets into the message's Ogg file, or an Opus caller's packets stored as they came
//! (decoded only to measure them), and the silence measure the answering machine stops on.
//! Runs on `services::workers`, never on the async runtime.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bifrons_transcoding::g711::{alaw_decode, ulaw_decode};
use bifrons_transcoding::opus_codec::{OpusDecoder, OpusEncoder, OpusEncoderConfig};
use bifrons_transcoding::resample::Resampler;
use bifrons_transcoding::AudioFrame;
use bytes::Bytes;
use tokio::sync::oneshot;

use crate::services::recording::RecorderSink;
use crate::services::workers::{InputReceiver, JobStatus, MediaJob, QueueStats};

/// G.711 clock, Hz.
const G711_RATE: u32 = 8_000;
/// Opus clock, Hz.
const OPUS_RATE: u32 = 48_000;
/// Samples of one 20 ms Opus frame at 48 kHz.
const OPUS_FRAME: usize = 960;
/// RMS (16-bit PCM) below which a 20 ms frame counts as silence (about -44 dBFS).
pub const SILENCE_RMS: f64 = 200.0;

/// What the answering machine hands the job.
#[derive(Debug)]
pub enum EncoderInput {
    /// One RTP payload of the caller: PCMU (payload type 0) or PCMA (8).
    G711 {
        /// RTP payload type.
        pt: u8,
        /// The payload (one byte per 8 kHz sample).
        payload: Vec<u8>,
    },
    /// One RTP payload of an Opus caller (RFC 7587, 48 kHz clock): written to the file as is.
    Opus {
        /// The Opus packet.
        payload: Vec<u8>,
    },
    /// The message is over: encode what is left, then say so.
    End(oneshot::Sender<()>),
}

/// Encodes a caller's G.711 (or stores their Opus) into the message's Ogg/Opus file.
pub struct MessageEncoder {
    input: InputReceiver<EncoderInput>,
    sink: RecorderSink,
    resampler: Resampler,
    encoder: OpusEncoder,
    /// Measures an Opus caller's packets (made at the first one).
    decoder: Option<OpusDecoder>,
    pcm: Vec<i16>,
    upsampled: Vec<i16>,
    ts: u32,
    /// Consecutive silent 20 ms frames (read by the answering machine).
    silent_frames: Arc<AtomicU32>,
}

impl MessageEncoder {
    /// A job reading `input`, writing to `sink`, counting silent frames in `silent_frames`.
    pub fn new(
        input: InputReceiver<EncoderInput>,
        sink: RecorderSink,
        silent_frames: Arc<AtomicU32>,
    ) -> Result<Self, bifrons_transcoding::TranscodeError> {
        Ok(Self {
            input,
            sink,
            resampler: Resampler::new(G711_RATE, OPUS_RATE, 1)?,
            encoder: OpusEncoder::new(OpusEncoderConfig {
                fec: false,
                expected_loss_percent: 0,
                ..OpusEncoderConfig::default()
            })?,
            decoder: None,
            pcm: Vec::with_capacity(160),
            upsampled: Vec::with_capacity(4 * OPUS_FRAME),
            ts: 0,
            silent_frames,
        })
    }

    fn take(&mut self, pt: u8, payload: &[u8]) {
        let decode = if pt == 8 { alaw_decode } else { ulaw_decode };
        self.pcm.clear();
        self.pcm.extend(payload.iter().map(|&b| decode(b)));
        if self.pcm.is_empty() {
            return;
        }
        self.measure_silence(&self.pcm);
        let frame = AudioFrame {
            samples: std::mem::take(&mut self.pcm),
            sample_rate: G711_RATE,
            channels: 1,
            timestamp: 0,
        };
        match self.resampler.process(&frame) {
            Ok(out) => self.upsampled.extend_from_slice(&out.samples),
            Err(e) => tracing::debug!(error = %e, "voicemail resampling"),
        }
        self.pcm = frame.samples;
        self.encode_ready(false);
    }

    /// Counts `pcm` (one packet) as silent or not.
    fn measure_silence(&self, pcm: &[i16]) {
        let energy: f64 = pcm.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
        let rms = (energy / pcm.len().max(1) as f64).sqrt();
        if rms < SILENCE_RMS {
            self.silent_frames.fetch_add(1, Ordering::Relaxed);
        } else {
            self.silent_frames.store(0, Ordering::Relaxed);
        }
    }

    /// An Opus caller's packet: decoded to measure silence and to know its length, then
    /// written as it came. A packet that does not decode is dropped (logged at debug).
    fn take_opus(&mut self, payload: &[u8]) {
        let decoder = match &mut self.decoder {
            Some(d) => d,
            None => match OpusDecoder::new(1) {
                Ok(d) => self.decoder.insert(d),
                Err(e) => {
                    tracing::debug!(error = %e, "voicemail Opus decoder");
                    return;
                }
            },
        };
        let samples = match decoder.decode(payload, self.ts) {
            Ok(frame) => frame.samples,
            Err(e) => {
                tracing::debug!(error = %e, "voicemail Opus packet dropped");
                return;
            }
        };
        self.measure_silence(&samples);
        self.sink.push(Bytes::copy_from_slice(payload), self.ts);
        self.ts = self.ts.wrapping_add(samples.len() as u32);
    }

    /// Encodes every whole 20 ms frame buffered (and, with `flush`, the rest padded).
    fn encode_ready(&mut self, flush: bool) {
        if flush && !self.upsampled.is_empty() {
            let rest = self.upsampled.len() % OPUS_FRAME;
            if rest > 0 {
                self.upsampled
                    .resize(self.upsampled.len() + OPUS_FRAME - rest, 0);
            }
        }
        let mut start = 0;
        while self.upsampled.len() - start >= OPUS_FRAME {
            let frame = AudioFrame {
                samples: self.upsampled[start..start + OPUS_FRAME].to_vec(),
                sample_rate: OPUS_RATE,
                channels: 1,
                timestamp: self.ts,
            };
            match self.encoder.encode(&frame) {
                Ok(packet) => {
                    self.sink.push(Bytes::copy_from_slice(packet), self.ts);
                }
                Err(e) => tracing::debug!(error = %e, "voicemail Opus encoding"),
            }
            self.ts = self.ts.wrapping_add(OPUS_FRAME as u32);
            start += OPUS_FRAME;
        }
        self.upsampled.drain(..start);
    }
}

impl MediaJob for MessageEncoder {
    fn tick(&mut self, _now: Duration) -> JobStatus {
        for _ in 0..self.input.queued() {
            let Some(item) = self.input.try_recv() else {
                break;
            };
            match item {
                EncoderInput::G711 { pt, payload } => self.take(pt, &payload),
                EncoderInput::Opus { payload } => self.take_opus(&payload),
                EncoderInput::End(done) => {
                    self.encode_ready(true);
                    let _ = done.send(());
                    return JobStatus::Done;
                }
            }
        }
        JobStatus::Continue
    }

    fn queues(&self) -> Vec<QueueStats> {
        vec![self.input.stats()]
    }

    fn name(&self) -> &str {
        "voicemail message"
    }
}
