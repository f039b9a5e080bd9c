//! Clipping protection for mixed audio.
//!
//! Summing several loud talkers easily exceeds full scale; hard clipping would add harsh
//! distortion. Below the knee samples pass unchanged; above it they are compressed with a
//! tanh curve that approaches, but never reaches, full scale.

/// Level (fraction of full scale) where compression starts.
const KNEE: f32 = 0.8;

/// Maps a float sample (1.0 = full scale, any magnitude) to i16 without ever wrapping.
#[inline]
pub(crate) fn soft_clip(x: f32) -> i16 {
    let a = x.abs();
    let y = if a <= KNEE {
        a
    } else {
        let room = 1.0 - KNEE;
        KNEE + room * ((a - KNEE) / room).tanh()
    };
    let v = (y * 32767.0).min(32767.0).copysign(x);
    v as i16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn soft_clip_is_identity_below_knee_and_bounded_above() {
        assert_eq!(soft_clip(0.5), 16383);
        assert_eq!(soft_clip(-0.5), -16383);
        assert!(soft_clip(10.0) > 32000);
        assert!(soft_clip(-10.0) >= -32767);
        assert_eq!(soft_clip(f32::INFINITY), 32767);
    }
}
