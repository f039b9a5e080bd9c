//! Per-leg accounting, free of I/O so it is unit-tested: packets received against the count
//! the far end scheduled, sequence gaps (lost), arrivals later than the schedule their RTP
//! timestamps imply (late), and one-way delays from pulse onsets.
//!
//! Times are `f64` seconds on the load client's one clock (see [`crate::clock`]).

/// A packet is late when it arrives more than this after the schedule its RTP timestamp
/// implies (s): what a 40 ms jitter buffer would no longer play.
pub const LATE_S: f64 = 0.040;

/// Extends a 16-bit RTP sequence number next to the previous extended one (RFC 3550 A.1).
pub fn extend_seq(prev: Option<i64>, seq: u16) -> i64 {
    match prev {
        None => seq as i64,
        Some(p) => p + (seq.wrapping_sub(p as u16) as i16) as i64,
    }
}

/// Extends a 32-bit RTP timestamp next to the previous extended one.
pub fn extend_ts(prev: Option<i64>, ts: u32) -> i64 {
    match prev {
        None => ts as i64,
        Some(p) => p + (ts.wrapping_sub(p as u32) as i32) as i64,
    }
}

/// What one leg (one direction of one call) received.
///
/// Lateness is measured against the earliest transit seen on the leg (arrival minus RTP
/// time): the first packets of a call set the schedule, and a packet whose transit exceeds
/// that minimum by more than [`LATE_S`] is late. Only packets arriving inside the measuring
/// window are counted; the schedule is learnt from every packet, ramp-up included.
#[derive(Debug, Clone)]
pub struct LegStats {
    clock_rate: f64,
    last_seq: Option<i64>,
    last_ts: Option<i64>,
    min_transit: Option<f64>,
    first_seq: Option<i64>,
    max_seq: Option<i64>,
    /// Packets received inside the window.
    pub received: u64,
    /// Of those, packets later than [`LATE_S`] behind the schedule.
    pub late: u64,
    /// One-way delays of detected pulse onsets inside the window (ms).
    pub delays_ms: Vec<f64>,
    /// Pulses sent inside the window whose onset never arrived within a pulse period.
    pub pulses_missed: u64,
}

impl LegStats {
    /// A leg whose RTP clock runs at `clock_rate` Hz (48000 Opus, 8000 PCMU).
    pub fn new(clock_rate: u32) -> Self {
        Self {
            clock_rate: clock_rate as f64,
            last_seq: None,
            last_ts: None,
            min_transit: None,
            first_seq: None,
            max_seq: None,
            received: 0,
            late: 0,
            delays_ms: Vec::new(),
            pulses_missed: 0,
        }
    }

    /// Accounts one packet that arrived at `arrival` (s) with sequence number `seq` and RTP
    /// timestamp `ts`; `in_window` says whether it counts.
    pub fn on_packet(&mut self, arrival: f64, seq: u16, ts: u32, in_window: bool) {
        let seq = extend_seq(self.last_seq, seq);
        let ts = extend_ts(self.last_ts, ts);
        self.last_seq = Some(seq);
        self.last_ts = Some(ts);
        let transit = arrival - ts as f64 / self.clock_rate;
        let min = self.min_transit.map_or(transit, |m| m.min(transit));
        self.min_transit = Some(min);
        if !in_window {
            return;
        }
        self.received += 1;
        if transit - min > LATE_S {
            self.late += 1;
        }
        self.first_seq = Some(self.first_seq.map_or(seq, |f| f.min(seq)));
        self.max_seq = Some(self.max_seq.map_or(seq, |m| m.max(seq)));
    }

    /// Packets missing between the first and the last sequence number seen in the window
    /// (duplicates are not expected on these legs and would hide a loss).
    pub fn lost(&self) -> u64 {
        match (self.first_seq, self.max_seq) {
            (Some(f), Some(m)) => ((m - f + 1) as u64).saturating_sub(self.received),
            _ => 0,
        }
    }
}

/// Median, 95th percentile and maximum of `values` (ms), `None` when empty.
pub fn percentiles(values: &[f64]) -> Option<(f64, f64, f64)> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    Some((at(0.5), at(0.95), v[v.len() - 1]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn steady_stream_is_neither_lost_nor_late() {
        let mut leg = LegStats::new(8000);
        for i in 0..100u32 {
            leg.on_packet(
                1.0 + i as f64 * 0.02 + 0.001 * (i % 3) as f64,
                i as u16,
                i * 160,
                true,
            );
        }
        assert_eq!((leg.received, leg.lost(), leg.late), (100, 0, 0));
    }

    #[test]
    fn gaps_count_as_lost_across_sequence_wrap() {
        let mut leg = LegStats::new(8000);
        let mut seq = 65530u16;
        for i in 0..20u32 {
            if i != 4 && i != 9 {
                leg.on_packet(i as f64 * 0.02, seq, i * 160, true);
            }
            seq = seq.wrapping_add(1);
        }
        assert_eq!(leg.received, 18);
        assert_eq!(leg.lost(), 2);
    }

    #[test]
    fn a_packet_held_back_more_than_40_ms_is_late() {
        let mut leg = LegStats::new(48_000);
        for i in 0..50u32 {
            let hold = if i == 20 {
                0.045
            } else if i == 30 {
                0.035
            } else {
                0.0
            };
            leg.on_packet(i as f64 * 0.02 + hold, i as u16, i * 960, true);
        }
        assert_eq!(leg.late, 1);
    }

    #[test]
    fn ramp_up_packets_set_the_schedule_but_do_not_count() {
        let mut leg = LegStats::new(8000);
        for i in 0..10u32 {
            leg.on_packet(i as f64 * 0.02, i as u16, i * 160, false);
        }
        // Every windowed packet is 50 ms behind the schedule the ramp-up set.
        for i in 10..20u32 {
            leg.on_packet(i as f64 * 0.02 + 0.05, i as u16, i * 160, true);
        }
        assert_eq!((leg.received, leg.late, leg.lost()), (10, 10, 0));
    }

    #[test]
    fn percentiles_of_a_known_set() {
        let v: Vec<f64> = (1..=100).map(|i| i as f64).collect();
        let (m, p95, max) = percentiles(&v).unwrap();
        assert!((50.0..=51.0).contains(&m));
        assert!((95.0..=96.0).contains(&p95));
        assert_eq!(max, 100.0);
        assert!(percentiles(&[]).is_none());
    }

    proptest! {
        #[test]
        fn lost_is_exactly_the_dropped_packets(start in any::<u16>(), drops in proptest::collection::btree_set(1usize..299, 0..40)) {
            let mut leg = LegStats::new(8000);
            for i in 0..300usize {
                if !drops.contains(&i) {
                    leg.on_packet(i as f64 * 0.02, start.wrapping_add(i as u16), (i as u32).wrapping_mul(160), true);
                }
            }
            prop_assert_eq!(leg.lost(), drops.len() as u64);
            prop_assert_eq!(leg.late, 0);
        }

        #[test]
        fn extension_follows_any_step_below_half_the_range(start in any::<u16>(), steps in proptest::collection::vec(-1000i64..1000, 1..50)) {
            let mut ext = extend_seq(None, start);
            let mut truth = start as i64;
            for s in steps {
                truth += s;
                ext = extend_seq(Some(ext), truth.rem_euclid(65536) as u16);
                prop_assert_eq!(ext, truth);
            }
        }
    }
}
