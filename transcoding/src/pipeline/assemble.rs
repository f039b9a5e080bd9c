//! Cuts a stream of PCM chunks of any length into fixed-size frames with exact timestamps.

use crate::frame::AudioFrame;

/// Accumulates PCM until a whole encoder frame is available.
///
/// Chunks arrive with their own timestamps; when one does not continue where the buffered
/// audio ends (loss, DTX, a new talk spurt) the partial frame is padded with silence and
/// released, so every output frame is contiguous and correctly stamped. Smaller offsets are
/// resampler buffering, not gaps, and the buffered timeline is kept.
pub(crate) struct FrameAssembler {
    frame_samples: usize,
    sample_rate: u32,
    channels: u8,
    pending: Vec<i16>,
    /// Timestamp of `pending[0]` (or of the next sample when `pending` is empty).
    pending_ts: u32,
    started: bool,
}

impl FrameAssembler {
    pub(crate) fn new(frame_samples: usize, sample_rate: u32, channels: u8) -> Self {
        Self {
            frame_samples,
            sample_rate,
            channels,
            pending: Vec::new(),
            pending_ts: 0,
            started: false,
        }
    }

    fn buffered_frames(&self) -> usize {
        self.pending.len() / self.channels as usize
    }

    /// Adds `chunk` (already at the output rate and channel count) and returns the complete frames.
    pub(crate) fn push(&mut self, chunk: &AudioFrame) -> Vec<AudioFrame> {
        let mut out = Vec::new();
        if chunk.samples.is_empty() {
            return out;
        }
        let continues = self.started && {
            // Resamplers buffer a few milliseconds, so chunk stamps mapped from the input clock
            // wobble around the contiguous position; only a jump of half a frame or more is a gap.
            let expected = self.pending_ts.wrapping_add(self.buffered_frames() as u32);
            let drift = (chunk.timestamp.wrapping_sub(expected) as i32).unsigned_abs() as usize;
            drift < self.frame_samples / 2
        };
        if !continues {
            if !self.pending.is_empty() {
                let missing = self.frame_samples - self.buffered_frames();
                self.pending
                    .extend(std::iter::repeat_n(0, missing * self.channels as usize));
                self.drain_into(&mut out);
            }
            self.pending.clear();
            self.pending_ts = chunk.timestamp;
            self.started = true;
        }
        self.pending.extend_from_slice(&chunk.samples);
        self.drain_into(&mut out);
        out
    }

    fn drain_into(&mut self, out: &mut Vec<AudioFrame>) {
        let block = self.frame_samples * self.channels as usize;
        while self.pending.len() >= block {
            let samples: Vec<i16> = self.pending.drain(..block).collect();
            out.push(AudioFrame {
                samples,
                sample_rate: self.sample_rate,
                channels: self.channels,
                timestamp: self.pending_ts,
            });
            self.pending_ts = self.pending_ts.wrapping_add(self.frame_samples as u32);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_and_pads_on_discontinuity() {
        let mut a = FrameAssembler::new(960, 48_000, 1);
        assert!(a
            .push(&AudioFrame::silence(480, 48_000, 1, 1000))
            .is_empty());
        let out = a.push(&AudioFrame::silence(960, 48_000, 1, 1480));
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].timestamp, 1000);
        // 480 samples pending from 1960; a jump releases them padded, then buffers the new chunk.
        let out = a.push(&AudioFrame::silence(960, 48_000, 1, 10_000));
        assert_eq!(
            out.iter().map(|f| f.timestamp).collect::<Vec<_>>(),
            vec![1960, 10_000]
        );
        assert!(out.iter().all(|f| f.frames() == 960));
    }
}
