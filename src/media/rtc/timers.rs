//! One deadline heap for every PeerConnection of a loop.
//!
//! Each sans-I/O PeerConnection says when it next needs `handle_timeout` (ICE checks and
//! keepalives, DTLS retransmissions, RTCP reports, NACK and SCTP timers). The loop keeps one
//! entry per PeerConnection: rescheduling pushes a new entry with a higher generation and the
//! stale one is skipped when it surfaces, so rescheduling is O(log n) without searching the heap.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::hash::Hash;
use std::time::Instant;

/// Deadlines keyed by PeerConnection key `K`; at most one live deadline per key.
#[derive(Debug)]
pub struct Timers<K> {
    heap: BinaryHeap<Reverse<(Instant, u64, K)>>,
    /// The generation of each key's live entry.
    live: HashMap<K, u64>,
    next_generation: u64,
}

impl<K> Default for Timers<K> {
    fn default() -> Self {
        Self {
            heap: BinaryHeap::new(),
            live: HashMap::new(),
            next_generation: 0,
        }
    }
}

impl<K: Copy + Eq + Hash + Ord> Timers<K> {
    /// Sets `key`'s deadline to `at`, replacing any earlier one; `None` clears it.
    pub fn schedule(&mut self, key: K, at: Option<Instant>) {
        let Some(at) = at else {
            self.live.remove(&key);
            return;
        };
        self.next_generation += 1;
        self.live.insert(key, self.next_generation);
        self.heap.push(Reverse((at, self.next_generation, key)));
        // Stale entries are dropped lazily; bound the heap so a peer rescheduled on every
        // packet cannot grow it without limit between deadlines.
        if self.heap.len() > 64 + 4 * self.live.len() {
            let live = &self.live;
            self.heap
                .retain(|Reverse((_, generation, key))| live.get(key) == Some(generation));
        }
    }

    /// Forgets `key` (its PeerConnection closed).
    pub fn remove(&mut self, key: K) {
        self.live.remove(&key);
    }

    /// The earliest live deadline, if any.
    pub fn next_deadline(&mut self) -> Option<Instant> {
        self.drop_stale();
        self.heap.peek().map(|Reverse((at, _, _))| *at)
    }

    /// Takes the next key whose deadline is at or before `now` (its deadline is cleared: the
    /// caller reschedules it after `handle_timeout`).
    pub fn pop_due(&mut self, now: Instant) -> Option<K> {
        self.drop_stale();
        let Reverse((at, _, key)) = *self.heap.peek()?;
        if at > now {
            return None;
        }
        self.heap.pop();
        self.live.remove(&key);
        Some(key)
    }

    fn drop_stale(&mut self) {
        while let Some(Reverse((_, generation, key))) = self.heap.peek() {
            if self.live.get(key) == Some(generation) {
                return;
            }
            self.heap.pop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn due_keys_come_out_in_deadline_order() {
        let t0 = Instant::now();
        let mut timers = Timers::default();
        timers.schedule(1u32, Some(t0 + Duration::from_millis(30)));
        timers.schedule(2, Some(t0 + Duration::from_millis(10)));
        timers.schedule(3, Some(t0 + Duration::from_millis(20)));
        assert_eq!(timers.next_deadline(), Some(t0 + Duration::from_millis(10)));
        assert_eq!(timers.pop_due(t0 + Duration::from_millis(25)), Some(2));
        assert_eq!(timers.pop_due(t0 + Duration::from_millis(25)), Some(3));
        assert_eq!(timers.pop_due(t0 + Duration::from_millis(25)), None);
        assert_eq!(timers.pop_due(t0 + Duration::from_millis(30)), Some(1));
        assert_eq!(timers.next_deadline(), None);
    }

    #[test]
    fn rescheduling_replaces_and_removing_forgets() {
        let t0 = Instant::now();
        let mut timers = Timers::default();
        timers.schedule(1u32, Some(t0 + Duration::from_millis(10)));
        timers.schedule(1, Some(t0 + Duration::from_millis(50)));
        timers.schedule(2, Some(t0 + Duration::from_millis(20)));
        timers.remove(2);
        assert_eq!(timers.pop_due(t0 + Duration::from_millis(40)), None);
        assert_eq!(timers.next_deadline(), Some(t0 + Duration::from_millis(50)));
        timers.schedule(1, None);
        assert_eq!(timers.next_deadline(), None);
    }

    #[test]
    fn the_heap_stays_bounded_under_constant_rescheduling() {
        let t0 = Instant::now();
        let mut timers = Timers::default();
        for i in 0..10_000u64 {
            timers.schedule(i % 3, Some(t0 + Duration::from_micros(i)));
        }
        assert!(timers.heap.len() <= 64 + 4 * 3 + 1);
        let mut due = Vec::new();
        while let Some(k) = timers.pop_due(t0 + Duration::from_secs(1)) {
            due.push(k);
        }
        due.sort();
        assert_eq!(due, vec![0, 1, 2]);
    }
}
