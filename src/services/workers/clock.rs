//! The 20 ms clock of one job, as a pure function of the time it is given (no clock reads):
//! the worker thread passes its own monotonic time, unit tests pass fake time.
//!
//! Late wake-ups: a worker can wake late (a slow job on the same thread, a loaded machine).
//! Ticks that fell due while it slept are run back to back, up to [`CATCH_UP`] of them,
//! because an audio leg that skips a period leaves a hole in its output stream while one that
//! runs twice only adds a little latency. Periods older than that window are *skipped* and
//! counted: running them all after a long stall would send a burst that the far end's jitter
//! buffer drops anyway. The grid never moves: ticks stay at `start + k × 20 ms`, so a stall
//! does not shift every later tick.

use std::time::Duration;

/// The period of the audio clock: 20 ms, the usual Opus/G.711 packet duration.
pub const TICK: Duration = Duration::from_millis(20);

/// Most ticks run back to back after a late wake-up (5 × 20 ms = 100 ms of lateness is
/// absorbed); older due periods are skipped.
pub const CATCH_UP: u32 = 5;

/// What fell due at one look at the clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Due {
    /// Scheduled time of the first tick to run now (meaningful when `run > 0`).
    pub first: Duration,
    /// Ticks to run now, at `first`, `first + TICK`, ... (at most [`CATCH_UP`]).
    pub run: u32,
    /// Due periods that are skipped because they are older than the catch-up window.
    pub skipped: u32,
}

/// The schedule of one job: due at `start + k × TICK` for k = 1, 2, ...
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticker {
    next: Duration,
}

impl Ticker {
    /// A schedule whose first tick is one period after `start` (the submission time).
    pub fn new(start: Duration) -> Self {
        Self { next: start + TICK }
    }

    /// When the next tick is due.
    pub fn next_deadline(&self) -> Duration {
        self.next
    }

    /// Takes the ticks due at `now` and moves the schedule past them.
    pub fn poll(&mut self, now: Duration) -> Due {
        if now < self.next {
            return Due::default();
        }
        let tick = TICK.as_nanos();
        // Number of grid points in [next, now].
        let due = (now - self.next).as_nanos() / tick + 1;
        let due = u32::try_from(due).unwrap_or(u32::MAX);
        let run = due.min(CATCH_UP);
        let skipped = due - run;
        let first = self.next + TICK * skipped;
        self.next = first + TICK * run;
        Due {
            first,
            run,
            skipped,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn one_second_in_small_steps_is_fifty_ticks_at_twenty_ms() {
        let mut t = Ticker::new(ms(0));
        let mut at = Vec::new();
        for now in 0..=1000 {
            let due = t.poll(ms(now));
            assert_eq!(due.skipped, 0);
            for k in 0..due.run {
                at.push(due.first + TICK * k);
            }
        }
        assert_eq!(at.len(), 50);
        assert_eq!(at[0], ms(20));
        assert!(at.windows(2).all(|w| w[1] - w[0] == TICK));
        assert_eq!(t.next_deadline(), ms(1020));
    }

    #[test]
    fn short_stall_catches_up_and_long_stall_skips_on_the_grid() {
        let mut t = Ticker::new(ms(0));
        // 70 ms late: due at 20, 40, 60 → all three run now.
        assert_eq!(
            t.poll(ms(70)),
            Due {
                first: ms(20),
                run: 3,
                skipped: 0
            }
        );
        // A 1 s stall: 50 periods due (80..=1060), the last CATCH_UP run, the rest skipped.
        let due = t.poll(ms(1060));
        assert_eq!((due.run, due.skipped), (CATCH_UP, 50 - CATCH_UP));
        assert_eq!(due.first, ms(1060) - TICK * (CATCH_UP - 1));
        assert_eq!(t.next_deadline(), ms(1080), "the grid did not move");
        assert_eq!(t.poll(ms(1079)), Due::default());
    }
}
