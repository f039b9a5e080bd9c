//! The load client's one clock: every send and arrival time, on both legs, is an `Instant`
//! turned into seconds since the first call of [`secs`], so delays between legs need no
//! clock synchronisation.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

static EPOCH: OnceLock<Instant> = OnceLock::new();

/// Seconds from the process epoch to `t` (negative before it).
pub fn secs(t: Instant) -> f64 {
    let epoch = *EPOCH.get_or_init(Instant::now);
    if t >= epoch {
        (t - epoch).as_secs_f64()
    } else {
        -(epoch - t).as_secs_f64()
    }
}

/// The send time of the latest pulse on one direction of one call, shared between the task
/// that sends it and the one that detects it (a lock-free cell).
#[derive(Debug, Default)]
pub struct PulseClock(AtomicU64);

impl PulseClock {
    /// Records a pulse sent at `at`.
    pub fn sent(&self, at: Instant) {
        let ns = (secs(at).max(0.0) * 1e9) as u64;
        self.0.store(ns.max(1), Ordering::Relaxed);
    }

    /// Send time (s) of the latest pulse, if any.
    pub fn last(&self) -> Option<f64> {
        match self.0.load(Ordering::Relaxed) {
            0 => None,
            ns => Some(ns as f64 / 1e9),
        }
    }
}

/// The measuring window (s on the [`secs`] clock), set once all calls are up.
#[derive(Debug, Default)]
pub struct Window(OnceLock<(f64, f64)>);

impl Window {
    /// Opens the window on `[start, end)`.
    pub fn set(&self, start: f64, end: f64) {
        let _ = self.0.set((start, end));
    }

    /// Whether `t` is inside it (false before it is set).
    pub fn contains(&self, t: f64) -> bool {
        self.0.get().is_some_and(|(s, e)| t >= *s && t < *e)
    }
}
