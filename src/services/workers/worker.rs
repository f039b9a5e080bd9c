//! One worker: the pure scheduling core ([`WorkerCore`], driven by the time it is given) and the
//! OS thread that feeds it its own monotonic clock.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::clock::{Ticker, TICK};
use super::job::{JobCounters, JobStatus, MediaJob, QueueStats};

/// Identifies a submitted job for its whole life (logs, the panel's live view).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobId(pub u64);

impl std::fmt::Display for JobId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// What a job's handle and its worker share: the stop request and the counters.
#[derive(Debug)]
pub(crate) struct JobShared {
    pub(crate) id: JobId,
    pub(crate) worker: usize,
    pub(crate) stop: AtomicBool,
    finished: AtomicBool,
    panicked: AtomicBool,
    ticks: AtomicU64,
    skipped: AtomicU64,
    queues: Vec<QueueStats>,
}

impl JobShared {
    pub(crate) fn new(id: JobId, worker: usize, queues: Vec<QueueStats>) -> Self {
        Self {
            id,
            worker,
            stop: AtomicBool::new(false),
            finished: AtomicBool::new(false),
            panicked: AtomicBool::new(false),
            ticks: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            queues,
        }
    }

    pub(crate) fn counters(&self) -> JobCounters {
        JobCounters {
            ticks: self.ticks.load(Ordering::Relaxed),
            skipped: self.skipped.load(Ordering::Relaxed),
            input_drops: self.queues.iter().map(QueueStats::dropped).sum(),
            finished: self.finished.load(Ordering::Acquire),
            panicked: self.panicked.load(Ordering::Relaxed),
        }
    }
}

/// A message from the pool to a worker thread.
pub(crate) enum Control {
    Add(Box<dyn MediaJob>, Arc<JobShared>),
    /// Lend a hand to another worker's job in its current tick (see [`super::Helpers`]).
    Assist(Arc<dyn super::Assist>),
    Shutdown,
}

thread_local! {
    /// Index of the worker running on this thread (`None` off the pool).
    static CURRENT: std::cell::Cell<Option<usize>> = const { std::cell::Cell::new(None) };
}

/// Index of the worker whose thread calls this, `None` on any other thread.
pub(crate) fn current() -> Option<usize> {
    CURRENT.with(std::cell::Cell::get)
}

struct Slot {
    job: Box<dyn MediaJob>,
    ticker: Ticker,
    shared: Arc<JobShared>,
}

/// The jobs pinned to one worker and their schedules. Pure: every method takes the current
/// time as an argument (time since the worker started), so tests drive it in fake time.
pub(crate) struct WorkerCore {
    slots: Vec<Slot>,
    /// Jobs on this worker, read by the pool to place new jobs on the least-loaded worker.
    load: Arc<AtomicUsize>,
}

impl WorkerCore {
    pub(crate) fn new(load: Arc<AtomicUsize>) -> Self {
        Self {
            slots: Vec::new(),
            load,
        }
    }

    /// Adopts a job at `now`; its first tick is one period later. Jobs added at different
    /// times tick at different phases of the 20 ms period, which spreads a worker's load.
    pub(crate) fn add(&mut self, job: Box<dyn MediaJob>, shared: Arc<JobShared>, now: Duration) {
        self.slots.push(Slot {
            job,
            ticker: Ticker::new(now),
            shared,
        });
    }

    /// Runs every tick due at `now` (catching up or skipping as [`super::clock`] says), drops
    /// jobs that are done, stopped or panicked, and returns the next deadline (`None` when the
    /// worker has no job).
    pub(crate) fn run_due(&mut self, now: Duration) -> Option<Duration> {
        let mut i = 0;
        while i < self.slots.len() {
            if self.run_slot(i, now) {
                i += 1;
            } else {
                self.remove(i);
            }
        }
        self.slots.iter().map(|s| s.ticker.next_deadline()).min()
    }

    /// Ticks slot `i` as due; false when the job is over.
    fn run_slot(&mut self, i: usize, now: Duration) -> bool {
        let slot = &mut self.slots[i];
        if slot.shared.stop.load(Ordering::Acquire) {
            return false;
        }
        let due = slot.ticker.poll(now);
        if due.skipped > 0 {
            slot.shared
                .skipped
                .fetch_add(u64::from(due.skipped), Ordering::Relaxed);
        }
        for k in 0..due.run {
            let at = due.first + TICK * k;
            let status = catch_unwind(AssertUnwindSafe(|| slot.job.tick(at)));
            slot.shared.ticks.fetch_add(1, Ordering::Relaxed);
            match status {
                Ok(JobStatus::Continue) => {}
                Ok(JobStatus::Done) => return false,
                Err(_) => {
                    tracing::error!(job = %slot.shared.id, name = slot.job.name(), "media job panicked; dropped");
                    slot.shared.panicked.store(true, Ordering::Relaxed);
                    return false;
                }
            }
        }
        true
    }

    fn remove(&mut self, i: usize) {
        let Slot { job, shared, .. } = self.slots.swap_remove(i);
        // Drop the job before saying it finished, so that whoever waits on `finished` knows
        // its codecs and sinks are gone.
        if catch_unwind(AssertUnwindSafe(|| drop(job))).is_err() {
            tracing::error!(job = %shared.id, "media job panicked while being dropped");
        }
        shared.finished.store(true, Ordering::Release);
        self.load.fetch_sub(1, Ordering::Relaxed);
    }

    /// Drops every job (worker shutdown).
    pub(crate) fn clear(&mut self) {
        while !self.slots.is_empty() {
            self.remove(self.slots.len() - 1);
        }
    }
}

/// Runs another job's shared work on this worker; a panic there is logged, never fatal here.
fn assist(task: &dyn super::Assist) {
    if catch_unwind(AssertUnwindSafe(|| task.assist())).is_err() {
        tracing::error!("a media job's shared work panicked on a helper worker");
    }
}

/// The worker thread's loop: run what is due, then sleep until the next deadline or a control
/// message, whichever comes first. No tokio: a blocking `recv_timeout` is the sleep.
pub(crate) fn run(index: usize, mut core: WorkerCore, control: Receiver<Control>) {
    CURRENT.with(|c| c.set(Some(index)));
    let epoch = Instant::now();
    loop {
        let next = core.run_due(epoch.elapsed());
        let message = match next {
            Some(deadline) => {
                match control.recv_timeout(deadline.saturating_sub(epoch.elapsed())) {
                    Ok(m) => Some(m),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => Some(Control::Shutdown),
                }
            }
            None => Some(control.recv().unwrap_or(Control::Shutdown)),
        };
        match message {
            Some(Control::Add(job, shared)) => core.add(job, shared, epoch.elapsed()),
            Some(Control::Assist(task)) => assist(&*task),
            Some(Control::Shutdown) => break,
            None => {}
        }
    }
    core.clear();
}
