//! Signals and measurements shared by the crate's tests.

use rustfft::{num_complex::Complex, FftPlanner};

/// A sine of `freq` Hz at `amplitude` (fraction of full scale), `n` samples starting at sample `start`.
pub fn sine(freq: f32, rate: u32, amplitude: f32, start: usize, n: usize) -> Vec<i16> {
    (start..start + n)
        .map(|i| {
            let t = i as f32 / rate as f32;
            (amplitude * 32767.0 * (2.0 * std::f32::consts::PI * freq * t).sin()) as i16
        })
        .collect()
}

/// Deterministic speech-like noise: white noise shaped by a slow syllable-rate envelope and a
/// one-pole low-pass (most speech energy sits below 1 kHz).
pub fn speech_like(rate: u32, n: usize, seed: u64) -> Vec<i16> {
    let mut state = seed | 1;
    let mut lp = 0.0f32;
    (0..n)
        .map(|i| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let white = (state >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0;
            lp += 0.3 * (white - lp);
            let t = i as f32 / rate as f32;
            let envelope = 0.55 + 0.45 * (2.0 * std::f32::consts::PI * 4.0 * t).sin();
            (lp * envelope * 0.9 * 32767.0) as i16
        })
        .collect()
}

/// Frequency (Hz) of the strongest FFT bin of `x` (Hann window, parabolic interpolation).
pub fn dominant_frequency(x: &[i16], rate: u32) -> f32 {
    let spectrum = magnitude_spectrum(x);
    let (peak, _) = spectrum
        .iter()
        .enumerate()
        .skip(1)
        .max_by(|a, b| a.1.total_cmp(b.1))
        .expect("non-empty spectrum");
    let bin_hz = rate as f32 / x.len() as f32;
    if peak + 1 >= spectrum.len() {
        return peak as f32 * bin_hz;
    }
    let (a, b, c) = (
        spectrum[peak - 1].ln(),
        spectrum[peak].ln(),
        spectrum[peak + 1].ln(),
    );
    let offset = 0.5 * (a - c) / (a - 2.0 * b + c);
    (peak as f32 + offset) * bin_hz
}

/// Magnitudes of the first half of the Hann-windowed FFT of `x`.
pub fn magnitude_spectrum(x: &[i16]) -> Vec<f32> {
    let n = x.len();
    let mut buf: Vec<Complex<f32>> = x
        .iter()
        .enumerate()
        .map(|(i, &s)| {
            let w = 0.5 - 0.5 * (2.0 * std::f32::consts::PI * i as f32 / n as f32).cos();
            Complex::new(s as f32 * w, 0.0)
        })
        .collect();
    FftPlanner::new().plan_fft_forward(n).process(&mut buf);
    buf[..n / 2].iter().map(|c| c.norm() + 1e-9).collect()
}

/// Spectral magnitude around `freq` (max over ±2 bins), relative to the spectrum's peak, in dB.
pub fn relative_level_db(x: &[i16], rate: u32, freq: f32) -> f32 {
    let spectrum = magnitude_spectrum(x);
    let bin = (freq * x.len() as f32 / rate as f32).round() as usize;
    let around = spectrum[bin.saturating_sub(2)..(bin + 3).min(spectrum.len())]
        .iter()
        .cloned()
        .fold(0.0f32, f32::max);
    let peak = spectrum.iter().cloned().fold(0.0f32, f32::max);
    20.0 * (around / peak).log10()
}

/// Signal-to-noise ratio (dB) of `decoded` against `reference`, after shifting `decoded`
/// by the lag (0..=max_lag) that aligns them best and scaling by the least-squares gain, so
/// codec delay and level do not count as noise.
pub fn snr_db(reference: &[i16], decoded: &[i16], max_lag: usize) -> f32 {
    // Find the lag on a short window (cheap even in debug builds), then measure on everything.
    let window = 2048.min(reference.len());
    let correlation = |lag: usize| -> f64 {
        let d = &decoded[lag.min(decoded.len())..];
        let n = window.min(d.len());
        let rd: f64 = reference[..n]
            .iter()
            .zip(&d[..n])
            .map(|(&a, &b)| a as f64 * b as f64)
            .sum();
        let dd: f64 = d[..n].iter().map(|&b| b as f64 * b as f64).sum();
        if dd > 0.0 {
            rd / dd.sqrt()
        } else {
            0.0
        }
    };
    let coarse = (0..=max_lag)
        .max_by(|&a, &b| correlation(a).total_cmp(&correlation(b)))
        .unwrap_or(0);
    // Refine around the coarse lag on the full length: a one-sample error alone would cap a
    // 1 kHz tone's SNR near 18 dB.
    (coarse.saturating_sub(3)..=coarse + 3)
        .map(|lag| snr_at_lag(reference, decoded, lag))
        .fold(f32::MIN, f32::max)
}

fn snr_at_lag(reference: &[i16], decoded: &[i16], lag: usize) -> f32 {
    let n = reference.len().min(decoded.len().saturating_sub(lag));
    if n == 0 {
        return f32::MIN;
    }
    let r = &reference[..n];
    let d = &decoded[lag..lag + n];
    let rr: f64 = r.iter().map(|&a| a as f64 * a as f64).sum();
    let rd: f64 = r.iter().zip(d).map(|(&a, &b)| a as f64 * b as f64).sum();
    let dd: f64 = d.iter().map(|&b| b as f64 * b as f64).sum();
    let g = if dd > 0.0 { rd / dd } else { 0.0 };
    let noise: f64 = r
        .iter()
        .zip(d)
        .map(|(&a, &b)| (a as f64 - g * b as f64).powi(2))
        .sum();
    (10.0 * (rr / noise.max(1e-9)).log10()) as f32
}

/// Plain SNR (dB) with no alignment or gain: for codecs with neither delay nor gain (G.711).
pub fn snr_db_exact(reference: &[i16], decoded: &[i16]) -> f32 {
    let signal: f64 = reference.iter().map(|&a| a as f64 * a as f64).sum();
    let noise: f64 = reference
        .iter()
        .zip(decoded)
        .map(|(&a, &b)| (a as f64 - b as f64).powi(2))
        .sum();
    (10.0 * (signal / noise.max(1e-9)).log10()) as f32
}

/// Mean absolute difference (dB) between the energies of `reference` and `decoded` in
/// octave bands from 125 Hz to 8 kHz (after aligning by up to `max_lag` samples).
///
/// Perceptual codecs keep a signal's spectral envelope rather than its waveform, so for
/// noise-like input this is the meaningful fidelity measure: silence or a wrong rate shows up
/// as tens of dB, a faithful codec as one or two.
pub fn band_level_error_db(reference: &[i16], decoded: &[i16], rate: u32) -> f32 {
    let n = reference.len().min(decoded.len()).min(1 << 15);
    let n = 1 << (usize::BITS - 1 - n.leading_zeros());
    let a = magnitude_spectrum(&reference[..n]);
    let b = magnitude_spectrum(&decoded[..n]);
    let bin = |f: f32| ((f * n as f32 / rate as f32) as usize).min(n / 2);
    let mut edges = vec![125.0f32];
    while *edges.last().unwrap() < (rate as f32 / 2.0).min(8000.0) {
        edges.push(edges.last().unwrap() * 2.0);
    }
    let mut total = 0.0;
    let mut bands = 0;
    for w in edges.windows(2) {
        let (lo, hi) = (bin(w[0]), bin(w[1]));
        if hi <= lo {
            continue;
        }
        let ea: f32 = a[lo..hi].iter().map(|m| m * m).sum();
        let eb: f32 = b[lo..hi].iter().map(|m| m * m).sum();
        total += (10.0 * (ea / eb).log10()).abs();
        bands += 1;
    }
    total / bands.max(1) as f32
}
