//! G.711 μ-law (PCMU) and A-law (PCMA), table-driven: the one implementation in Bifrons (the
//! SIP crate re-exports this module). Pure Rust, built without any codec feature.
//!
//! G.711 quantises 14-bit (μ-law) or 13-bit (A-law) linear samples, so the encoder tables are
//! indexed by the 16-bit sample shifted down to that width: one lookup per sample, no branches.
//! The tables are computed at compile time from the segment rules of ITU-T G.711.

use crate::error::{Result, TranscodeError};
use crate::frame::AudioFrame;

/// G.711's only sample rate, in Hz (also its RTP clock rate, RFC 3551 §4.5.14).
pub const G711_RATE: u32 = 8_000;

/// Which G.711 companding law.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum G711Law {
    /// μ-law, RTP payload type 0 (PCMU).
    Mu,
    /// A-law, RTP payload type 8 (PCMA).
    A,
}

impl G711Law {
    /// The static RTP payload type of this law.
    pub fn payload_type(self) -> u8 {
        match self {
            G711Law::Mu => 0,
            G711Law::A => 8,
        }
    }
}

/// μ-law code for a 14-bit two's-complement sample.
const fn ulaw_from_14bit(sample: i32) -> u8 {
    // Segment upper bounds after the +33 bias: each segment doubles the step size.
    const ENDS: [i32; 8] = [0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF];
    let (mut mag, mask) = if sample < 0 {
        (-sample, 0x7F)
    } else {
        (sample, 0xFF)
    };
    if mag > 8159 {
        mag = 8159;
    }
    mag += 33;
    let mut seg = 0;
    while seg < 8 && mag > ENDS[seg] {
        seg += 1;
    }
    if seg >= 8 {
        // Beyond the last segment: the largest code of this sign.
        return 0x7F ^ mask;
    }
    let code = ((seg as i32) << 4) | ((mag >> (seg + 1)) & 0x0F);
    (code as u8) ^ mask
}

/// A-law code for a 13-bit two's-complement sample.
const fn alaw_from_13bit(sample: i32) -> u8 {
    const ENDS: [i32; 8] = [0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF];
    // One's-complement magnitude for negatives keeps the two halves symmetric around zero.
    let (mag, mask) = if sample >= 0 {
        (sample, 0xD5)
    } else {
        (-sample - 1, 0x55)
    };
    let mut seg = 0;
    while seg < 8 && mag > ENDS[seg] {
        seg += 1;
    }
    if seg >= 8 {
        return 0x7F ^ mask;
    }
    let step_shift = if seg < 2 { 1 } else { seg };
    let code = ((seg as i32) << 4) | ((mag >> step_shift) & 0x0F);
    (code as u8) ^ mask
}

const fn ulaw_to_linear(code: u8) -> i16 {
    let u = !code;
    let mut t = (((u & 0x0F) as i32) << 3) + 0x84;
    t <<= (u & 0x70) >> 4;
    (if u & 0x80 != 0 { 0x84 - t } else { t - 0x84 }) as i16
}

const fn alaw_to_linear(code: u8) -> i16 {
    let a = code ^ 0x55;
    let mut t = ((a & 0x0F) as i32) << 4;
    let seg = (a & 0x70) >> 4;
    match seg {
        0 => t += 8,
        1 => t += 0x108,
        _ => {
            t += 0x108;
            t <<= seg - 1;
        }
    }
    (if a & 0x80 != 0 { t } else { -t }) as i16
}

static ULAW_ENCODE: [u8; 16384] = {
    let mut table = [0u8; 16384];
    let mut i = 0;
    while i < 16384 {
        table[i] = ulaw_from_14bit(i as i32 - 8192);
        i += 1;
    }
    table
};

static ALAW_ENCODE: [u8; 8192] = {
    let mut table = [0u8; 8192];
    let mut i = 0;
    while i < 8192 {
        table[i] = alaw_from_13bit(i as i32 - 4096);
        i += 1;
    }
    table
};

static ULAW_DECODE: [i16; 256] = {
    let mut table = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = ulaw_to_linear(i as u8);
        i += 1;
    }
    table
};

static ALAW_DECODE: [i16; 256] = {
    let mut table = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = alaw_to_linear(i as u8);
        i += 1;
    }
    table
};

/// Encodes one 16-bit linear sample with μ-law (PCMU).
#[inline]
pub fn ulaw_encode(sample: i16) -> u8 {
    ULAW_ENCODE[((sample >> 2) as i32 + 8192) as usize]
}

/// Encodes one 16-bit linear sample with A-law (PCMA).
#[inline]
pub fn alaw_encode(sample: i16) -> u8 {
    ALAW_ENCODE[((sample >> 3) as i32 + 4096) as usize]
}

/// Decodes one μ-law byte to a 16-bit linear sample (±32124 at full scale).
#[inline]
pub fn ulaw_decode(code: u8) -> i16 {
    ULAW_DECODE[code as usize]
}

/// Decodes one A-law byte to a 16-bit linear sample (±32256 at full scale).
#[inline]
pub fn alaw_decode(code: u8) -> i16 {
    ALAW_DECODE[code as usize]
}

/// Encodes `pcm` into `out` (cleared first); one byte per sample.
pub fn encode_into(law: G711Law, pcm: &[i16], out: &mut Vec<u8>) {
    out.clear();
    match law {
        G711Law::Mu => out.extend(pcm.iter().map(|&s| ulaw_encode(s))),
        G711Law::A => out.extend(pcm.iter().map(|&s| alaw_encode(s))),
    }
}

/// Decodes `payload` into `out` (cleared first); one sample per byte.
pub fn decode_into(law: G711Law, payload: &[u8], out: &mut Vec<i16>) {
    out.clear();
    match law {
        G711Law::Mu => out.extend(payload.iter().map(|&c| ulaw_decode(c))),
        G711Law::A => out.extend(payload.iter().map(|&c| alaw_decode(c))),
    }
}

/// Encodes an 8 kHz mono frame into a G.711 payload (one byte per sample).
///
/// Errors: [`TranscodeError::BadFrame`] for any other rate or channel count.
pub fn encode_frame(law: G711Law, frame: &AudioFrame) -> Result<Vec<u8>> {
    if frame.sample_rate != G711_RATE || frame.channels != 1 {
        return Err(TranscodeError::BadFrame(format!(
            "G.711 takes 8000 Hz mono, got {} Hz x{}",
            frame.sample_rate, frame.channels
        )));
    }
    let mut out = Vec::with_capacity(frame.samples.len());
    encode_into(law, &frame.samples, &mut out);
    Ok(out)
}

/// Decodes a G.711 payload (any length is valid) into an 8 kHz mono frame.
pub fn decode_frame(law: G711Law, payload: &[u8], timestamp: u32) -> AudioFrame {
    let mut samples = Vec::with_capacity(payload.len());
    decode_into(law, payload, &mut samples);
    AudioFrame {
        samples,
        sample_rate: G711_RATE,
        channels: 1,
        timestamp,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_code_points_match_g711() {
        // Silence codes and full-scale codes from the G.711 tables.
        assert_eq!(ulaw_encode(0), 0xFF);
        assert_eq!(alaw_encode(0), 0xD5);
        assert_eq!(ulaw_decode(0xFF), 0);
        assert_eq!(ulaw_decode(0x80), 32124);
        assert_eq!(ulaw_decode(0x00), -32124);
        assert_eq!(alaw_decode(0xD5), 8);
        assert_eq!(alaw_decode(0xAA), 32256);
        assert_eq!(alaw_decode(0x2A), -32256);
    }

    #[test]
    fn every_code_survives_decode_then_encode() {
        for code in 0..=255u8 {
            assert_eq!(alaw_encode(alaw_decode(code)), code, "A-law {code:#x}");
            let back = ulaw_encode(ulaw_decode(code));
            // μ-law has two codes for zero (0x7F and 0xFF): both decode to 0.
            if code != 0x7F {
                assert_eq!(back, code, "μ-law {code:#x}");
            }
        }
    }

    #[test]
    fn decode_is_monotonic_in_magnitude() {
        for law in [G711Law::Mu, G711Law::A] {
            let mut prev = i16::MIN;
            for s in (-32768i32..32768).step_by(7) {
                let mut enc = Vec::new();
                encode_into(law, &[s as i16], &mut enc);
                let mut dec = Vec::new();
                decode_into(law, &enc, &mut dec);
                assert!(dec[0] >= prev, "{law:?} not monotonic at {s}");
                prev = dec[0];
            }
        }
    }
}

#[cfg(test)]
mod quality_tests {
    use super::*;
    use crate::testutil::{sine, snr_db_exact, speech_like};

    fn round_trip(law: G711Law, pcm: &[i16]) -> Vec<i16> {
        let mut enc = Vec::new();
        encode_into(law, pcm, &mut enc);
        let mut dec = Vec::new();
        decode_into(law, &enc, &mut dec);
        dec
    }

    // The tone is 1020 Hz, the "1 kHz" test tone of ITU-T O.132: exactly 1000 Hz divides
    // 8 kHz, so it would hit the same 8 sample values forever and measure the quantiser at
    // 8 points only instead of across its range.
    #[test]
    fn round_trip_snr_is_at_least_35_db() {
        let tone = sine(1020.0, G711_RATE, 0.5, 0, 8000);
        let speech = speech_like(G711_RATE, 8000, 7);
        for law in [G711Law::Mu, G711Law::A] {
            for (name, pcm) in [("1 kHz sine", &tone), ("speech-like noise", &speech)] {
                let snr = snr_db_exact(pcm, &round_trip(law, pcm));
                eprintln!("{law:?} {name}: SNR {snr:.1} dB");
                assert!(snr >= 35.0, "{law:?} {name}: SNR {snr:.1} dB");
            }
        }
    }
}
