//! Maps timestamps from one codec clock to another, across 32-bit wrap-around.

/// Carries a wrapping input clock over to an output clock of another rate.
///
/// The first input timestamp is scaled to become the output origin; later inputs keep their
/// distance from it (gaps from DTX or loss stay gaps). Tracking the extended 64-bit position
/// keeps the mapping exact when the 32-bit input wraps.
#[derive(Debug, Clone)]
pub(crate) struct ClockMap {
    in_rate: u64,
    out_rate: u64,
    last_in: Option<u32>,
    extended_in: i64,
    origin_out: u32,
}

impl ClockMap {
    pub(crate) fn new(in_rate: u32, out_rate: u32) -> Self {
        Self {
            in_rate: in_rate as u64,
            out_rate: out_rate as u64,
            last_in: None,
            extended_in: 0,
            origin_out: 0,
        }
    }

    /// The output-clock timestamp of input timestamp `ts`.
    pub(crate) fn map(&mut self, ts: u32) -> u32 {
        match self.last_in {
            None => {
                self.origin_out = (ts as u64 * self.out_rate / self.in_rate) as u32;
                self.extended_in = 0;
            }
            Some(last) => self.extended_in += ts.wrapping_sub(last) as i32 as i64,
        }
        self.last_in = Some(ts);
        let scaled = self.extended_in * self.out_rate as i64 / self.in_rate as i64;
        self.origin_out.wrapping_add(scaled as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_spacing_and_survives_wrap() {
        let mut m = ClockMap::new(48_000, 8_000);
        let start = u32::MAX - 960;
        let a = m.map(start);
        let b = m.map(start.wrapping_add(960));
        let c = m.map(start.wrapping_add(1920));
        assert_eq!(b.wrapping_sub(a), 160);
        assert_eq!(c.wrapping_sub(a), 320);
        // A gap of 3 frames stays a gap of 3 frames.
        let d = m.map(start.wrapping_add(1920 + 3 * 960));
        assert_eq!(d.wrapping_sub(c), 480);
    }
}
