//! The test signal and what detects it: a one-second loop of a quiet 440 Hz tone with noise
//! (so the codecs work as on speech, not on digital silence), opened by a loud 1 kHz pulse of
//! 20 ms; the receiving side finds the pulse's onset to measure one-way delay.
//!
//! Both loops are made once at start: 50 PCMU frames of 160 bytes and 50 Opus packets, so
//! sending a frame is a slice copy, never an encode.

use bifrons_sip::g711;

/// Frame duration (ms) of both legs.
pub const FRAME_MS: u32 = 20;
/// Frames in one loop: one pulse per second.
pub const LOOP_FRAMES: usize = 50;
/// Peak of the pulse (i16 full scale 32767).
pub const PULSE_PEAK: f64 = 24_000.0;
/// Peak of the background (tone plus noise).
#[cfg(test)]
pub const BACKGROUND_PEAK: f64 = 2_500.0;
/// A sample at or above this magnitude is the pulse: far above the background and its codec
/// noise, half the pulse's peak.
pub const ONSET_THRESHOLD: u16 = 12_000;

/// One second of the test signal at `rate` Hz: the pulse fills the first 20 ms.
pub fn loop_pcm(rate: u32) -> Vec<i16> {
    let n = rate as usize * LOOP_FRAMES * FRAME_MS as usize / 1000;
    let pulse = rate as usize * FRAME_MS as usize / 1000;
    let mut seed: u32 = 0x1234_5678;
    (0..n)
        .map(|i| {
            let t = i as f64 / rate as f64;
            // xorshift noise, deterministic
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            let noise = (seed as f64 / u32::MAX as f64 - 0.5) * 1000.0;
            let tone = (2.0 * std::f64::consts::PI * 440.0 * t).sin() * 2000.0;
            let v = if i < pulse {
                (2.0 * std::f64::consts::PI * 1000.0 * t).sin() * PULSE_PEAK
            } else {
                tone + noise
            };
            v.round() as i16
        })
        .collect()
}

/// The loop as 50 PCMU (μ-law) payloads of 160 bytes, 8 kHz.
pub fn ulaw_loop() -> Vec<Vec<u8>> {
    loop_pcm(8000)
        .chunks(160)
        .map(|c| c.iter().map(|&s| g711::ulaw_encode(s)).collect())
        .collect()
}

/// The loop as 50 Opus packets (48 kHz mono, 20 ms, 32 kbit/s, VoIP), taken from a second
/// pass of the encoder so that its state at the loop's end leads into its start, plus the
/// delay (s) the encoder itself puts between a pulse entering and its onset in decoded audio
/// (its look-ahead), to be subtracted from measured delays.
///
/// Errors: the Opus library refusing the settings.
pub fn opus_loop() -> Result<(Vec<Vec<u8>>, f64), opus::Error> {
    let mut packets = encode_twice(&loop_pcm(48_000))?;
    // Decode both passes at 8 kHz; the onset in the second pass is the encoder's delay.
    let mut dec = opus::Decoder::new(8000, opus::Channels::Mono)?;
    let mut pcm8 = vec![0i16; 160];
    let mut det = OnsetDetector::new(8000, 200);
    let mut calibration = 0.0;
    for (i, p) in packets.iter().enumerate() {
        let n = dec.decode(p, &mut pcm8, false)?;
        if i == LOOP_FRAMES {
            det.arm();
        }
        if let Some(at) = det.feed(&pcm8[..n]) {
            if i >= LOOP_FRAMES {
                calibration = ((i - LOOP_FRAMES) * 160 + at) as f64 / 8000.0;
                break;
            }
        }
    }
    Ok((packets.split_off(LOOP_FRAMES), calibration))
}

/// `pcm` (48 kHz mono, whole 20 ms frames) as Opus packets (32 kbit/s, VoIP), one per frame,
/// from the encoder's second pass over it, so that the loop joins up when replayed.
///
/// Errors: the Opus library refusing the settings.
pub fn opus_loop_of(pcm: &[i16]) -> Result<Vec<Vec<u8>>, opus::Error> {
    let mut packets = encode_twice(pcm)?;
    Ok(packets.split_off(packets.len() / 2))
}

/// Both passes of one encoder over `pcm` (48 kHz mono, 20 ms frames, 32 kbit/s, VoIP).
fn encode_twice(pcm: &[i16]) -> Result<Vec<Vec<u8>>, opus::Error> {
    let mut enc = opus::Encoder::new(48_000, opus::Channels::Mono, opus::Application::Voip)?;
    enc.set_bitrate(opus::Bitrate::Bits(32_000))?;
    let mut packets = Vec::with_capacity(2 * pcm.len() / 960);
    let mut out = [0u8; 1500];
    for _ in 0..2 {
        for frame in pcm.chunks(960) {
            let n = enc.encode(frame, &mut out)?;
            packets.push(out[..n].to_vec());
        }
    }
    Ok(packets)
}

/// Finds pulse onsets in decoded audio: the first sample at or above [`ONSET_THRESHOLD`]
/// after at least `rearm_ms` of quieter samples (or after [`arm`](Self::arm)).
#[derive(Debug, Clone)]
pub struct OnsetDetector {
    quiet_needed: u32,
    quiet: u32,
}

impl OnsetDetector {
    /// A detector for audio at `rate` Hz that needs `rearm_ms` of quiet between two onsets.
    pub fn new(rate: u32, rearm_ms: u32) -> Self {
        let quiet_needed = rate / 1000 * rearm_ms;
        Self {
            quiet_needed,
            quiet: 0,
        }
    }

    /// Treats what came before as quiet: the next loud sample is an onset.
    pub fn arm(&mut self) {
        self.quiet = self.quiet_needed;
    }

    /// Feeds one frame of samples; returns the index of the onset in it, if one starts here.
    pub fn feed(&mut self, samples: &[i16]) -> Option<usize> {
        for (i, s) in samples.iter().enumerate() {
            if s.unsigned_abs() >= ONSET_THRESHOLD {
                let onset = self.quiet >= self.quiet_needed;
                self.quiet = 0;
                if onset {
                    return Some(i);
                }
            } else {
                self.quiet = self.quiet.saturating_add(1);
            }
        }
        None
    }
}

/// μ-law payload to 16-bit samples, into `out` (cleared first).
pub fn ulaw_decode_into(payload: &[u8], out: &mut Vec<i16>) {
    out.clear();
    out.extend(payload.iter().map(|&b| g711::ulaw_decode(b)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn onset_is_found_at_its_sample_and_only_once_per_pulse() {
        let pcm = loop_pcm(8000);
        let mut det = OnsetDetector::new(8000, 200);
        det.arm();
        let mut onsets = Vec::new();
        for (f, frame) in pcm.chunks(160).chain(pcm.chunks(160)).enumerate() {
            if let Some(i) = det.feed(frame) {
                onsets.push(f * 160 + i);
            }
        }
        assert_eq!(onsets.len(), 2, "{onsets:?}");
        // sin(2π·1000·t)·24000 first reaches 12000 at t = asin(0.5)/(2π·1000) ≈ 0.083 ms.
        assert!(onsets[0] <= 2, "{onsets:?}");
        assert_eq!(onsets[1] - onsets[0], 8000);
    }

    #[test]
    fn background_never_triggers() {
        let pcm = loop_pcm(8000);
        let mut det = OnsetDetector::new(8000, 200);
        det.arm();
        assert_eq!(det.feed(&pcm[160..]), None);
        assert!(pcm[160..]
            .iter()
            .all(|s| (s.unsigned_abs() as f64) <= BACKGROUND_PEAK));
    }

    #[test]
    fn onset_survives_mu_law() {
        let frames = ulaw_loop();
        assert_eq!(frames.len(), LOOP_FRAMES);
        assert!(frames.iter().all(|f| f.len() == 160));
        let mut pcm = Vec::new();
        ulaw_decode_into(&frames[0], &mut pcm);
        let mut det = OnsetDetector::new(8000, 200);
        det.arm();
        assert!(det.feed(&pcm).unwrap() <= 2);
    }

    #[test]
    fn opus_loop_has_one_packet_per_frame_and_a_small_encoder_delay() {
        let (packets, delay) = opus_loop().unwrap();
        assert_eq!(packets.len(), LOOP_FRAMES);
        // The Opus look-ahead is 6.5 ms (RFC 6716 §2); the onset lands there, give or take.
        assert!((0.002..0.015).contains(&delay), "encoder delay {delay}");
    }

    #[test]
    fn an_early_sample_does_not_count_without_quiet_before_it() {
        let mut det = OnsetDetector::new(8000, 10);
        let loud = [20_000i16; 40];
        assert_eq!(det.feed(&loud), None, "not armed, no quiet yet");
        assert_eq!(det.feed(&[0; 80]), None);
        assert_eq!(det.feed(&loud), Some(0));
    }
}
