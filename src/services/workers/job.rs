//! What a worker runs: the [`MediaJob`] trait, and the bounded input queues that feed a job
//! from media callbacks, SIP endpoints or other jobs without ever blocking them.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::Duration;

/// What a job tells its worker after a tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobStatus {
    /// Tick me again in 20 ms.
    Continue,
    /// The job is over: the worker drops it (on the worker thread) and frees its slot.
    Done,
}

/// Codec work driven by the 20 ms audio clock: a transcoding leg, a mixer, an AAC→Opus leg.
///
/// Threading: a job is moved to one worker thread at submission and stays there until it is
/// dropped (on that thread), so it needs `Send` but not `Sync`, and it may keep codec state
/// (encoders, decoders, resamplers) without locks.
///
/// Rules for `tick` (a worker runs many jobs in turn; one slow job delays all of them):
/// - never block: read inputs with [`InputReceiver::try_recv`], write outputs through
///   non-blocking sinks (`try_send`-style), never await, never touch the disk (recordings go
///   through `services::recording`, whose `push` does not block);
/// - do at most one period of work: consume what arrived in the last 20 ms, produce 20 ms.
///   Take only what was queued when the tick began ([`InputReceiver::drain`], or
///   `for _ in 0..input.queued()`): a `while let Some(_) = try_recv()` loop never ends while
///   the producer is faster than the job, and the worker's other jobs wait all that time.
///
/// A job that panics is dropped and reported as [`JobStatus::Done`] (with
/// [`JobCounters::panicked`] set) rather than taking its worker's other jobs down.
pub trait MediaJob: Send + 'static {
    /// One period of work. `now` is the scheduled time of this tick, measured from the worker's
    /// start: consecutive ticks see `now` advance by exactly [`TICK`](super::TICK) (20 ms),
    /// except after a stall longer than the catch-up window, where `now` jumps forward by the
    /// skipped periods (see [`super::clock`]).
    fn tick(&mut self, now: Duration) -> JobStatus;

    /// The input queues this job reads, so that the job's handle can report their drops
    /// ([`JobCounters::input_drops`]). Read once, at submission. Default: none.
    fn queues(&self) -> Vec<QueueStats> {
        Vec::new()
    }

    /// A short name for logs and the panel's live view, e.g. `"opus→pcmu"` or `"mixer"`.
    fn name(&self) -> &str {
        "job"
    }
}

/// Why [`InputSender::try_push`] did not queue an item. The item is dropped either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    /// The queue was full: the job is behind. Counted in [`QueueStats::dropped`].
    #[error("input queue full, item dropped")]
    Full,
    /// The job is gone (finished or stopped): stop feeding it. Not counted as a drop.
    #[error("job has ended")]
    Closed,
}

#[derive(Debug, Default)]
struct QueueCounters {
    pushed: AtomicU64,
    dropped: AtomicU64,
}

/// Counters of one input queue, shared by its sender, its receiver and the job's handle.
#[derive(Debug, Clone, Default)]
pub struct QueueStats(Arc<QueueCounters>);

impl QueueStats {
    /// Items accepted into the queue since it was made.
    pub fn pushed(&self) -> u64 {
        self.0.pushed.load(Ordering::Relaxed)
    }

    /// Items refused because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.0.dropped.load(Ordering::Relaxed)
    }
}

/// The producer side of a job's input queue: `Clone + Send`, for media callbacks
/// (`incoming_rtp`), SIP/RTMP endpoint tasks and other jobs.
#[derive(Debug)]
pub struct InputSender<T> {
    tx: SyncSender<T>,
    stats: QueueStats,
}

impl<T> Clone for InputSender<T> {
    fn clone(&self) -> Self {
        Self {
            tx: self.tx.clone(),
            stats: self.stats.clone(),
        }
    }
}

impl<T> InputSender<T> {
    /// Queues `item` for the job's next tick. Never blocks and never allocates (the queue's
    /// slots are allocated up front): when the queue is full the item is dropped and counted,
    /// because late audio is worth less than the time a producer would lose waiting.
    pub fn try_push(&self, item: T) -> Result<(), PushError> {
        match self.tx.try_send(item) {
            Ok(()) => {
                self.stats.0.pushed.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(TrySendError::Full(_)) => {
                self.stats.0.dropped.fetch_add(1, Ordering::Relaxed);
                Err(PushError::Full)
            }
            Err(TrySendError::Disconnected(_)) => Err(PushError::Closed),
        }
    }

    /// This queue's counters.
    pub fn stats(&self) -> QueueStats {
        self.stats.clone()
    }
}

/// The consumer side of a job's input queue, owned by the job.
#[derive(Debug)]
pub struct InputReceiver<T> {
    rx: Receiver<T>,
    stats: QueueStats,
    /// Items taken so far (only this receiver takes them).
    received: Cell<u64>,
}

impl<T> InputReceiver<T> {
    /// The next queued item, or `None` when the queue is empty (or every sender is gone).
    /// Never blocks.
    pub fn try_recv(&self) -> Option<T> {
        let item = self.rx.try_recv().ok()?;
        self.received.set(self.received.get() + 1);
        Some(item)
    }

    /// How many items wait in the queue now (an item being pushed at this instant may not
    /// be counted yet: it is the next tick's).
    pub fn queued(&self) -> usize {
        let waiting = self.stats.pushed().saturating_sub(self.received.get());
        usize::try_from(waiting).unwrap_or(usize::MAX)
    }

    /// The items queued when it is called, oldest first, without blocking; what arrives while
    /// they are handled is left for the next tick. A job whose producer outpaces it (a video
    /// transcoder on a starved CPU) then still ends its tick, instead of draining forever
    /// while the other jobs of its worker wait; the backlog overflows the queue, and is
    /// dropped and counted there. Jobs loop with `for _ in 0..input.queued()` where the item's
    /// handling needs the job mutably.
    pub fn drain(&self) -> impl Iterator<Item = T> + '_ {
        (0..self.queued()).map_while(|_| self.try_recv())
    }

    /// This queue's counters, to return from [`MediaJob::queues`].
    pub fn stats(&self) -> QueueStats {
        self.stats.clone()
    }
}

/// A bounded queue of `capacity` items (at least 1) for feeding a job: one period of input at
/// 20 ms is usually one packet per source, so a capacity of a few periods (e.g. 8–16 packets)
/// absorbs jitter while bounding the delay a backlog can add.
pub fn input_queue<T>(capacity: usize) -> (InputSender<T>, InputReceiver<T>) {
    let (tx, rx) = mpsc::sync_channel(capacity.max(1));
    let stats = QueueStats::default();
    (
        InputSender {
            tx,
            stats: stats.clone(),
        },
        InputReceiver {
            rx,
            stats,
            received: Cell::new(0),
        },
    )
}

/// A snapshot of a job's counters, read through its handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct JobCounters {
    /// Ticks run so far.
    pub ticks: u64,
    /// Periods skipped because the worker woke up later than the catch-up window allows.
    pub skipped: u64,
    /// Items dropped by the job's input queues (sum over [`MediaJob::queues`]).
    pub input_drops: u64,
    /// The job is over (it returned [`JobStatus::Done`], was stopped, or panicked) and has
    /// been dropped by its worker.
    pub finished: bool,
    /// The job panicked in `tick`.
    pub panicked: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_queue_drops_and_counts_without_blocking() {
        let (tx, rx) = input_queue::<u32>(2);
        assert_eq!(tx.try_push(1), Ok(()));
        assert_eq!(tx.clone().try_push(2), Ok(()));
        assert_eq!(tx.try_push(3), Err(PushError::Full));
        assert_eq!(tx.try_push(4), Err(PushError::Full));
        assert_eq!((tx.stats().pushed(), tx.stats().dropped()), (2, 2));
        assert_eq!(rx.drain().collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(tx.try_push(5), Ok(()), "room again once the job has read");
        drop(rx);
        assert_eq!(tx.try_push(6), Err(PushError::Closed));
        assert_eq!(tx.stats().dropped(), 2, "a closed queue is not a drop");
    }

    #[test]
    fn a_drain_ends_with_what_was_queued_when_it_began() {
        let (tx, rx) = input_queue::<u32>(8);
        for i in 0..3 {
            tx.try_push(i).unwrap();
        }
        assert_eq!(rx.queued(), 3);
        // A producer as fast as the job: one new item for each one handled.
        let mut handled = Vec::new();
        for item in rx.drain() {
            tx.try_push(item + 10).unwrap();
            handled.push(item);
        }
        assert_eq!(
            handled,
            vec![0, 1, 2],
            "the drain stopped at the three it began with"
        );
        assert_eq!(
            rx.queued(),
            3,
            "the three that came meanwhile wait for the next tick"
        );
        assert_eq!(rx.try_recv(), Some(10));
        assert_eq!(rx.queued(), 2);
    }
}
