//! Codec work off the async runtime: a pool of OS threads, each driving its media jobs
//! (transcoding legs, mixers, AAC→Opus) on a 20 ms clock.
//!
//! - **Threads**: `cores − 1` (at least 2), or `[workers] threads` when set; never tokio, so a
//!   codec never stalls the runtime and an await never stalls a codec.
//! - **Placement**: a job is pinned to one worker for its life, the least-loaded (fewest jobs)
//!   at submission, so its codec state needs no lock and stays in one core's caches.
//! - **Clock**: each job ticks every 20 ms ([`TICK`]) from its submission; late wake-ups catch
//!   up to [`CATCH_UP`] periods and skip older ones (see [`clock`]).
//! - **Input**: bounded queues ([`input_queue`]) whose `try_push` never blocks and counts
//!   drops when full. **Output** is the job's business, through non-blocking sinks.
//! - **Control**: [`WorkerPool::submit`] returns a [`JobHandle`] to stop the job and read its
//!   counters; dropping the handle stops the job too.
//!
//! The scheduling is a pure core (`worker::WorkerCore` over [`clock::Ticker`]) that takes
//! the time as an argument; the threads only feed it `Instant` readings.

pub mod clock;
mod job;
mod worker;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

pub use clock::{CATCH_UP, TICK};
pub use job::{
    input_queue, InputReceiver, InputSender, JobCounters, JobStatus, MediaJob, PushError,
    QueueStats,
};
pub use worker::JobId;

use crate::config::WorkersConfig;
use worker::{Control, JobShared, WorkerCore};

/// Worker threads for `configured` threads on a machine with `cores` cores: `configured` when
/// non-zero, else `cores − 1` (one core left to the async runtime's I/O), at least 2.
///
/// At least 2 because one codec thread has no slack: when the scheduler keeps it off its core,
/// every leg and mixer it runs is late at once (`scripts/bench-sip`, 100 transcoded calls on 2
/// cores: 0.9–2.4 % of frames late with 1 thread, none lost and ≤ 0.04 % late with 2).
pub fn thread_count(configured: usize, cores: usize) -> usize {
    if configured > 0 {
        configured
    } else {
        cores.saturating_sub(1).max(2)
    }
}

/// Why a job could not be submitted.
#[derive(Debug, thiserror::Error)]
pub enum WorkersError {
    /// A worker thread could not be started (the OS refused: thread limit, memory).
    #[error("cannot start worker thread: {0}")]
    Spawn(#[from] std::io::Error),
    /// The pool has been shut down.
    #[error("the worker pool is shut down")]
    ShutDown,
}

struct Worker {
    /// `Sender` is `Sync`: submissions from many tasks need no lock.
    control: Sender<Control>,
    load: Arc<AtomicUsize>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

/// The pool of worker threads; started once at boot and shared (behind an `Arc`) by every
/// plugin and service that runs codec work.
pub struct WorkerPool {
    workers: Vec<Worker>,
    next_id: AtomicU64,
    stopped: AtomicBool,
}

impl WorkerPool {
    /// Starts `threads` worker threads (at least 1), named `bifrons-worker-N`.
    pub fn start(threads: usize) -> Result<Self, WorkersError> {
        let mut workers = Vec::with_capacity(threads.max(1));
        for i in 0..threads.max(1) {
            let (control, rx) = mpsc::channel();
            let load = Arc::new(AtomicUsize::new(0));
            let core = WorkerCore::new(load.clone());
            let thread = std::thread::Builder::new()
                .name(format!("bifrons-worker-{i}"))
                .spawn(move || worker::run(i, core, rx))?;
            workers.push(Worker {
                control,
                load,
                thread: Mutex::new(Some(thread)),
            });
        }
        tracing::info!(threads = workers.len(), "media workers started");
        Ok(Self {
            workers,
            next_id: AtomicU64::new(1),
            stopped: AtomicBool::new(false),
        })
    }

    /// Starts the pool sized by `[workers] threads` (0 = cores − 1, at least 2).
    pub fn from_config(config: &WorkersConfig) -> Result<Self, WorkersError> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self::start(thread_count(config.threads, cores))
    }

    /// Number of worker threads.
    pub fn threads(&self) -> usize {
        self.workers.len()
    }

    /// Handles to ask the workers for help with a job's tick ([`Helpers`]).
    pub fn helpers(&self) -> Helpers {
        Helpers {
            workers: self.workers.iter().map(|w| w.control.clone()).collect(),
        }
    }

    /// Jobs currently pinned to each worker, by worker index (the panel's live view).
    pub fn loads(&self) -> Vec<usize> {
        self.workers
            .iter()
            .map(|w| w.load.load(Ordering::Relaxed))
            .collect()
    }

    /// Hands `job` to the least-loaded worker (lowest index on a tie); its first tick comes
    /// 20 ms later. Errors with [`WorkersError::ShutDown`] after [`WorkerPool::shutdown`].
    pub fn submit<J: MediaJob>(&self, job: J) -> Result<JobHandle, WorkersError> {
        if self.stopped.load(Ordering::Acquire) {
            return Err(WorkersError::ShutDown);
        }
        let (index, worker) = self
            .workers
            .iter()
            .enumerate()
            .min_by_key(|(i, w)| (w.load.load(Ordering::Relaxed), *i))
            .ok_or(WorkersError::ShutDown)?;
        let id = JobId(self.next_id.fetch_add(1, Ordering::Relaxed));
        let shared = Arc::new(JobShared::new(id, index, job.queues()));
        worker.load.fetch_add(1, Ordering::Relaxed);
        if worker
            .control
            .send(Control::Add(Box::new(job), shared.clone()))
            .is_err()
        {
            worker.load.fetch_sub(1, Ordering::Relaxed);
            return Err(WorkersError::ShutDown);
        }
        Ok(JobHandle { shared })
    }

    /// Stops every worker after its current pass, drops their jobs (on the worker threads) and
    /// joins the threads; later submissions fail. Blocks for at most one pass of each worker
    /// (call it from the composition root's shutdown, not from a hot path). Idempotent; also run
    /// when the pool is dropped.
    pub fn shutdown(&self) {
        self.stopped.store(true, Ordering::Release);
        for w in &self.workers {
            let _ = w.control.send(Control::Shutdown);
        }
        for w in &self.workers {
            let thread = w.thread.lock().map(|mut t| t.take()).unwrap_or(None);
            if let Some(t) = thread {
                if t.join().is_err() {
                    tracing::error!("a media worker thread panicked");
                }
            }
        }
    }
}

impl Drop for WorkerPool {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Work of one job's tick that other workers may share: a fork-join without a thread of
/// its own. The job splits its tick into pieces that any thread may claim (an atomic counter),
/// asks the other workers through [`Helpers::call`], claims pieces itself, and waits only for
/// pieces already claimed by a helper. A helper busy with its own jobs answers late and
/// finds nothing left to claim, so a tick never waits on another worker's schedule.
pub trait Assist: Send + Sync + 'static {
    /// Claims and runs pieces until none is left; called on a helper worker's thread between
    /// its own jobs' ticks. Must not block.
    fn assist(&self);
}

/// The pool's workers as helpers for a job's tick (see [`Assist`]). Cheap to clone; sending a
/// request never blocks (an unbounded control channel per worker).
#[derive(Clone)]
pub struct Helpers {
    workers: Vec<Sender<Control>>,
}

impl Helpers {
    /// Asks every worker but the calling thread's own to run `task` as soon as it is between
    /// ticks. Returns how many were asked (0 on a one-worker pool).
    pub fn call(&self, task: &Arc<dyn Assist>) -> usize {
        let own = worker::current();
        let mut asked = 0;
        for (i, w) in self.workers.iter().enumerate() {
            if Some(i) != own && w.send(Control::Assist(task.clone())).is_ok() {
                asked += 1;
            }
        }
        asked
    }

    /// Workers that could help a job running on one of them (the pool's size minus one).
    pub fn others(&self) -> usize {
        self.workers.len().saturating_sub(1)
    }
}

/// The submitter's handle on a running job: stop it, read its counters. Dropping the handle
/// stops the job, so a job cannot outlive the plugin state that owns it.
#[derive(Debug)]
pub struct JobHandle {
    shared: Arc<JobShared>,
}

impl JobHandle {
    /// The job's id.
    pub fn id(&self) -> JobId {
        self.shared.id
    }

    /// Index of the worker the job is pinned to.
    pub fn worker(&self) -> usize {
        self.shared.worker
    }

    /// Asks the worker to drop the job before its next tick (within 20 ms). Returns at once;
    /// [`JobCounters::finished`] says when the job is gone.
    pub fn stop(&self) {
        self.shared.stop.store(true, Ordering::Release);
    }

    /// The job's counters now: ticks, skipped periods, input drops, whether it is over.
    pub fn counters(&self) -> JobCounters {
        self.shared.counters()
    }
}

impl Drop for JobHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// Counts its ticks and the items it read, like a leg that decodes what arrived.
    struct Counting {
        input: InputReceiver<u32>,
        seen: Arc<AtomicU64>,
        at: Arc<std::sync::Mutex<Vec<Duration>>>,
    }

    impl MediaJob for Counting {
        fn tick(&mut self, now: Duration) -> JobStatus {
            self.at.lock().unwrap().push(now);
            let n = self.input.drain().count() as u64;
            self.seen.fetch_add(n, Ordering::Relaxed);
            JobStatus::Continue
        }

        fn queues(&self) -> Vec<QueueStats> {
            vec![self.input.stats()]
        }
    }

    type Probe = (
        InputSender<u32>,
        Counting,
        Arc<AtomicU64>,
        Arc<std::sync::Mutex<Vec<Duration>>>,
    );

    fn counting(capacity: usize) -> Probe {
        let (tx, input) = input_queue(capacity);
        let seen = Arc::new(AtomicU64::new(0));
        let at = Arc::new(std::sync::Mutex::new(Vec::new()));
        let job = Counting {
            input,
            seen: seen.clone(),
            at: at.clone(),
        };
        (tx, job, seen, at)
    }

    fn core_with(job: impl MediaJob, now: Duration) -> (WorkerCore, Arc<JobShared>) {
        let mut core = WorkerCore::new(Arc::new(AtomicUsize::new(3)));
        let shared = Arc::new(JobShared::new(JobId(1), 0, job.queues()));
        core.add(Box::new(job), shared.clone(), now);
        (core, shared)
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn job_ticks_every_twenty_ms_in_fake_time() {
        let (_tx, job, _, at) = counting(4);
        let (mut core, shared) = core_with(job, ms(0));
        for now in 0..=1000 {
            core.run_due(ms(now));
        }
        assert_eq!(shared.counters().ticks, 50, "1 s of fake time");
        let at = at.lock().unwrap();
        assert_eq!((at[0], at[49]), (ms(20), ms(1000)));
        assert!(at.windows(2).all(|w| w[1] - w[0] == TICK));
        assert_eq!(core.run_due(ms(1000)), Some(ms(1020)), "next deadline");
    }

    #[test]
    fn late_wake_up_catches_up_then_skips_and_counts() {
        let (_tx, job, _, at) = counting(4);
        let (mut core, shared) = core_with(job, ms(0));
        core.run_due(ms(1000));
        let c = shared.counters();
        assert_eq!(
            (c.ticks, c.skipped),
            (u64::from(CATCH_UP), 50 - u64::from(CATCH_UP))
        );
        assert_eq!(*at.lock().unwrap().last().unwrap(), ms(1000));
    }

    #[test]
    fn full_input_queue_drops_and_the_handle_counts_them() {
        let (tx, job, seen, _) = counting(3);
        let (mut core, shared) = core_with(job, ms(0));
        for i in 0..5 {
            let _ = tx.try_push(i);
        }
        assert_eq!(shared.counters().input_drops, 2);
        core.run_due(ms(20));
        assert_eq!(seen.load(Ordering::Relaxed), 3);
        assert_eq!(tx.try_push(9), Ok(()), "the tick made room");
        core.run_due(ms(40));
        assert_eq!(seen.load(Ordering::Relaxed), 4);
        assert_eq!(shared.counters().input_drops, 2);
    }

    struct Finite(u32);

    impl MediaJob for Finite {
        fn tick(&mut self, _now: Duration) -> JobStatus {
            self.0 -= 1;
            if self.0 == 0 {
                JobStatus::Done
            } else {
                JobStatus::Continue
            }
        }
    }

    struct Panics;

    impl MediaJob for Panics {
        fn tick(&mut self, _now: Duration) -> JobStatus {
            panic!("codec exploded")
        }
    }

    #[test]
    fn done_stopped_and_panicking_jobs_are_dropped() {
        let (mut core, done) = core_with(Finite(3), ms(0));
        let stopped = Arc::new(JobShared::new(JobId(2), 0, Vec::new()));
        core.add(Box::new(Finite(1000)), stopped.clone(), ms(0));
        let panicked = Arc::new(JobShared::new(JobId(3), 0, Vec::new()));
        core.add(Box::new(Panics), panicked.clone(), ms(0));

        core.run_due(ms(20));
        assert!(panicked.counters().finished && panicked.counters().panicked);
        stopped.stop.store(true, Ordering::Release);
        assert_eq!(core.run_due(ms(40)), Some(ms(60)), "the finite job is left");
        assert!(stopped.counters().finished);
        assert_eq!(stopped.counters().ticks, 1, "no tick after the stop");
        assert!(!done.counters().finished);
        assert_eq!(core.run_due(ms(60)), None, "no job left");
        assert!(done.counters().finished);
        assert_eq!(done.counters().ticks, 3);
    }

    #[test]
    fn thread_counts_leave_a_core_and_honour_the_config() {
        assert_eq!(thread_count(0, 8), 7);
        assert_eq!(thread_count(0, 2), 2);
        assert_eq!(thread_count(0, 1), 2);
        assert_eq!(thread_count(0, 0), 2);
        assert_eq!(thread_count(3, 64), 3);
    }

    /// Waits for `cond` with a generous hang guard; not a timing assertion.
    fn eventually(mut cond: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if cond() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        false
    }

    #[test]
    fn submitted_job_runs_on_a_real_thread_and_stops() {
        let pool = WorkerPool::start(2).unwrap();
        let (tx, job, seen, _) = counting(16);
        let handle = pool.submit(job).unwrap();
        let (_tx2, other, _, _) = counting(16);
        let second = pool.submit(other).unwrap();
        assert_ne!(handle.worker(), second.worker(), "least-loaded placement");
        assert_eq!(pool.loads(), vec![1, 1]);

        tx.try_push(7).unwrap();
        assert!(eventually(|| seen.load(Ordering::Relaxed) == 1));
        assert!(handle.counters().ticks >= 1);
        handle.stop();
        assert!(eventually(|| handle.counters().finished));
        assert_eq!(tx.try_push(8), Err(PushError::Closed), "the job is dropped");
        assert!(eventually(|| pool.loads() == vec![0, 1]));

        drop(second);
        pool.shutdown();
        assert!(matches!(
            pool.submit(Finite(1)),
            Err(WorkersError::ShutDown)
        ));
    }
}
