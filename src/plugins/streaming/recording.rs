//! `recording`: a mountpoint's Opus audio to an Ogg/Opus file of the recordings service
//! (registered in the registry as kind `stream`), as a sink of its fan-out. Timestamps are
//! made continuous across publisher restarts, so the file's duration is the time recorded.

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
use crate::storage::RecordingKind;

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

/// An open recording of a mountpoint.
pub struct OpenRecording {
    recorder: OpusRecorder,
    sink: SinkId,
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
            Some("start") => self.start(service, mp, body).await,
            Some("stop") => {
                let open = self
                    .open
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&mp.id);
                if let Some(open) = open {
                    finish(mp, open).await;
                }
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
        mp: &Arc<MountpointEntry>,
        body: &Map<String, Value>,
    ) -> Result<Value, StreamingError> {
        let from_media = body.get("media").and_then(Value::as_array).and_then(|m| {
            m.iter().find_map(|s| {
                (s.get("mid").and_then(Value::as_str) == Some("a"))
                    .then(|| {
                        s.get("filename")
                            .and_then(Value::as_str)
                            .map(str::to_string)
                    })
                    .flatten()
            })
        });
        let Some(name) = body
            .get("audio")
            .and_then(Value::as_str)
            .map(str::to_string)
            .or(from_media)
        else {
            return Err(StreamingError::new(
                errors::INVALID_REQUEST,
                if body.contains_key("video") {
                    "Only audio can be recorded for now"
                } else {
                    "Missing audio, video and/or data"
                },
            ));
        };
        if !mp
            .streams()
            .iter()
            .any(|s| s.kind == MediaKind::Audio && s.codec == Codec::Opus)
        {
            return Err(StreamingError::new(
                errors::CANT_RECORD,
                "Recording is only available for Opus audio",
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
        let file = format!("streaming/{}/{name}.opus", mp.id);
        let recorder = service
            .start_opus(
                RecordingKind::Stream,
                &format!("mountpoint-{}", mp.id),
                &file,
            )
            .await
            .map_err(|e| {
                StreamingError::new(errors::CANT_RECORD, format!("Error starting recorder: {e}"))
            })?;
        let sink = mp.hub.add_stream_sink(Arc::new(RecordingSink {
            sink: recorder.sink(),
            rewriter: Mutex::new(RtpRewriter::new(Ssrc(1), 48_000)),
            started: Instant::now(),
        }));
        tracing::info!(mountpoint = mp.id, file = %recorder.row().meta.file_path, "mountpoint recording");
        let previous = self
            .open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(mp.id, OpenRecording { recorder, sink });
        if let Some(previous) = previous {
            finish(mp, previous).await;
        }
        Ok(serde_json::json!({ "streaming": "ok" }))
    }

    /// Closes the recording of mountpoint `mp`, if any (the mountpoint is going away).
    pub async fn close(&self, mp: &MountpointEntry) {
        let open = self
            .open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&mp.id);
        if let Some(open) = open {
            finish(mp, open).await;
        }
    }
}

async fn finish(mp: &MountpointEntry, open: OpenRecording) {
    mp.hub.remove_sink(open.sink);
    match open.recorder.finish().await {
        Ok(row) => tracing::info!(
            mountpoint = mp.id,
            file = %row.meta.file_path,
            duration_ms = row.meta.duration_ms,
            "mountpoint recording saved"
        ),
        Err(e) => tracing::warn!(mountpoint = mp.id, error = %e, "mountpoint recording not saved"),
    }
}
