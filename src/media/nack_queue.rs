//! `[media] min_nack_queue` as the running process sees it: the shortest time (ms) each
//! outgoing stream keeps what it sent for NACKs. Read at start from the config, changed at run
//! time by the Admin API's `set_min_nack_queue` (as Janus' is), read by every media loop's
//! NACK responder on each packet it keeps: one atomic, written rarely, never locked.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::config::MAX_NACK_QUEUE_MS;

/// See the module documentation. Clones share the value.
#[derive(Debug, Clone)]
pub struct MinNackQueue(Arc<AtomicU32>);

impl MinNackQueue {
    /// Starts at `ms`, at most [`MAX_NACK_QUEUE_MS`].
    pub fn new(ms: u32) -> Self {
        Self(Arc::new(AtomicU32::new(ms.min(MAX_NACK_QUEUE_MS))))
    }

    /// The value in ms; 0 = keep nothing.
    pub fn ms(&self) -> u32 {
        self.0.load(Ordering::Relaxed)
    }

    /// The value as a duration; zero = keep nothing.
    pub fn get(&self) -> Duration {
        Duration::from_millis(self.ms().into())
    }

    /// Sets `ms`, lowered to [`MAX_NACK_QUEUE_MS`] as Janus does; returns what was set.
    pub fn set(&self, ms: u64) -> u32 {
        let ms = ms.min(MAX_NACK_QUEUE_MS.into()) as u32;
        self.0.store(ms, Ordering::Relaxed);
        ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_the_value_and_it_is_at_most_one_second() {
        let a = MinNackQueue::new(5_000);
        assert_eq!(a.ms(), 1_000);
        let b = a.clone();
        assert_eq!(b.set(300), 300);
        assert_eq!(a.get(), Duration::from_millis(300));
        assert_eq!(a.set(u64::MAX), 1_000);
        assert_eq!(b.set(0), 0);
        assert!(a.get().is_zero());
    }
}
