//! `recording`: a mountpoint's Opus audio to an Ogg/Opus file of the recordings service and its
//! H.264 video to a Matroska file ([`super::video_recording`]), each registered in the
//! registry as kind `stream`, each a sink of its fan-out. Timestamps are made continuous
//! across publisher restarts, so a file's duration is the time recorded.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::{Map, Value};

use super::errors::{self, validate, Kind, StreamingError};
use super::mountpoints::MountpointEntry;
use crate::ids::Ssrc;
use crate::media::{Codec, MediaKind, RtpPacket};
use crate::rtp::{RtpHeader, RtpRewriter};
use crate::services::recording::{OpusRecorder, RecorderSink, RecordingService};
use crate::services::streams::{SinkId, StreamSink};
use crate::storage::{RecordingKind, Storage};

use super::video_recording::VideoRecording;

/// Feeds a recording from the fan-out.
struct RecordingSink {
    sink: RecorderSink,
    rewriter: Mutex<RtpRewriter>,
    started: Instant,
}

impl StreamSink for RecordingSink {
    fn deliver(&self, kind: MediaKind, packet: &RtpPacket) -> bool {
        if kind != MediaKind::Audio {
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
        self.sink.push(packet.payload.clone(), header.timestamp)
    }

    fn is_closed(&self) -> bool {
        false
    }
}

/// An open recording of a mountpoint: its audio, its video, or both.
pub struct OpenRecording {
    audio: Option<(OpusRecorder, SinkId)>,
    video: Option<(VideoRecording, SinkId)>,
}

/// The recordings of each mountpoint, by id.
#[derive(Default)]
pub struct Recordings {
    open: Mutex<std::collections::HashMap<u64, OpenRecording>>,
}

impl Recordings {
    /// Handles `recording` (`action` `start`/`stop`, `audio` file name or `media` list); the
    /// mountpoint's secret was checked by the caller.
    pub async fn request(
        &self,
        service: &RecordingService,
        storage: &Storage,
        mp: &Arc<MountpointEntry>,
        body: &Map<String, Value>,
    ) -> Result<Value, StreamingError> {
        validate(
            body,
            &[
                ("action", Kind::String, true),
                ("audio", Kind::String, false),
                ("video", Kind::String, false),
                ("media", Kind::Array, false),
            ],
        )?;
        match body.get("action").and_then(Value::as_str) {
            Some("start") => self.start(service, storage, mp, body).await,
            Some("stop") => {
                self.close(mp, storage).await;
                Ok(serde_json::json!({ "streaming": "ok" }))
            }
            _ => Err(StreamingError::new(
                errors::INVALID_ELEMENT,
                "Invalid action (should be start|stop)",
            )),
        }
    }

    async fn start(
        &self,
        service: &RecordingService,
        storage: &Storage,
        mp: &Arc<MountpointEntry>,
        body: &Map<String, Value>,
    ) -> Result<Value, StreamingError> {
        // The file name of `mid` from the `media` list, or the legacy field.
        let name = |mid: &str, legacy: &str| {
            body.get(legacy)
                .and_then(Value::as_str)
                .map(str::to_string)
                .or_else(|| {
                    body.get("media").and_then(Value::as_array).and_then(|m| {
                        m.iter().find_map(|s| {
                            (s.get("mid").and_then(Value::as_str) == Some(mid))
                                .then(|| {
                                    s.get("filename")
                                        .and_then(Value::as_str)
                                        .map(str::to_string)
                                })
                                .flatten()
                        })
                    })
                })
        };
        let (audio_name, video_name) = (name("a", "audio"), name("v", "video"));
        if audio_name.is_none() && video_name.is_none() {
            return Err(StreamingError::new(
                errors::INVALID_REQUEST,
                "Missing audio, video and/or data",
            ));
        }
        let streams = mp.streams();
        if audio_name.is_some()
            && !streams
                .iter()
                .any(|s| s.kind == MediaKind::Audio && s.codec == Codec::Opus)
        {
            return Err(StreamingError::new(
                errors::CANT_RECORD,
                "Recording is only available for Opus audio",
            ));
        }
        if video_name.is_some()
            && !streams
                .iter()
                .any(|s| s.kind == MediaKind::Video && matches!(s.codec, Codec::H264 { .. }))
        {
            return Err(StreamingError::new(
                errors::CANT_RECORD,
                "Video recording is only available for H.264",
            ));
        }
        if self
            .open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(&mp.id)
        {
            return Err(StreamingError::new(
                errors::INVALID_REQUEST,
                "Recording for audio, video and/or data already started for this stream",
            ));
        }
        let owner = format!("mountpoint-{}", mp.id);
        let cant = |e: String| {
            StreamingError::new(errors::CANT_RECORD, format!("Error starting recorder: {e}"))
        };
        let audio = match &audio_name {
            None => None,
            Some(name) => Some(
                service
                    .start_opus(
                        RecordingKind::Stream,
                        &owner,
                        &format!("streaming/{}/{name}.opus", mp.id),
                    )
                    .await
                    .map_err(|e| cant(e.to_string()))?,
            ),
        };
        let video = match &video_name {
            None => None,
            Some(name) => {
                let started = VideoRecording::start(
                    storage,
                    service.dir().to_path_buf(),
                    &owner,
                    &format!("streaming/{}/{name}.mkv", mp.id),
                )
                .await;
                match started {
                    Ok(v) => Some(v),
                    Err(e) => {
                        if let Some(a) = audio {
                            let _ = a.finish().await;
                        }
                        return Err(cant(e));
                    }
                }
            }
        };
        let audio = audio.map(|recorder| {
            let sink = mp.hub.add_stream_sink(Arc::new(RecordingSink {
                sink: recorder.sink(),
                rewriter: Mutex::new(RtpRewriter::new(Ssrc(1), 48_000)),
                started: Instant::now(),
            }));
            tracing::info!(mountpoint = mp.id, file = %recorder.row().meta.file_path, "mountpoint recording audio");
            (recorder, sink)
        });
        let video = video.map(|v| {
            // Added to the fan-out, the sink gets the cached keyframe first: the file starts
            // there without waiting for the next one (an RTP source is also asked for one).
            let sink = mp.hub.add_stream_sink(v.sink.clone());
            mp.request_source_keyframe();
            tracing::info!(mountpoint = mp.id, file = %v.row().meta.file_path, "mountpoint recording video");
            (v, sink)
        });
        let previous = self
            .open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(mp.id, OpenRecording { audio, video });
        if let Some(previous) = previous {
            finish(mp, storage, previous).await;
        }
        Ok(serde_json::json!({ "streaming": "ok" }))
    }

    /// Closes the recording of mountpoint `mp`, if any (`stop`, or the mountpoint is going
    /// away).
    pub async fn close(&self, mp: &MountpointEntry, storage: &Storage) {
        let open = self
            .open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&mp.id);
        if let Some(open) = open {
            finish(mp, storage, open).await;
        }
    }
}

async fn finish(mp: &MountpointEntry, storage: &Storage, open: OpenRecording) {
    if let Some((recorder, sink)) = open.audio {
        mp.hub.remove_sink(sink);
        match recorder.finish().await {
            Ok(row) => tracing::info!(
                mountpoint = mp.id,
                file = %row.meta.file_path,
                duration_ms = row.meta.duration_ms,
                "mountpoint recording saved"
            ),
            Err(e) => {
                tracing::warn!(mountpoint = mp.id, error = %e, "mountpoint recording not saved")
            }
        }
    }
    if let Some((video, sink)) = open.video {
        mp.hub.remove_sink(sink);
        let file = video.row().meta.file_path.clone();
        match video.finish(storage).await {
            Ok(duration_ms) => tracing::info!(
                mountpoint = mp.id,
                %file,
                duration_ms,
                "mountpoint video recording saved"
            ),
            Err(e) => {
                tracing::warn!(mountpoint = mp.id, %file, error = %e, "mountpoint video recording not saved")
            }
        }
    }
}
