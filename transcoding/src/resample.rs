//! Streaming sample-rate conversion between the rates Bifrons meets (8/16/44.1/48 kHz...).
//!
//! rubato's FFT resampler works on fixed-size chunks and carries its overlap state from one
//! chunk to the next, so consecutive frames join without a click; this wrapper buffers
//! whatever does not fill a chunk and hands back everything produced so far.

use rubato::{FftFixedInOut, Resampler as _};

use crate::error::{Result, TranscodeError};
use crate::frame::{f32_to_i16, AudioFrame};

/// Rates the resampler accepts on either side.
pub const SUPPORTED_RATES: [u32; 7] = [8_000, 12_000, 16_000, 24_000, 32_000, 44_100, 48_000];

/// Converts a stream of frames from one rate to another, keeping state across frames.
pub struct Resampler {
    /// `None` when both rates are equal: frames pass through untouched.
    inner: Option<FftFixedInOut<f32>>,
    from: u32,
    to: u32,
    channels: u8,
    pending: Vec<Vec<f32>>,
    chunk_out: Vec<Vec<f32>>,
    next_ts: Option<u32>,
}

impl Resampler {
    /// Builds a resampler for `channels`-channel audio from `from` Hz to `to` Hz.
    pub fn new(from: u32, to: u32, channels: u8) -> Result<Self> {
        for rate in [from, to] {
            if !SUPPORTED_RATES.contains(&rate) {
                return Err(TranscodeError::Unsupported(format!(
                    "resampling at {rate} Hz"
                )));
            }
        }
        if channels == 0 || channels > 2 {
            return Err(TranscodeError::Unsupported(format!("{channels} channels")));
        }
        let inner = if from == to {
            None
        } else {
            // 10 ms chunks: small enough to add little latency, large enough for a cheap FFT.
            let chunk = from as usize / 100;
            Some(
                FftFixedInOut::<f32>::new(from as usize, to as usize, chunk, channels as usize)
                    .map_err(|e| TranscodeError::Unsupported(e.to_string()))?,
            )
        };
        let chunk_out = match &inner {
            Some(r) => vec![vec![0.0; r.output_frames_max()]; channels as usize],
            None => Vec::new(),
        };
        Ok(Self {
            inner,
            from,
            to,
            channels,
            pending: vec![Vec::new(); channels as usize],
            chunk_out,
            next_ts: None,
        })
    }

    /// Input rate.
    pub fn from_rate(&self) -> u32 {
        self.from
    }

    /// Output rate.
    pub fn to_rate(&self) -> u32 {
        self.to
    }

    /// Samples (at the output rate) by which output lags input.
    pub fn delay(&self) -> usize {
        self.inner.as_ref().map_or(0, |r| r.output_delay())
    }

    /// Feeds one frame and returns the output produced so far (possibly empty).
    ///
    /// The output timestamp continues from the first input's timestamp scaled to the output
    /// rate, so consecutive outputs are contiguous.
    pub fn process(&mut self, frame: &AudioFrame) -> Result<AudioFrame> {
        if frame.sample_rate != self.from || frame.channels != self.channels {
            return Err(TranscodeError::BadFrame(format!(
                "resampler takes {} Hz x{}, got {} Hz x{}",
                self.from, self.channels, frame.sample_rate, frame.channels
            )));
        }
        let ts = *self.next_ts.get_or_insert_with(|| {
            (frame.timestamp as u64 * self.to as u64 / self.from as u64) as u32
        });
        let Some(inner) = self.inner.as_mut() else {
            self.next_ts = Some(ts.wrapping_add(frame.frames() as u32));
            return Ok(AudioFrame {
                timestamp: ts,
                ..frame.clone()
            });
        };
        let ch = self.channels as usize;
        for (i, s) in frame.samples.iter().enumerate() {
            self.pending[i % ch].push(*s as f32 / 32768.0);
        }
        let mut out = Vec::new();
        let mut consumed = 0;
        while self.pending[0].len() - consumed >= inner.input_frames_next() {
            let need = inner.input_frames_next();
            let input: Vec<&[f32]> = self
                .pending
                .iter()
                .map(|c| &c[consumed..consumed + need])
                .collect();
            let (used, produced) = inner
                .process_into_buffer(&input, &mut self.chunk_out, None)
                .map_err(|e| TranscodeError::codec("rubato", e))?;
            consumed += used;
            for n in 0..produced {
                for c in 0..ch {
                    out.push(f32_to_i16(self.chunk_out[c][n]));
                }
            }
        }
        for c in &mut self.pending {
            c.drain(..consumed);
        }
        let produced = out.len() / ch;
        self.next_ts = Some(ts.wrapping_add(produced as u32));
        Ok(AudioFrame {
            samples: out,
            sample_rate: self.to,
            channels: self.channels,
            timestamp: ts,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{dominant_frequency, sine};

    /// Runs `pcm` through `r` in frames of `frame` samples and concatenates the output.
    fn stream(r: &mut Resampler, pcm: &[i16], rate: u32, frame: usize) -> Vec<i16> {
        let mut out = Vec::new();
        let mut expected_ts = None;
        for (i, chunk) in pcm.chunks_exact(frame).enumerate() {
            let f = AudioFrame::new(chunk.to_vec(), rate, 1, (i * frame) as u32).unwrap();
            let o = r.process(&f).unwrap();
            if let Some(ts) = expected_ts {
                assert_eq!(o.timestamp, ts, "output timestamps are contiguous");
            }
            expected_ts = Some(o.end_timestamp());
            out.extend_from_slice(&o.samples);
        }
        out
    }

    #[test]
    fn down_to_8k_and_back_keeps_1_khz_without_clicks() {
        let pcm = sine(1000.0, 48_000, 0.5, 0, 48_000 * 2);
        let mut down = Resampler::new(48_000, 8_000, 1).unwrap();
        let mut up = Resampler::new(8_000, 48_000, 1).unwrap();
        let narrow = stream(&mut down, &pcm, 48_000, 960);
        let back = stream(&mut up, &narrow, 8_000, 160);
        assert!(back.len() > 80_000);
        let f = dominant_frequency(&back[9600..9600 + 65536], 48_000);
        assert!((f - 1000.0).abs() <= 5.0, "dominant {f} Hz");
        // A 1 kHz sine at amplitude A moves at most 2*pi*1000/48000*A per sample (~0.13 A);
        // a discontinuity at a frame boundary would jump far more.
        let amplitude = 0.5 * 32767.0;
        let max_step = back[4800..]
            .windows(2)
            .map(|w| (w[1] as i32 - w[0] as i32).abs())
            .max()
            .unwrap();
        assert!(
            (max_step as f32) < 0.15 * amplitude,
            "largest sample step {max_step}"
        );
        // And the level survives: no frame dropped to silence.
        for block in back[4800..].chunks_exact(960) {
            let peak = block.iter().map(|s| s.unsigned_abs()).max().unwrap();
            assert!(peak as f32 > 0.9 * amplitude, "block peak {peak}");
        }
    }

    #[test]
    fn all_bridge_rates_convert_a_tone_both_ways() {
        for &(a, b) in &[
            (48_000, 16_000),
            (44_100, 48_000),
            (48_000, 44_100),
            (16_000, 8_000),
        ] {
            let pcm = sine(700.0, a, 0.5, 0, a as usize);
            let mut r = Resampler::new(a, b, 1).unwrap();
            let out = stream(&mut r, &pcm, a, a as usize / 50);
            let expected = b as usize * 96 / 100;
            assert!(
                out.len() >= expected - b as usize / 50,
                "{a}->{b}: {} samples",
                out.len()
            );
            let f = dominant_frequency(&out[out.len() - 4096..], b);
            assert!((f - 700.0).abs() <= 5.0, "{a}->{b}: dominant {f} Hz");
        }
    }

    #[test]
    fn wrong_rate_or_unsupported_rate_is_refused() {
        assert!(Resampler::new(48_000, 11_111, 1).is_err());
        let mut r = Resampler::new(48_000, 8_000, 1).unwrap();
        assert!(r.process(&AudioFrame::silence(160, 8_000, 1, 0)).is_err());
    }
}
