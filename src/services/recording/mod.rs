//! Recordings: Opus → Ogg files written on one writer thread, each with a row in the registry.
//!
//! [`RecordingService`] is started once at boot with the recordings directory (`[recordings]
//! dir`) and the [`Storage`]. A plugin starts a recording with
//! [`RecordingService::start_opus`], feeds it RTP payloads with [`OpusRecorder::push`] (sync,
//! non-blocking: usable from media callbacks and worker jobs) and ends it with
//! [`OpusRecorder::finish`].
//!
//! - **Files**: Ogg Opus (RFC 7845) as [`ogg`] writes it: pages flushed as they are completed,
//!   so a crash leaves a file that plays up to its last page; timing from the RTP timestamps.
//! - **Threads**: one writer thread owns every open file and is fed through one bounded queue
//!   ([`DEFAULT_QUEUE_CAPACITY`] packets in flight, drops counted): media tasks and workers never touch
//!   the disk and never wait for it.
//! - **Registry**: the `recordings` row is created when the recording *starts* (duration and
//!   size 0) and updated when it finishes. So a crash still leaves a row pointing at the
//!   playable file, recognisable by its zero size; the panel can list it and an operator can
//!   tell it was cut short. A recording that got no packet leaves neither file nor row.

pub mod matroska;
pub mod ogg;
mod recorder;

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, Sender};
use std::sync::Arc;

use tokio::sync::oneshot;

pub use recorder::{OpusRecorder, RecorderSink};

use crate::storage::{validate, NewRecording, RecordingKind, Storage, StorageError, Timestamp};
use recorder::{Command, Shared, Writer};

/// Packets that may wait for the writer thread, over all recordings: about 80 s of one 20 ms
/// stream, or 0.8 s of 100 streams, i.e. a disk stall of that length loses nothing. At most
/// ~1.3 MB of Opus payloads.
pub const DEFAULT_QUEUE_CAPACITY: usize = 4096;

/// Why a recording could not be started or finished.
#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    /// The registry refused or failed: invalid owner or path (nothing written), a path already
    /// registered, a database error.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The recordings directory could not be created.
    #[error("recordings directory {path}: {source}")]
    Dir {
        /// The configured directory.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The file could not be created or written (disk full, permissions, existing file).
    #[error("recording file {path}: {reason}")]
    Write {
        /// Absolute (or working-directory-relative) path of the file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// No packet was recorded: the file and the row were removed.
    #[error("nothing was recorded")]
    Empty,
    /// The service was started outside a tokio runtime (it updates the registry on one).
    #[error("the recording service must be started inside a tokio runtime")]
    NoRuntime,
    /// The writer thread could not be started.
    #[error("cannot start the recording writer thread: {0}")]
    Spawn(std::io::Error),
    /// The service has been shut down.
    #[error("the recording service is stopped")]
    Stopped,
}

/// Counters of the whole service, for the panel's live view and the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RecordingStats {
    /// Files open now.
    pub open: usize,
    /// Packets waiting for the writer thread now.
    pub queued: usize,
    /// Packets dropped because the queue was full, since start.
    pub dropped: u64,
    /// Packets dropped by the writers as late or duplicate (RTP reordering), since start.
    pub late: u64,
    /// Payloads that were not Opus packets, since start.
    pub invalid: u64,
    /// Recordings cut short by a write error (disk full, I/O error), since start.
    pub write_errors: u64,
}

struct Inner {
    dir: PathBuf,
    storage: Storage,
    tx: Sender<Command>,
    shared: Arc<Shared>,
}

/// The recording service: cheap to clone, shared by every plugin that records.
#[derive(Clone)]
pub struct RecordingService {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RecordingService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordingService")
            .field("dir", &self.inner.dir)
            .finish_non_exhaustive()
    }
}

impl RecordingService {
    /// Creates `dir` if needed and starts the writer thread (`bifrons-recorder`). Must be called
    /// inside a tokio runtime, on which registry rows are updated when files close.
    pub fn start(dir: impl Into<PathBuf>, storage: Storage) -> Result<Self, RecordingError> {
        Self::start_with_capacity(dir, storage, DEFAULT_QUEUE_CAPACITY)
    }

    /// [`RecordingService::start`] with a queue of `capacity` packets instead of
    /// [`DEFAULT_QUEUE_CAPACITY`].
    pub fn start_with_capacity(
        dir: impl Into<PathBuf>,
        storage: Storage,
        capacity: usize,
    ) -> Result<Self, RecordingError> {
        let dir = dir.into();
        let runtime =
            tokio::runtime::Handle::try_current().map_err(|_| RecordingError::NoRuntime)?;
        std::fs::create_dir_all(&dir).map_err(|source| RecordingError::Dir {
            path: dir.clone(),
            source,
        })?;
        let shared = Arc::new(Shared {
            capacity,
            ..Shared::default()
        });
        let (tx, rx) = mpsc::channel();
        let writer = Writer::new(rx, shared.clone(), storage.clone(), runtime);
        std::thread::Builder::new()
            .name("bifrons-recorder".into())
            .spawn(move || writer.run())
            .map_err(RecordingError::Spawn)?;
        Ok(Self {
            inner: Arc::new(Inner {
                dir,
                storage,
                tx,
                shared,
            }),
        })
    }

    /// The recordings directory; rows hold paths relative to it.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Starts an Opus recording into `relative_name` (relative to [`RecordingService::dir`],
    /// e.g. `voicemail/1001/20250101-120000.opus`; directories are created), registered as
    /// `kind` for `owner` (user, room, mailbox: 1..=64 characters) with codec `opus`.
    ///
    /// The row is created first (duration and size 0), then the file. Errors:
    /// [`RecordingError::Storage`] with `Invalid` for a bad owner or a path that is absolute or
    /// has `..` (nothing written), `AlreadyExists` for a path already registered;
    /// [`RecordingError::Write`] when the file exists already or cannot be created (the row is
    /// removed again).
    pub async fn start_opus(
        &self,
        kind: RecordingKind,
        owner: &str,
        relative_name: &str,
    ) -> Result<OpusRecorder, RecordingError> {
        validate::relative_path("file path", relative_name)?;
        let recordings = self.inner.storage.recordings();
        let row = recordings
            .create(&NewRecording {
                kind,
                owner: owner.to_owned(),
                caller: None,
                file_path: relative_name.to_owned(),
                codec: "opus".into(),
                duration_ms: 0,
                size_bytes: 0,
                created: Timestamp::now(),
            })
            .await?;
        let path = self.inner.dir.join(relative_name);
        let (reply, rx) = oneshot::channel();
        let opened = match self.inner.tx.send(Command::Open {
            id: row.id,
            path: path.clone(),
            reply,
        }) {
            Ok(()) => rx.await.map_err(|_| RecordingError::Stopped).and_then(|r| {
                r.map_err(|e| RecordingError::Write {
                    path,
                    reason: e.to_string(),
                })
            }),
            Err(_) => Err(RecordingError::Stopped),
        };
        if let Err(e) = opened {
            if let Err(cleanup) = recordings.delete(row.id).await {
                tracing::warn!(recording = %row.id, "cannot remove the row of a failed recording: {cleanup}");
            }
            return Err(e);
        }
        Ok(OpusRecorder::new(
            row,
            self.inner.tx.clone(),
            self.inner.shared.clone(),
        ))
    }

    /// [`RecordingService::start_opus`] for one side of a call (kind `call`), with who called
    /// whom in the row's `caller` and `callee` (texts longer than the registry takes are cut).
    /// A row whose parties cannot be written keeps the recording going (a log line says so).
    ///
    /// Errors: as [`RecordingService::start_opus`].
    pub async fn start_call_opus(
        &self,
        owner: &str,
        relative_name: &str,
        caller: &str,
        callee: &str,
    ) -> Result<OpusRecorder, RecordingError> {
        let recorder = self
            .start_opus(RecordingKind::Call, owner, relative_name)
            .await?;
        let cut = |t: &str| -> String { t.chars().take(validate::MAX_TEXT_LEN).collect() };
        let id = recorder.row().id;
        if let Err(e) = self
            .inner
            .storage
            .recordings()
            .set_parties(id, Some(&cut(caller)), Some(&cut(callee)))
            .await
        {
            tracing::warn!(recording = %id, error = %e, "call recording without its parties");
        }
        Ok(recorder)
    }

    /// Counters now.
    pub fn stats(&self) -> RecordingStats {
        let s = &self.inner.shared;
        RecordingStats {
            open: s.open.load(Ordering::Relaxed),
            queued: s.queued.load(Ordering::Relaxed),
            dropped: s.dropped.load(Ordering::Relaxed),
            late: s.late.load(Ordering::Relaxed),
            invalid: s.invalid.load(Ordering::Relaxed),
            write_errors: s.write_errors.load(Ordering::Relaxed),
        }
    }

    /// Closes every open recording (end-of-stream pages, rows updated), waits for the registry
    /// updates and stops the writer thread. Recorders still alive afterwards are inert.
    pub async fn shutdown(&self) {
        let (reply, rx) = oneshot::channel();
        if self.inner.tx.send(Command::Shutdown { reply }).is_err() {
            return;
        }
        if let Ok(updates) = rx.await {
            for update in updates {
                let _ = update.await;
            }
        }
    }
}
