//! The writer thread that owns every open recording file, and the handles that feed it.
//!
//! One thread per service does all recording I/O, so media tasks and codec workers never touch
//! the disk: they hand packets over through [`RecorderSink::push`], which never blocks. The
//! thread also closes idle pages (a quiet stream still reaches the disk) and, when a file is
//! closed, has the registry row updated on the async runtime.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufWriter};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::ogg::{OggError, OggOpusWriter, Pushed};
use super::RecordingError;
use crate::storage::{Recording, RecordingId, Storage};

/// How often the writer thread looks for idle pages.
const SWEEP_EVERY: Duration = Duration::from_millis(250);

/// A page in progress older than this (wall clock) is written out even if short, so that DTX
/// or a held call does not keep recorded audio in memory.
const IDLE_PAGE: Duration = Duration::from_secs(1);

/// `OpusTags` vendor string.
const VENDOR: &str = concat!("Bifrons ", env!("CARGO_PKG_VERSION"));

/// Answer to a close: the finished row.
pub(super) type CloseReply = oneshot::Sender<Result<Recording, RecordingError>>;

/// What the service and the recorders tell the writer thread, in one FIFO so that a close is
/// always handled after the packets pushed before it.
pub(super) enum Command {
    Open {
        id: RecordingId,
        path: PathBuf,
        reply: oneshot::Sender<io::Result<()>>,
    },
    Packet {
        id: RecordingId,
        payload: Bytes,
        rtp_timestamp: u32,
    },
    /// Close the file (end-of-stream page) and update the row; `reply` is `None` when the
    /// recorder was dropped without `finish`.
    Close {
        id: RecordingId,
        reply: Option<CloseReply>,
    },
    /// Close every file, then answer with the registry updates still running.
    Shutdown {
        reply: oneshot::Sender<Vec<JoinHandle<()>>>,
    },
}

/// Counters shared by the service, its recorders and the writer thread.
#[derive(Debug, Default)]
pub(super) struct Shared {
    /// Packets queued for the writer thread (the queue's bound is on these).
    pub(super) queued: AtomicUsize,
    /// Bound on `queued`.
    pub(super) capacity: usize,
    /// Packets refused because the queue was full.
    pub(super) dropped: AtomicU64,
    /// Packets dropped by the writer as late or duplicate.
    pub(super) late: AtomicU64,
    /// Payloads that were not Opus packets.
    pub(super) invalid: AtomicU64,
    /// Recordings whose file could not be written.
    pub(super) write_errors: AtomicU64,
    /// Files open on the writer thread.
    pub(super) open: AtomicUsize,
}

/// Counters of one recording.
#[derive(Debug, Default)]
struct SinkCounters {
    queued: AtomicU64,
    dropped: AtomicU64,
}

/// A packet feeder for one recording: `Clone + Send`, for media callbacks and worker jobs.
/// Pushing after the recording was finished is harmless (the packets are ignored).
#[derive(Debug, Clone)]
pub struct RecorderSink {
    id: RecordingId,
    tx: Sender<Command>,
    shared: Arc<Shared>,
    counters: Arc<SinkCounters>,
}

impl RecorderSink {
    /// Queues one Opus packet (an RTP payload) with its RTP timestamp (48 kHz clock) for the
    /// writer thread. Never blocks and never touches the disk: when the service's queue is full
    /// the packet is dropped and counted, and `false` is returned.
    pub fn push(&self, payload: Bytes, rtp_timestamp: u32) -> bool {
        let shared = &self.shared;
        if shared.queued.fetch_add(1, Ordering::AcqRel) >= shared.capacity {
            shared.queued.fetch_sub(1, Ordering::AcqRel);
            shared.dropped.fetch_add(1, Ordering::Relaxed);
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        let sent = self.tx.send(Command::Packet {
            id: self.id,
            payload,
            rtp_timestamp,
        });
        if sent.is_err() {
            shared.queued.fetch_sub(1, Ordering::AcqRel);
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        self.counters.queued.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// Packets handed to the writer thread so far.
    pub fn pushed(&self) -> u64 {
        self.counters.queued.load(Ordering::Relaxed)
    }

    /// Packets of this recording dropped because the queue was full (or the service stopped).
    pub fn dropped(&self) -> u64 {
        self.counters.dropped.load(Ordering::Relaxed)
    }
}

/// One recording in progress, owned by the plugin that started it. Feed it with
/// [`OpusRecorder::push`] (or clones of [`OpusRecorder::sink`]); end it with
/// [`OpusRecorder::finish`]. Dropping it without `finish` still closes the file and updates
/// the row, in the background.
#[derive(Debug)]
pub struct OpusRecorder {
    sink: RecorderSink,
    row: Recording,
    finished: bool,
}

impl OpusRecorder {
    pub(super) fn new(row: Recording, tx: Sender<Command>, shared: Arc<Shared>) -> Self {
        Self {
            sink: RecorderSink {
                id: row.id,
                tx,
                shared,
                counters: Arc::default(),
            },
            row,
            finished: false,
        }
    }

    /// The registry row, as registered at start (duration and size 0 until finished).
    pub fn row(&self) -> &Recording {
        &self.row
    }

    /// See [`RecorderSink::push`].
    pub fn push(&self, payload: Bytes, rtp_timestamp: u32) -> bool {
        self.sink.push(payload, rtp_timestamp)
    }

    /// A feeder to hand to a media callback or a worker job.
    pub fn sink(&self) -> RecorderSink {
        self.sink.clone()
    }

    /// Writes the end-of-stream page, closes the file and records its duration (ms) and size
    /// (bytes) in the row, which it returns. Packets pushed before this call are written first.
    ///
    /// Errors: [`RecordingError::Empty`] when no packet was recorded (file and row are
    /// removed), [`RecordingError::Write`] when the file could not be written (file and row
    /// are left as they are), [`RecordingError::Storage`] when the row update failed,
    /// [`RecordingError::Stopped`] when the service is gone.
    pub async fn finish(mut self) -> Result<Recording, RecordingError> {
        self.finished = true;
        let (reply, rx) = oneshot::channel();
        self.sink
            .tx
            .send(Command::Close {
                id: self.row.id,
                reply: Some(reply),
            })
            .map_err(|_| RecordingError::Stopped)?;
        rx.await.map_err(|_| RecordingError::Stopped)?
    }
}

impl Drop for OpusRecorder {
    fn drop(&mut self) {
        if !self.finished {
            let _ = self.sink.tx.send(Command::Close {
                id: self.row.id,
                reply: None,
            });
        }
    }
}

/// An open recording on the writer thread.
struct OpenFile {
    writer: OggOpusWriter<BufWriter<File>>,
    path: PathBuf,
    /// Bytes on disk when the last page went out, and when that was.
    bytes: u64,
    last_page: Instant,
    /// Set when a write failed; later packets are ignored.
    failed: Option<String>,
}

/// State of the writer thread.
pub(super) struct Writer {
    rx: Receiver<Command>,
    shared: Arc<Shared>,
    storage: Storage,
    /// Where registry updates run (the writer thread itself never awaits).
    runtime: tokio::runtime::Handle,
    files: HashMap<RecordingId, OpenFile>,
    updates: Vec<JoinHandle<()>>,
}

impl Writer {
    pub(super) fn new(
        rx: Receiver<Command>,
        shared: Arc<Shared>,
        storage: Storage,
        runtime: tokio::runtime::Handle,
    ) -> Self {
        Self {
            rx,
            shared,
            storage,
            runtime,
            files: HashMap::new(),
            updates: Vec::new(),
        }
    }

    /// The thread's loop; returns when asked to shut down or when every sender is gone.
    pub(super) fn run(mut self) {
        let mut last_sweep = Instant::now();
        loop {
            match self.rx.recv_timeout(SWEEP_EVERY) {
                Ok(Command::Shutdown { reply }) => {
                    self.close_all();
                    let _ = reply.send(std::mem::take(&mut self.updates));
                    return;
                }
                Ok(Command::Open { id, path, reply }) => {
                    let _ = reply.send(self.open(id, path));
                }
                Ok(Command::Packet {
                    id,
                    payload,
                    rtp_timestamp,
                }) => {
                    self.shared.queued.fetch_sub(1, Ordering::AcqRel);
                    if let Some(f) = self.files.get_mut(&id) {
                        write_packet(f, &self.shared, id, &payload, rtp_timestamp);
                    }
                }
                Ok(Command::Close { id, reply }) => self.close(id, reply),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    self.close_all();
                    return;
                }
            }
            if last_sweep.elapsed() >= SWEEP_EVERY {
                self.sweep();
                self.updates.retain(|u| !u.is_finished());
                last_sweep = Instant::now();
            }
        }
    }

    /// Creates the file of recording `id`.
    fn open(&mut self, id: RecordingId, path: PathBuf) -> io::Result<()> {
        let file = create(&path)?;
        let writer = OggOpusWriter::new(file, rand::random(), VENDOR);
        self.files.insert(
            id,
            OpenFile {
                writer,
                path,
                bytes: 0,
                last_page: Instant::now(),
                failed: None,
            },
        );
        self.shared.open.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Closes files whose page in progress has waited too long.
    fn sweep(&mut self) {
        for (id, f) in &mut self.files {
            if f.failed.is_none() && f.last_page.elapsed() >= IDLE_PAGE {
                let result = f.writer.end_page();
                note_written(f, &self.shared, *id, result.map(|()| Pushed::Appended));
                f.last_page = Instant::now();
            }
        }
    }

    fn close_all(&mut self) {
        let ids: Vec<RecordingId> = self.files.keys().copied().collect();
        for id in ids {
            self.close(id, None);
        }
    }

    /// Ends the file of recording `id` and has its row updated (or removed when it is empty).
    fn close(&mut self, id: RecordingId, reply: Option<CloseReply>) {
        let Some(f) = self.files.remove(&id) else {
            if let Some(reply) = reply {
                let _ = reply.send(Err(RecordingError::Stopped));
            }
            return;
        };
        self.shared.open.fetch_sub(1, Ordering::Relaxed);
        let outcome = finish_file(f);
        let storage = self.storage.clone();
        let update = self.runtime.spawn(async move {
            let result = match outcome {
                Ok(Some((duration_ms, size_bytes))) => storage
                    .recordings()
                    .finish(id, duration_ms, size_bytes)
                    .await
                    .map_err(RecordingError::from),
                Ok(None) => match storage.recordings().delete(id).await {
                    Ok(_) => Err(RecordingError::Empty),
                    Err(e) => Err(e.into()),
                },
                Err(e) => Err(e),
            };
            match (&result, reply) {
                (_, Some(reply)) => {
                    let _ = reply.send(result);
                }
                (Err(RecordingError::Empty), None) => {}
                (Err(e), None) => tracing::warn!(recording = %id, "recording not finished: {e}"),
                (Ok(_), None) => {}
            }
        });
        self.updates.push(update);
    }
}

/// Creates the file (and its directories); an existing file is never overwritten.
fn create(path: &std::path::Path) -> io::Result<BufWriter<File>> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    // Larger than any Ogg page (at most 65,307 bytes), so each page is one write.
    Ok(BufWriter::with_capacity(64 * 1024, File::create_new(path)?))
}

fn write_packet(f: &mut OpenFile, shared: &Shared, id: RecordingId, payload: &[u8], ts: u32) {
    if f.failed.is_some() {
        return;
    }
    let result = f.writer.push(payload, ts);
    note_written(f, shared, id, result);
}

/// Accounts for the outcome of a write: late and invalid packets are counted, an I/O error
/// marks the recording failed (logged once).
fn note_written(
    f: &mut OpenFile,
    shared: &Shared,
    id: RecordingId,
    result: Result<Pushed, OggError>,
) {
    match result {
        Ok(Pushed::Appended) => {}
        Ok(Pushed::Late) => {
            shared.late.fetch_add(1, Ordering::Relaxed);
        }
        Err(OggError::Packet(e)) => {
            shared.invalid.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(recording = %id, "packet not recorded: {e}");
        }
        Err(OggError::Io(e)) => {
            shared.write_errors.fetch_add(1, Ordering::Relaxed);
            tracing::error!(recording = %id, path = %f.path.display(), "recording stopped: {e}");
            f.failed = Some(e.to_string());
        }
    }
    let bytes = f.writer.stats().bytes;
    if bytes != f.bytes {
        f.bytes = bytes;
        f.last_page = Instant::now();
    }
}

/// Writes the end-of-stream page and syncs the file. `Some((duration ms, size bytes))`, or
/// `None` for a recording without audio, whose file is removed.
fn finish_file(f: OpenFile) -> Result<Option<(u64, u64)>, RecordingError> {
    let path = f.path;
    let write_error = |e: String| RecordingError::Write {
        path: path.clone(),
        reason: e,
    };
    if let Some(reason) = f.failed {
        return Err(write_error(reason));
    }
    let had_audio = f.writer.has_audio();
    let (out, stats) = f.writer.finish().map_err(|e| write_error(e.to_string()))?;
    let file = out
        .into_inner()
        .map_err(|e| write_error(e.error().to_string()))?;
    if !had_audio {
        drop(file);
        std::fs::remove_file(&path).map_err(|e| write_error(e.to_string()))?;
        return Ok(None);
    }
    // One fsync per recording, when it ends: a finished recording survives a power cut.
    file.sync_data().map_err(|e| write_error(e.to_string()))?;
    Ok(Some((stats.duration_ms(), stats.bytes)))
}
