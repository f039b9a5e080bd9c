//! RTMP publishes with B-frames (OBS's x264 default, `ffmpeg -bf 2`): re-encoded once per
//! mountpoint, on a codec worker, to H.264 constrained baseline (OpenH264), shared by every
//! viewer. Publishes without B-frames stay on the zero-copy relay.
//!
//! Why: Chromium's WebRTC receiver decodes and renders pictures in the order they arrive and
//! takes a decoder that holds a picture back for an error. Measured with a `-bf 2` publish
//! (README, streaming): B-frames relayed (RTP timestamps from PTS or DTS, SPS rewritten or
//! not) end in keyframe-request storms at 4 fps decoded; leaving them out plays 12 of 30 fps.
//! Re-encoded, the viewer decodes every picture (30 fps), in display order.
//!
//! The job decodes access units in decode order with OpenH264 (which decodes B slices and
//! returns pictures in display order when it is never flushed between access units), gives
//! each picture the smallest presentation time (DTS + CTS) still pending, re-encodes it with an
//! IDR wherever the publisher had a keyframe, and packetizes it (RFC 6184) into the
//! mountpoint's fan-out under its own SSRC, with RTP timestamps from the presentation times.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;

use bifrons_rtmp::rtp::{H264Packetizer, H264RtpPacket};
use bifrons_rtmp::VideoFrame as FlvVideoFrame;
use bifrons_transcoding::video::h264::{H264Decoder, H264Encoder, H264EncoderConfig};
use bifrons_transcoding::video::VideoFrame as Picture;
use bytes::Bytes;

use super::mountpoints::MountpointEntry;
use super::vp8::AccessUnit;
use crate::media::{MediaKind, RtpPacket};
use crate::services::workers::{
    input_queue, InputReceiver, InputSender, JobHandle, JobStatus, MediaJob, QueueStats, WorkerPool,
};

/// Access units queued for the job (about 2 s at 30 fps).
const QUEUE: usize = 64;
/// RTP payload budget, as the relay's.
const MAX_PAYLOAD: usize = 1200;
/// Payload type inside the mountpoint, as the relay's.
const H264_PT: u8 = 96;
/// Presentation times kept waiting for their picture; more means pictures were lost in the
/// decoder, and the oldest are let go.
const MAX_PENDING: usize = 16;
/// Bitrate of the re-encode when the publisher announced none, bit/s.
pub const DEFAULT_BITRATE: u32 = 2_500_000;
/// `profile-level-id` of the re-encoded stream: constrained baseline, level 3.1 (OpenH264
/// announces the level of the picture size; browsers decode any level they negotiated).
pub const PROFILE_LEVEL_ID: &str = "42e01f";

/// One access unit of the publish, in decode order.
pub struct Coded {
    /// The Annex-B access unit (parameter sets first on a keyframe).
    pub annex_b: Vec<u8>,
    /// Presentation time, FLV milliseconds.
    pub pts_ms: u32,
    /// An IDR of the publisher.
    pub keyframe: bool,
}

/// The running re-encode of one publish.
pub struct Reencoder {
    input: InputSender<Coded>,
    job: JobHandle,
    /// An access unit was dropped: the next ones wait for a keyframe.
    behind: bool,
}

impl Reencoder {
    /// Starts the job on a worker; it encodes at `bitrate` bit/s and publishes into `entry`'s
    /// fan-out with RTP timestamps `flv_ms_to_rtp(pts) + ts_base`; it feeds `entry`'s VP8
    /// rendition if one runs.
    ///
    /// Errors: OpenH264 could not be set up, or no worker took the job.
    pub fn start(
        entry: Arc<MountpointEntry>,
        workers: &WorkerPool,
        bitrate: u32,
        ts_base: u32,
    ) -> Result<Self, String> {
        let (input, rx) = input_queue(QUEUE);
        let config = H264EncoderConfig {
            bitrate,
            fps: 30.0,
            // IDRs follow the publisher's keyframes; this is only a bound.
            keyframe_interval: 600,
        };
        let job = ReencodeJob {
            input: rx,
            decoder: H264Decoder::reordering().map_err(|e| e.to_string())?,
            encoder: H264Encoder::new(config).map_err(|e| e.to_string())?,
            pending: BinaryHeap::with_capacity(MAX_PENDING + 1),
            keyframes: Vec::with_capacity(4),
            packetizer: H264Packetizer::new(MAX_PAYLOAD, rand::random()),
            packets: Vec::with_capacity(64),
            ssrc: rand::random(),
            ts_base,
            entry,
            started: false,
            errors: 0,
        };
        let job = workers.submit(job).map_err(|e| e.to_string())?;
        Ok(Self {
            input,
            job,
            behind: false,
        })
    }

    /// Queues one access unit. When the job is behind, it is dropped, and so is every
    /// access unit up to the next keyframe (they would not decode).
    pub fn push(&mut self, coded: Coded) {
        if self.behind && !coded.keyframe {
            return;
        }
        self.behind = self.input.try_push(coded).is_err();
        if self.behind {
            tracing::debug!(
                "B-frame re-encode behind: access units left out up to the next keyframe"
            );
        }
    }
}

impl Drop for Reencoder {
    fn drop(&mut self) {
        self.job.stop();
    }
}

struct ReencodeJob {
    input: InputReceiver<Coded>,
    decoder: H264Decoder,
    encoder: H264Encoder,
    /// Presentation times (FLV ms) of access units whose picture has not come out yet.
    pending: BinaryHeap<Reverse<u32>>,
    /// Presentation times of the publisher's keyframes not re-encoded yet.
    keyframes: Vec<u32>,
    packetizer: H264Packetizer,
    packets: Vec<H264RtpPacket>,
    ssrc: u32,
    ts_base: u32,
    entry: Arc<MountpointEntry>,
    /// A keyframe was decoded (earlier access units cannot be).
    started: bool,
    errors: u64,
}

impl ReencodeJob {
    fn frame(&mut self, coded: Coded) {
        if !self.started && !coded.keyframe {
            return;
        }
        self.started = true;
        self.pending.push(Reverse(coded.pts_ms));
        if coded.keyframe {
            self.keyframes.push(coded.pts_ms);
        }
        while self.pending.len() > MAX_PENDING {
            self.pending.pop();
        }
        let picture = match self.decoder.decode(&coded.annex_b, 0) {
            Ok(Some(p)) => p,
            Ok(None) => return,
            Err(e) => {
                if self.errors % 100 == 0 {
                    tracing::warn!(mountpoint = self.entry.id, error = %e, "B-frame re-encode: undecodable access unit; waiting for a keyframe");
                }
                self.errors += 1;
                // Pictures that will never come must not lend their times to later ones.
                self.pending.clear();
                self.keyframes.clear();
                self.started = false;
                return;
            }
        };
        let Some(Reverse(pts_ms)) = self.pending.pop() else {
            return;
        };
        let before = self.keyframes.len();
        self.keyframes.retain(|&k| k > pts_ms);
        self.encode(pts_ms, self.keyframes.len() != before, picture);
    }

    /// Encodes the picture shown at `pts_ms` and publishes it.
    fn encode(&mut self, pts_ms: u32, keyframe: bool, mut picture: Picture) {
        if keyframe {
            self.encoder.request_keyframe();
        }
        let timestamp = bifrons_rtmp::rtp::flv_ms_to_rtp(pts_ms).wrapping_add(self.ts_base);
        picture.timestamp = timestamp;
        let encoded = match self.encoder.encode(&picture) {
            Ok(Some(e)) => e,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(mountpoint = self.entry.id, error = %e, "B-frame re-encode: encoder failed");
                return;
            }
        };
        let data = Bytes::from(encoded.data);
        let frame = FlvVideoFrame {
            dts_ms: pts_ms,
            cts_ms: 0,
            keyframe: encoded.keyframe,
            nalus: nal_units(&data),
        };
        if let Some(vp8) = self.entry.vp8() {
            vp8.push(AccessUnit {
                annex_b: data.to_vec(),
                timestamp,
            });
        }
        self.packets.clear();
        self.packetizer.packetize(&frame, &mut self.packets);
        for p in self.packets.drain(..) {
            self.entry.hub.publish(
                MediaKind::Video,
                RtpPacket {
                    payload_type: H264_PT,
                    sequence_number: p.seq,
                    timestamp: p.timestamp.wrapping_add(self.ts_base),
                    ssrc: self.ssrc,
                    marker: p.marker,
                    payload: p.payload,
                },
            );
        }
    }
}

impl MediaJob for ReencodeJob {
    fn tick(&mut self, _now: std::time::Duration) -> JobStatus {
        for _ in 0..self.input.queued() {
            let Some(coded) = self.input.try_recv() else {
                break;
            };
            self.frame(coded);
        }
        JobStatus::Continue
    }

    fn queues(&self) -> Vec<QueueStats> {
        vec![self.input.stats()]
    }

    fn name(&self) -> &str {
        "h264 b-frames→baseline"
    }
}

/// The NAL units of an Annex-B access unit (start codes of 3 or 4 bytes), as slices of it.
pub fn nal_units(annex_b: &Bytes) -> Vec<Bytes> {
    let data = &annex_b[..];
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= data.len() {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut out = Vec::with_capacity(starts.len());
    for (k, &start) in starts.iter().enumerate() {
        let mut end = starts.get(k + 1).map_or(data.len(), |&next| next - 3);
        // A 4-byte start code's leading zero, and trailing zeros, belong to no NAL unit.
        while end > start && data[end - 1] == 0 {
            end -= 1;
        }
        if end > start {
            out.push(annex_b.slice(start..end));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn annex_b_splits_on_three_and_four_byte_start_codes() {
        let au = Bytes::from_static(&[
            0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 0, 1, 0x65, 9, 9,
        ]);
        let nalus = nal_units(&au);
        assert_eq!(
            nalus,
            vec![
                Bytes::from_static(&[0x67, 1, 2]),
                Bytes::from_static(&[0x68, 3]),
                Bytes::from_static(&[0x65, 9, 9]),
            ]
        );
        assert!(nal_units(&Bytes::from_static(&[1, 2, 3])).is_empty());
    }

    proptest! {
        #[test]
        fn nal_units_never_panic_nor_hold_start_codes(d in proptest::collection::vec(any::<u8>(), 0..200)) {
            let b = Bytes::from(d);
            for n in nal_units(&b) {
                prop_assert!(!n.is_empty());
                prop_assert!(!n.windows(3).any(|w| w == [0, 0, 1]));
            }
        }
    }
}
