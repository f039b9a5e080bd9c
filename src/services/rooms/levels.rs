//! Talking detection from the levels senders put in their packets (RFC 6464 client-to-mixer
//! audio level header extension), for participants whose offer negotiated it (Chromium's do):
//! the sender measured its own microphone before encoding, so the level is exact and costs
//! the gateway nothing. Both kinds go through the same detector
//! ([`bifrons_transcoding::mixer::VoiceActivity`], the room's thresholds and hysteresis):
//! the mixer feeds it the decoded audio's level, the room these levels.

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
    fn tick_levels_average_the_packets_in_dbov() {
        let mut t = TickLevels::default();
        assert_eq!(t.mean_dbov(), None);
        t.add(20);
        t.add(40);
        t.add(255);
        assert_eq!(t.mean_dbov(), Some(-(20.0 + 40.0 + 127.0) / 3.0));
    }
}
