//! Packet loss per window, from RTP sequence numbers (for `slowlink` events).

/// Counts packets lost between two calls of [`LossWindow::take_lost`].
#[derive(Debug, Default)]
pub struct LossWindow {
    /// Highest sequence number seen, extended past 16-bit wrap-arounds.
    highest: Option<u64>,
    /// `highest` when the window started.
    window_start: u64,
    received: u64,
}

/// Offset so that extended sequence numbers never go below zero when the stream starts.
const BASE: u64 = 1 << 32;

impl LossWindow {
    /// Counts one received packet with RTP sequence number `seq` (RFC 3550 §5.1). `seq` is
    /// placed within ±32768 of the highest number seen so far, so 16-bit wrap-around and
    /// reordering are both handled.
    pub fn on_packet(&mut self, seq: u16) {
        let extended = match self.highest {
            None => {
                let first = BASE + u64::from(seq);
                self.window_start = first - 1;
                first
            }
            Some(highest) => {
                let delta = i64::from(seq.wrapping_sub(highest as u16) as i16);
                (highest as i64 + delta) as u64
            }
        };
        if self.highest.is_none_or(|h| extended > h) {
            self.highest = Some(extended);
        }
        self.received += 1;
    }

    /// Packets lost since the previous call (expected minus received, floored at 0: late or
    /// duplicate packets can make up for losses), then starts a new window. 0 before the
    /// first packet.
    pub fn take_lost(&mut self) -> u64 {
        let Some(highest) = self.highest else {
            return 0;
        };
        let expected = highest - self.window_start;
        let lost = expected.saturating_sub(self.received);
        self.window_start = highest;
        self.received = 0;
        lost
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_gaps_per_window_across_wraparound() {
        let mut w = LossWindow::default();
        assert_eq!(w.take_lost(), 0);
        for seq in [65530u16, 65531, 65533, 65535, 0, 1, 4] {
            w.on_packet(seq);
        }
        // 65530..=4 is 11 packets, 7 arrived.
        assert_eq!(w.take_lost(), 4);
        for seq in 5u16..=14 {
            w.on_packet(seq);
        }
        assert_eq!(w.take_lost(), 0);
    }

    #[test]
    fn reordered_packets_are_not_losses() {
        let mut w = LossWindow::default();
        for seq in [10u16, 12, 11, 13] {
            w.on_packet(seq);
        }
        assert_eq!(w.take_lost(), 0);
    }
}
