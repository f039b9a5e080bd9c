//! Voice activity per participant, with hysteresis so a pause between words does not toggle
//! "talking" on and off.

use super::ParticipantId;

/// Thresholds of the voice-activity detector.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VadConfig {
    /// Level (dBov, 0 = full scale) at or above which a tick counts as voiced.
    pub talk_threshold_dbov: f32,
    /// Level below which a tick counts as quiet; lower than `talk_threshold_dbov` for hysteresis.
    pub stop_threshold_dbov: f32,
    /// Consecutive voiced ticks before "talking" is reported.
    pub talk_ticks: u32,
    /// Consecutive quiet ticks before "stopped talking" is reported.
    pub stop_ticks: u32,
}

impl Default for VadConfig {
    fn default() -> Self {
        // 20 ms ticks: talking after 100 ms of voice, stopped after 500 ms of quiet.
        Self {
            talk_threshold_dbov: -40.0,
            stop_threshold_dbov: -50.0,
            talk_ticks: 5,
            stop_ticks: 25,
        }
    }
}

/// A change in a participant's talking state.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VadEvent {
    /// Whose state changed.
    pub participant: ParticipantId,
    /// True: started talking; false: stopped talking.
    pub talking: bool,
    /// The tick's level in dBov when the change was decided.
    pub level: f32,
}

/// Talking or not, from one level per 20 ms tick, with the hysteresis of a [`VadConfig`]:
/// `talk_ticks` ticks at or above `talk_threshold_dbov` to start, `stop_ticks` below
/// `stop_threshold_dbov` to stop. The mixer feeds it the decoded audio's level; a caller
/// may feed it levels measured elsewhere (RFC 6464 header extensions).
pub struct VoiceActivity {
    config: VadConfig,
    talking: bool,
    run: u32,
    level: f32,
}

impl VoiceActivity {
    /// Quiet, with `config`'s thresholds.
    pub fn new(config: VadConfig) -> Self {
        Self {
            config,
            talking: false,
            run: 0,
            level: -127.0,
        }
    }

    pub(crate) fn talking(&self) -> bool {
        self.talking
    }

    pub(crate) fn level_dbov(&self) -> f32 {
        self.level
    }

    /// Feeds one tick; returns Some(new state) when the state flips. Muted participants are
    /// treated as quiet so that unmuting starts from a clean state.
    pub(crate) fn update(&mut self, pcm: &[i16], muted: bool) -> Option<bool> {
        self.update_level(if muted { -127.0 } else { level_dbov(pcm) })
    }

    /// Feeds one tick's level (dBov, −127 silence … 0 full scale); returns `Some(new state)`
    /// when the state flips.
    pub fn update_level(&mut self, level_dbov: f32) -> Option<bool> {
        self.level = level_dbov;
        let toward_other_state = if self.talking {
            self.level < self.config.stop_threshold_dbov
        } else {
            self.level >= self.config.talk_threshold_dbov
        };
        if !toward_other_state {
            self.run = 0;
            return None;
        }
        self.run += 1;
        let needed = if self.talking {
            self.config.stop_ticks
        } else {
            self.config.talk_ticks
        };
        if self.run >= needed {
            self.talking = !self.talking;
            self.run = 0;
            Some(self.talking)
        } else {
            None
        }
    }
}

/// RMS level in dBov (RFC 6464 style: 0 dBov is a full-scale square wave), floored at -127.
pub(crate) fn level_dbov(pcm: &[i16]) -> f32 {
    if pcm.is_empty() {
        return -127.0;
    }
    let energy: f64 = pcm.iter().map(|&s| (s as f64) * (s as f64)).sum::<f64>() / pcm.len() as f64;
    if energy <= 0.0 {
        return -127.0;
    }
    let db = 10.0 * (energy / (32768.0 * 32768.0)).log10();
    (db as f32).max(-127.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn talking_after_talk_ticks_loud_and_stopped_after_stop_ticks_quiet() {
        let mut vad = VoiceActivity::new(VadConfig::default());
        let loud: Vec<_> = (0..5).map(|_| vad.update_level(-20.0)).collect();
        assert_eq!(loud, [None, None, None, None, Some(true)]);
        // A short pause does not stop it.
        assert_eq!(vad.update_level(-127.0), None);
        assert_eq!(vad.update_level(-20.0), None);
        let quiet: Vec<_> = (0..25).map(|_| vad.update_level(-127.0)).collect();
        assert_eq!(quiet.last(), Some(&Some(false)));
        assert!(quiet[..24].iter().all(Option::is_none));
        assert!(!vad.talking());
    }
}
