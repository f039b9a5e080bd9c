//! Recording a mountpoint's H.264 video to a Matroska file (beside the Ogg/Opus audio of
//! [`super::recording`]): the fan-out hands each video packet, with SSRC, sequence numbers and
//! timestamps made continuous across publisher restarts, to a writer thread of its own that
//! rebuilds access units (RFC 6184 depacketization), waits for a keyframe with its SPS and PPS,
//! and writes them with [`MatroskaH264Writer`]. The file is registered in `recordings`
//! (kind `stream`, codec `h264`) when it starts and updated with its duration and size when it
//! ends. Nothing of this runs on the async runtime or touches the disk from the fan-out.

use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bifrons_rtmp::rtp::{DepacketizedFrame, H264Depacketizer, H264RtpPacket};
use bytes::Bytes;

use crate::ids::Ssrc;
use crate::media::{MediaKind, RtpPacket};
use crate::rtp::{RtpHeader, RtpRewriter};
use crate::services::recording::matroska::{avc_decoder_configuration, MatroskaH264Writer};
use crate::services::streams::StreamSink;
use crate::storage::{NewRecording, Recording, RecordingKind, Storage, Timestamp};
use bifrons_rtmp::rtp::sps::picture_size;

/// Packets queued for the writer thread (about 2 s of 4 Mbit/s video); beyond, dropped.
const QUEUE: usize = 2048;
/// Packets the depacketizer waits for a late one.
const REORDER_WINDOW: u16 = 64;
/// Duration given to the last frame, in ms (one frame at 30 fps).
const LAST_FRAME_MS: u64 = 33;

/// Feeds the writer thread from the fan-out.
pub struct VideoRecordingSink {
    tx: SyncSender<H264RtpPacket>,
    rewriter: Mutex<RtpRewriter>,
    started: Instant,
    /// Packets dropped because the writer thread fell behind.
    pub dropped: AtomicU64,
}

impl StreamSink for VideoRecordingSink {
    fn deliver(&self, kind: MediaKind, packet: &RtpPacket) -> bool {
        if kind != MediaKind::Video {
            return true;
        }
        let header = self
            .rewriter
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .rewrite(
                RtpHeader {
                    ssrc: Ssrc(packet.ssrc),
                    sequence_number: packet.sequence_number,
                    timestamp: packet.timestamp,
                },
                self.started.elapsed(),
            );
        let sent = self.tx.try_send(H264RtpPacket {
            seq: header.sequence_number,
            timestamp: header.timestamp,
            marker: packet.marker,
            payload: packet.payload.clone(),
        });
        match sent {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                false
            }
            Err(TrySendError::Disconnected(_)) => false,
        }
    }

    fn is_closed(&self) -> bool {
        false
    }
}

/// What the writer thread ends with: the duration (ms) and size (bytes) written, or why
/// nothing was.
type Outcome = Result<(u64, u64), String>;

/// An H.264 recording in progress.
pub struct VideoRecording {
    /// The sink to add to the mountpoint's fan-out.
    pub sink: Arc<VideoRecordingSink>,
    row: Recording,
    thread: std::thread::JoinHandle<Outcome>,
}

impl VideoRecording {
    /// Registers `relative` (under `dir`) as a recording of `owner` and starts its writer
    /// thread. Errors: the registry's (bad path, path taken), or the thread's.
    pub async fn start(
        storage: &Storage,
        dir: PathBuf,
        owner: &str,
        relative: &str,
    ) -> Result<Self, String> {
        crate::storage::validate::relative_path("file path", relative)
            .map_err(|e| e.to_string())?;
        let row = storage
            .recordings()
            .create(&NewRecording {
                kind: RecordingKind::Stream,
                owner: owner.to_owned(),
                caller: None,
                file_path: relative.to_owned(),
                codec: "h264".into(),
                duration_ms: 0,
                size_bytes: 0,
                created: Timestamp::now(),
            })
            .await
            .map_err(|e| e.to_string())?;
        let path = dir.join(relative);
        let (tx, rx) = sync_channel(QUEUE);
        let thread = std::thread::Builder::new()
            .name("bifrons-h264-rec".into())
            .spawn(move || write(rx, path))
            .map_err(|e| e.to_string());
        let thread = match thread {
            Ok(t) => t,
            Err(e) => {
                let _ = storage.recordings().delete(row.id).await;
                return Err(e);
            }
        };
        Ok(Self {
            sink: Arc::new(VideoRecordingSink {
                tx,
                rewriter: Mutex::new(RtpRewriter::new(Ssrc(1), 90_000)),
                started: Instant::now(),
                dropped: AtomicU64::new(0),
            }),
            row,
            thread,
        })
    }

    /// The registry row (path relative to the recordings directory).
    pub fn row(&self) -> &Recording {
        &self.row
    }

    /// Ends the recording (the sink must be out of the fan-out): the file is closed, the row
    /// updated with its duration and size, or removed when nothing was written. Returns the
    /// duration in ms.
    pub async fn finish(self, storage: &Storage) -> Result<u64, String> {
        let Self { sink, row, thread } = self;
        drop(sink);
        let outcome = tokio::task::spawn_blocking(move || thread.join())
            .await
            .map_err(|e| e.to_string())?
            .map_err(|_| "the H.264 recording thread panicked".to_string())?;
        match outcome {
            Ok((duration, size)) => {
                storage
                    .recordings()
                    .finish(row.id, duration, size)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(duration)
            }
            Err(e) => {
                let _ = storage.recordings().delete(row.id).await;
                Err(e)
            }
        }
    }
}

/// The file of one recording: opened at the first keyframe that brings its SPS and PPS.
struct Muxer {
    path: PathBuf,
    writer: Option<MatroskaH264Writer<BufWriter<File>>>,
    /// RTP timestamp of the last frame, and the 90 kHz ticks since the first (unwrapped).
    last_ts: Option<u32>,
    ticks: i64,
}

impl Muxer {
    fn frame(&mut self, frame: &DepacketizedFrame) -> Result<(), String> {
        if let Some(prev) = self.last_ts {
            self.ticks += i64::from(frame.timestamp.wrapping_sub(prev) as i32);
        }
        self.last_ts = Some(frame.timestamp);
        if self.writer.is_none() {
            if !frame.keyframe {
                return Ok(());
            }
            let nal = |t: u8| {
                frame
                    .nalus
                    .iter()
                    .find(|n| n.first().is_some_and(|h| h & 0x1f == t))
            };
            let (Some(sps), Some(pps)) = (nal(7), nal(8)) else {
                return Ok(());
            };
            let (Some((width, height)), Some(avcc)) =
                (picture_size(sps), avc_decoder_configuration(sps, pps))
            else {
                return Ok(());
            };
            if let Some(dir) = self.path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            }
            let file = File::options()
                .write(true)
                .create_new(true)
                .open(&self.path)
                .map_err(|e| format!("{}: {e}", self.path.display()))?;
            self.writer = Some(
                MatroskaH264Writer::new(BufWriter::new(file), width, height, &avcc)
                    .map_err(|e| e.to_string())?,
            );
            tracing::info!(file = %self.path.display(), width, height, "H.264 recording started at a keyframe");
        }
        let Some(w) = self.writer.as_mut() else {
            return Ok(());
        };
        // Access unit delimiters carry nothing a file needs.
        let nalus: Vec<&[u8]> = frame
            .nalus
            .iter()
            .filter(|n| n.first().is_some_and(|h| h & 0x1f != 9))
            .map(Bytes::as_ref)
            .collect();
        w.write_frame(self.ticks.max(0) as u64 / 90, frame.keyframe, &nalus)
            .map_err(|e| e.to_string())
    }
}

/// The writer thread: until the sink is dropped, rebuilds access units and writes them from
/// the first keyframe that brings its SPS and PPS. A write error stops the writing (the rest
/// is read and dropped); the file is then closed as far as it got.
fn write(rx: Receiver<H264RtpPacket>, path: PathBuf) -> Outcome {
    let mut depacketizer = H264Depacketizer::new(REORDER_WINDOW);
    let mut frames = Vec::new();
    let mut muxer = Muxer {
        path,
        writer: None,
        last_ts: None,
        ticks: 0,
    };
    let mut failure: Option<String> = None;
    let mut feed = |frames: &mut Vec<DepacketizedFrame>, failure: &mut Option<String>| {
        for frame in frames.drain(..) {
            if failure.is_some() {
                continue;
            }
            if let Err(e) = muxer.frame(&frame) {
                tracing::warn!(file = %muxer.path.display(), error = %e, "H.264 recording stopped writing");
                *failure = Some(e);
            }
        }
    };
    for packet in rx {
        depacketizer.push(packet, &mut frames);
        feed(&mut frames, &mut failure);
    }
    depacketizer.flush(&mut frames);
    feed(&mut frames, &mut failure);
    // After a write error, what was written is kept if the file can still be closed.
    let Some(w) = muxer.writer else {
        return Err(failure.unwrap_or_else(|| "no keyframe with SPS and PPS was recorded".into()));
    };
    let (_, duration, size) = w.finish(LAST_FRAME_MS).map_err(|e| e.to_string())?;
    Ok((duration, size))
}
