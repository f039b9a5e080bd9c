//! The stereo mix of spatial rooms: each voice panned by its position, summed in 32 bits,
//! then limited to 16 bits with a soft knee like the mono mix's
//! (`bifrons_transcoding::mixer`): below 80 % of full scale samples pass unchanged, above it
//! they are compressed along `1 − 1/(1 + x)`, which approaches full scale without reaching it
//! and, unlike a tanh, keeps following the wave far above full scale (the sum of several loud
//! voices): nothing wraps around, nothing flattens into a hard clip.

/// Level (fraction of full scale) where the limiter starts compressing.
const KNEE: f32 = 0.8;

/// Left and right gains of a voice at `position` (0 left … 50 centre … 100 right), as Janus'
/// AudioBridge pans: full level on the near side, falling linearly to silence on the far side
/// as the voice moves away from the centre.
pub fn pan_gains(position: u8) -> [f32; 2] {
    let p = f32::from(position.min(100));
    [((100.0 - p) / 50.0).min(1.0), (p / 50.0).min(1.0)]
}

/// Adds `pcm` (mono) at `gain`, panned by `pan`, into the interleaved stereo accumulator
/// (`sign` −1 takes it out again). Saturating: no sum of voices wraps.
pub(super) fn add_panned(acc: &mut [i32], pcm: &[i16], gain: f32, pan: [f32; 2], sign: i32) {
    let (l, r) = (gain * pan[0], gain * pan[1]);
    for (frame, &s) in acc.chunks_exact_mut(2).zip(pcm) {
        let s = f32::from(s);
        frame[0] = frame[0].saturating_add(sign * (s * l) as i32);
        frame[1] = frame[1].saturating_add(sign * (s * r) as i32);
    }
}

/// One accumulated sample (i16 scale, any magnitude) limited to 16 bits.
#[inline]
fn limit(sample: i32) -> i16 {
    let x = sample as f32 / 32768.0;
    let a = x.abs();
    let y = if a <= KNEE {
        a
    } else {
        // Slope 1 at the knee, then ever flatter; each step is monotonic in floating point.
        let room = 1.0 - KNEE;
        KNEE + room * (1.0 - 1.0 / (1.0 + (a - KNEE) / room))
    };
    (y * 32767.0).min(32767.0).copysign(x) as i16
}

/// The accumulator limited to 16 bits into `out` (see the module's doc).
pub(super) fn limit_into(acc: &[i32], out: &mut [i16]) {
    for (o, &a) in out.iter_mut().zip(acc) {
        *o = limit(a);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn quiet_samples_pass_and_loud_sums_are_compressed_below_full_scale() {
        assert_eq!(limit(0), 0);
        assert_eq!(limit(16_384), 16_383);
        assert_eq!(limit(-16_384), -16_383);
        // Three voices at 90 % of full scale summed: neither wrapped nor flattened.
        let (two, three) = (limit(2 * 29_490), limit(3 * 29_490));
        assert!(
            two > 31_000 && two < three && three < 32_767,
            "{two} {three}"
        );
        assert!(limit(-3 * 29_490) < -31_000 && limit(-3 * 29_490) > -32_767);
        assert!(limit(i32::MAX) >= 32_766);
        assert!(limit(i32::MIN) <= -32_766);
    }

    #[test]
    fn loud_voices_in_a_stereo_frame_keep_their_shape() {
        // Two loud voices at the centre, in phase: 1.8 × full scale at the peaks.
        let voice: Vec<i16> = (0..960)
            .map(|i| (29_490.0 * (2.0 * std::f32::consts::PI * i as f32 / 96.0).sin()) as i16)
            .collect();
        let mut acc = vec![0i32; 1920];
        for _ in 0..2 {
            add_panned(&mut acc, &voice, 1.0, pan_gains(50), 1);
        }
        let mut out = vec![0i16; 1920];
        limit_into(&acc, &mut out);
        for (o, &a) in out.iter().zip(&acc) {
            assert_eq!(o.signum() as i32, a.signum(), "no wrap-around: {a} → {o}");
        }
        // Above full scale a hard clip holds one value; the limiter keeps following the wave.
        let mut over: Vec<i16> = out
            .iter()
            .zip(&acc)
            .filter(|(_, &a)| a > 32_767)
            .map(|(&o, _)| o)
            .collect();
        over.sort_unstable();
        over.dedup();
        assert!(over.len() > 8, "{} levels above full scale", over.len());
        let peak = out.iter().map(|s| s.unsigned_abs()).max().unwrap();
        assert!(peak > 31_000, "still loud: {peak}");
    }

    proptest! {
        #[test]
        fn the_limiter_is_monotonic_and_odd(a in any::<i32>(), b in any::<i32>()) {
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            prop_assert!(limit(lo) <= limit(hi));
            if a != i32::MIN {
                prop_assert_eq!(limit(-a), -limit(a));
            }
        }
    }
}
