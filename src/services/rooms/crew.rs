//! A room's participants split into shards that the room's worker and the pool's other
//! workers process together within one tick (a fork-join on [`Assist`]): decoding every
//! participant and encoding each speaker's mix-minus are independent per participant, so a
//! room of 100 need not run them all on one thread.
//!
//! Each phase: the room's worker publishes the phase, asks the other workers
//! ([`Helpers::call`]), then claims shards itself from an atomic counter; a helper claims
//! from the same counter. The room's worker waits only for shards a helper already claimed
//! (parked, woken by the helper that finishes the last one), never for a helper to start: a
//! helper busy with its own rooms answers late, finds nothing left, and returns.
//!
//! The shard locks belong to this room alone (no lock shared between handles) and are never
//! contended: one thread claims each shard per phase, and the room's worker touches shards
//! only between phases.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::thread::Thread;
use std::time::Duration;

use crate::services::workers::{Assist, Helpers};

/// What a shard does in one phase.
pub(super) trait Work: Send + 'static {
    /// Runs `phase` (a number the job defines) over this shard's participants.
    fn work(&mut self, phase: u8);
}

struct Inner<S> {
    shards: Box<[Mutex<S>]>,
    phase: AtomicU8,
    next: AtomicUsize,
    done: AtomicUsize,
    owner: OnceLock<Thread>,
    /// Shards run by helper workers, since the start.
    helped: AtomicU64,
}

fn lock<S>(m: &Mutex<S>) -> MutexGuard<'_, S> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl<S: Work> Inner<S> {
    /// Claims and runs shards of the current phase until none is left.
    fn claim(&self, helper: bool) {
        let n = self.shards.len();
        loop {
            let i = self.next.fetch_add(1, Ordering::AcqRel);
            if i >= n {
                return;
            }
            let phase = self.phase.load(Ordering::Acquire);
            // A panic is the shard's own (its codec state may be off); the tick goes on, and
            // the phase must still be counted done or the room's worker would wait forever.
            if catch_unwind(AssertUnwindSafe(|| lock(&self.shards[i]).work(phase))).is_err() {
                tracing::error!(shard = i, phase, "room shard panicked");
            }
            if helper {
                self.helped.fetch_add(1, Ordering::Relaxed);
            }
            if self.done.fetch_add(1, Ordering::AcqRel) + 1 == n && helper {
                if let Some(owner) = self.owner.get() {
                    owner.unpark();
                }
            }
        }
    }
}

impl<S: Work> Assist for Inner<S> {
    fn assist(&self) {
        self.claim(true);
    }
}

/// The shards of one room and the helpers that may process them.
pub(super) struct Crew<S: Work> {
    inner: Arc<Inner<S>>,
    task: Arc<dyn Assist>,
    helpers: Option<Helpers>,
}

impl<S: Work> Crew<S> {
    /// A crew over `shards`; `helpers` `None` runs every phase on the calling thread alone.
    pub(super) fn new(shards: Vec<S>, helpers: Option<Helpers>) -> Self {
        let inner = Arc::new(Inner {
            shards: shards.into_iter().map(Mutex::new).collect(),
            phase: AtomicU8::new(0),
            next: AtomicUsize::new(usize::MAX / 2),
            done: AtomicUsize::new(0),
            owner: OnceLock::new(),
            helped: AtomicU64::new(0),
        });
        let task: Arc<dyn Assist> = inner.clone();
        Self {
            inner,
            task,
            helpers: helpers.filter(|h| h.others() > 0),
        }
    }

    /// Number of shards.
    pub(super) fn len(&self) -> usize {
        self.inner.shards.len()
    }

    /// Shard `i`, between phases (never contended then).
    pub(super) fn shard(&self, i: usize) -> MutexGuard<'_, S> {
        lock(&self.inner.shards[i])
    }

    /// Every shard, between phases.
    pub(super) fn all(&self) -> impl Iterator<Item = MutexGuard<'_, S>> {
        self.inner.shards.iter().map(lock)
    }

    /// Shards run by helper workers so far.
    pub(super) fn helped(&self) -> u64 {
        self.inner.helped.load(Ordering::Relaxed)
    }

    /// Runs `phase` over every shard, with the other workers' help when `share` is true;
    /// returns once every shard is done. Call it from the room's worker only.
    pub(super) fn run(&self, phase: u8, share: bool) {
        let inner = &*self.inner;
        inner.owner.get_or_init(std::thread::current);
        inner.phase.store(phase, Ordering::Release);
        inner.done.store(0, Ordering::Release);
        inner.next.store(0, Ordering::Release);
        if share {
            if let Some(h) = &self.helpers {
                h.call(&self.task);
            }
        }
        inner.claim(false);
        let n = inner.shards.len();
        while inner.done.load(Ordering::Acquire) < n {
            // Woken by the helper finishing the last shard; the timeout only bounds a missed
            // wake-up.
            std::thread::park_timeout(Duration::from_micros(500));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::workers::WorkerPool;

    struct Piece {
        runs: Vec<(u8, Option<std::thread::ThreadId>)>,
    }

    impl Work for Piece {
        fn work(&mut self, phase: u8) {
            // Long enough that a helper has time to answer.
            std::thread::sleep(Duration::from_millis(2));
            self.runs.push((phase, Some(std::thread::current().id())));
        }
    }

    #[test]
    fn every_shard_runs_once_per_phase_alone_or_helped() {
        for helpers in [None, Some(WorkerPool::start(3).unwrap())] {
            let shards = (0..16).map(|_| Piece { runs: Vec::new() }).collect();
            let crew = Crew::new(shards, helpers.as_ref().map(WorkerPool::helpers));
            for phase in 1..=20u8 {
                crew.run(phase, true);
            }
            for s in crew.all() {
                let phases: Vec<u8> = s.runs.iter().map(|r| r.0).collect();
                assert_eq!(phases, (1..=20).collect::<Vec<_>>());
            }
            let me = std::thread::current().id();
            let elsewhere = crew
                .all()
                .flat_map(|s| s.runs.clone())
                .filter(|r| r.1 != Some(me))
                .count() as u64;
            assert_eq!(elsewhere, crew.helped());
            // Helpers answer when their threads get the CPU: counted, never required.
            if helpers.is_none() {
                assert_eq!(crew.helped(), 0);
            }
        }
    }

    struct Boom(bool);

    impl Work for Boom {
        fn work(&mut self, _phase: u8) {
            if self.0 {
                panic!("codec exploded");
            }
        }
    }

    #[test]
    fn a_panicking_shard_does_not_hang_the_phase() {
        let pool = WorkerPool::start(2).unwrap();
        let crew = Crew::new(
            vec![Boom(false), Boom(true), Boom(false)],
            Some(pool.helpers()),
        );
        crew.run(1, true);
        crew.run(2, true);
    }
}
