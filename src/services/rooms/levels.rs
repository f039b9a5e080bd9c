//! Talking detection from the levels senders put in their packets (RFC 6464 client-to-mixer
//! audio level header extension), for participants whose offer negotiated it (Chromium's do):
//! the sender measured its own microphone before encoding, so the level is exact and costs
//! the gateway nothing. Participants without it are judged on their decoded audio by the
//! mixer (`bifrons_transcoding::mixer`), with the same thresholds and hysteresis.

use bifrons_transcoding::mixer::VadConfig;

/// Voice activity of one participant from its packets' levels, with hysteresis: `talk_ticks`
/// ticks at or above `talk_threshold_dbov` to start talking, `stop_ticks` below
/// `stop_threshold_dbov` to stop.
#[derive(Debug, Clone)]
pub(super) struct LevelVad {
    config: VadConfig,
    talking: bool,
    run: u32,
}

impl LevelVad {
    pub(super) fn new(config: VadConfig) -> Self {
        Self {
            config,
            talking: false,
            run: 0,
        }
    }

    /// Feeds one tick's level (dBov, −127 silence … 0); `Some(new state)` when it flips.
    pub(super) fn update(&mut self, level_dbov: f32) -> Option<bool> {
        let toward_other_state = if self.talking {
            level_dbov < self.config.stop_threshold_dbov
        } else {
            level_dbov >= self.config.talk_threshold_dbov
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

/// The levels of the packets one tick took in: their mean in dBov (RFC 6464 carries −dBov).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct TickLevels {
    sum: u32,
    packets: u32,
}

impl TickLevels {
    /// Counts one packet's level (−dBov, 0..=127).
    pub(super) fn add(&mut self, level: u8) {
        self.sum += u32::from(level.min(127));
        self.packets += 1;
    }

    /// The mean level in dBov, `None` when no packet carried one.
    pub(super) fn mean_dbov(self) -> Option<f32> {
        (self.packets > 0).then(|| -(self.sum as f32 / self.packets as f32))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn talking_after_talk_ticks_loud_and_stopped_after_stop_ticks_quiet() {
        let mut vad = LevelVad::new(VadConfig::default());
        let loud: Vec<_> = (0..5).map(|_| vad.update(-20.0)).collect();
        assert_eq!(loud, [None, None, None, None, Some(true)]);
        // A short pause does not stop it.
        assert_eq!(vad.update(-127.0), None);
        assert_eq!(vad.update(-20.0), None);
        let quiet: Vec<_> = (0..25).map(|_| vad.update(-127.0)).collect();
        assert_eq!(quiet.last(), Some(&Some(false)));
        assert!(quiet[..24].iter().all(Option::is_none));
    }

    #[test]
    fn tick_levels_average_the_packets_in_dbov() {
        let mut t = TickLevels::default();
        assert_eq!(t.mean_dbov(), None);
        t.add(20);
        t.add(40);
        t.add(255);
        assert_eq!(t.mean_dbov(), Some(-(20.0 + 40.0 + 127.0) / 3.0));
    }
}
