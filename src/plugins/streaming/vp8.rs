//! VP8 for viewers whose browser has no H.264: one H.264 → VP8 transcode per mountpoint,
//! shared by all such viewers, on a codec worker. It runs while at least one of them
//! watches; its output goes through a fan-out of its own (with its own keyframe cache), and
//! those viewers take their audio from the mountpoint's main fan-out. It is fed access units
//! by the RTMP ingest ([`Vp8Variant::push`]) or the RTP packets of a WebRTC publish (WHIP or
//! `publish`, [`Vp8Variant::push_rtp`]), which the worker reassembles (RFC 6184) itself.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use bifrons_rtmp::rtp::{DepacketizedFrame, H264Depacketizer, H264RtpPacket};
use bifrons_transcoding::pipeline::H264ToVp8;
use bifrons_transcoding::video::vp8::Vp8EncoderConfig;
use bytes::{BufMut, Bytes, BytesMut};

use crate::media::{MediaKind, RtpPacket};
use crate::services::streams::{Mountpoint, StreamSink};
use crate::services::workers::{
    input_queue, InputReceiver, InputSender, JobHandle, JobStatus, MediaJob, QueueStats,
};

/// RTP payload budget of VP8 packets.
const MAX_PAYLOAD: usize = 1200;
/// Access units queued for the transcoder (about 1 s at 30 fps).
const QUEUE: usize = 32;
/// RTP packets of a WebRTC publish queued for the transcoder (about 1 s of 1 Mbit/s video).
const RTP_QUEUE: usize = 512;
/// Packets a missing one is waited for before its frame is given up (RFC 6184 reassembly).
const REORDER_WINDOW: u16 = 64;
/// Payload type inside the VP8 fan-out (viewers' own is set by their sink).
const VP8_PT: u8 = 100;

/// Splits one VP8 frame into RTP payloads (RFC 7741 §4.2: a one-byte descriptor, S set on the
/// first packet of the frame, partition index 0).
pub fn packetize(frame: &[u8], out: &mut Vec<Bytes>) {
    let chunk = MAX_PAYLOAD - 1;
    for (i, part) in frame.chunks(chunk.max(1)).enumerate() {
        let mut p = BytesMut::with_capacity(part.len() + 1);
        p.put_u8(if i == 0 { 0x10 } else { 0x00 });
        p.put_slice(part);
        out.push(p.freeze());
    }
}

/// One H.264 access unit for the transcoder, Annex-B, with its 90 kHz timestamp.
pub struct AccessUnit {
    /// Start-code-prefixed NAL units (parameter sets first for a keyframe).
    pub annex_b: Vec<u8>,
    /// RTP timestamp.
    pub timestamp: u32,
}

struct Vp8Job {
    input: InputReceiver<AccessUnit>,
    /// H.264 RTP packets of a WebRTC publish, reassembled here (off the async runtime).
    rtp: InputReceiver<RtpPacket>,
    depacketizer: H264Depacketizer,
    /// SSRC of the RTP input being reassembled.
    rtp_ssrc: Option<u32>,
    frames: Vec<DepacketizedFrame>,
    /// The last SPS and PPS seen in the RTP input, put before a keyframe that lacks them.
    params: (Vec<Bytes>, Vec<Bytes>),
    /// Whether an H.264 keyframe came in the RTP input since it started.
    rtp_keyframe_seen: bool,
    /// Set when the RTP input needs a keyframe from its publisher (see
    /// [`Vp8Variant::take_source_keyframe_request`]).
    source_keyframe: Arc<AtomicBool>,
    pipeline: H264ToVp8,
    out: Mountpoint,
    keyframe: Arc<AtomicBool>,
    ssrc: u32,
    seq: u16,
    errors: u64,
    payloads: Vec<Bytes>,
}

impl MediaJob for Vp8Job {
    fn tick(&mut self, _now: std::time::Duration) -> JobStatus {
        if self.keyframe.swap(false, Ordering::AcqRel) {
            self.pipeline.request_keyframe();
        }
        for _ in 0..self.input.queued() {
            let Some(au) = self.input.try_recv() else {
                break;
            };
            self.transcode(&au.annex_b, au.timestamp);
        }
        for _ in 0..self.rtp.queued() {
            let Some(p) = self.rtp.try_recv() else { break };
            // A new publisher (another SSRC) numbers its packets afresh.
            if self.rtp_ssrc != Some(p.ssrc) {
                self.rtp_ssrc = Some(p.ssrc);
                self.depacketizer = H264Depacketizer::new(REORDER_WINDOW);
                self.rtp_keyframe_seen = false;
            }
            let packet = H264RtpPacket {
                seq: p.sequence_number,
                timestamp: p.timestamp,
                marker: p.marker,
                payload: p.payload,
            };
            self.depacketizer.push(packet, &mut self.frames);
            let mut frames = std::mem::take(&mut self.frames);
            for frame in frames.drain(..) {
                self.rtp_keyframe_seen |= frame.keyframe;
                if !self.rtp_keyframe_seen {
                    // Nothing decodes before a keyframe: ask the publisher for one.
                    self.source_keyframe.store(true, Ordering::Release);
                    continue;
                }
                for n in &frame.nalus {
                    match n.first().map(|h| h & 0x1f) {
                        Some(7) => self.params.0 = vec![n.clone()],
                        Some(8) => self.params.1 = vec![n.clone()],
                        _ => {}
                    }
                }
                let au = annex_b(&frame.nalus, frame.keyframe, &self.params.0, &self.params.1);
                self.transcode(&au, frame.timestamp);
            }
            self.frames = frames;
        }
        JobStatus::Continue
    }

    fn queues(&self) -> Vec<QueueStats> {
        vec![self.input.stats(), self.rtp.stats()]
    }

    fn name(&self) -> &str {
        "h264→vp8"
    }
}

impl Vp8Job {
    /// Transcodes one Annex-B access unit (`timestamp`: 90 kHz) and publishes its VP8 frames.
    fn transcode(&mut self, annex_b: &[u8], timestamp: u32) {
        let frames = match self.pipeline.push(annex_b, timestamp) {
            Ok(f) => f,
            Err(e) => {
                if self.errors % 100 == 0 {
                    tracing::warn!(error = %e, "H.264 → VP8 transcoding failed for a frame");
                }
                self.errors += 1;
                return;
            }
        };
        for frame in frames {
            self.payloads.clear();
            packetize(&frame.data, &mut self.payloads);
            let last = self.payloads.len().saturating_sub(1);
            for (i, payload) in self.payloads.drain(..).enumerate() {
                self.seq = self.seq.wrapping_add(1);
                self.out.publish(
                    MediaKind::Video,
                    RtpPacket {
                        payload_type: VP8_PT,
                        sequence_number: self.seq,
                        timestamp: frame.timestamp,
                        ssrc: self.ssrc,
                        marker: i == last,
                        payload,
                    },
                );
            }
        }
    }
}

/// The VP8 rendition of a mountpoint while VP8 viewers watch it.
pub struct Vp8Variant {
    /// The fan-out of the VP8 video.
    pub hub: Mountpoint,
    input: InputSender<AccessUnit>,
    rtp: InputSender<RtpPacket>,
    keyframe: Arc<AtomicBool>,
    source_keyframe: Arc<AtomicBool>,
    job: JobHandle,
    /// VP8 viewers attached.
    pub viewers: AtomicUsize,
}

impl Vp8Variant {
    /// Starts the transcoder on a worker, publishing into `hub`.
    pub fn start(
        hub: Mountpoint,
        workers: &crate::services::workers::WorkerPool,
    ) -> Result<Self, String> {
        let (input, rx) = input_queue(QUEUE);
        let (rtp, rtp_rx) = input_queue(RTP_QUEUE);
        let keyframe = Arc::new(AtomicBool::new(true));
        let source_keyframe = Arc::new(AtomicBool::new(false));
        let config = Vp8EncoderConfig {
            bitrate_kbps: 1000,
            fps: 30,
            cpu_used: 12,
            threads: 1,
            keyframe_interval: 60,
            ..Vp8EncoderConfig::default()
        };
        let pipeline = H264ToVp8::new(config).map_err(|e| e.to_string())?;
        let job = workers
            .submit(Vp8Job {
                input: rx,
                rtp: rtp_rx,
                depacketizer: H264Depacketizer::new(REORDER_WINDOW),
                rtp_ssrc: None,
                frames: Vec::new(),
                params: (Vec::new(), Vec::new()),
                rtp_keyframe_seen: false,
                source_keyframe: source_keyframe.clone(),
                pipeline,
                out: hub.clone(),
                keyframe: keyframe.clone(),
                ssrc: rand::random(),
                seq: rand::random(),
                errors: 0,
                payloads: Vec::new(),
            })
            .map_err(|e| e.to_string())?;
        Ok(Self {
            hub,
            input,
            rtp,
            keyframe,
            source_keyframe,
            job,
            viewers: AtomicUsize::new(0),
        })
    }

    /// Queues an access unit (dropped when the transcoder is behind).
    pub fn push(&self, au: AccessUnit) {
        let _ = self.input.try_push(au);
    }

    /// Queues one H.264 RTP packet of a WebRTC publish, as received (dropped when the
    /// transcoder is behind: the frame it belongs to is then given up). Called per packet:
    /// no allocation, no lock.
    pub fn push_rtp(&self, packet: RtpPacket) {
        let _ = self.rtp.try_push(packet);
    }

    /// Whether the RTP input waits for an H.264 keyframe its publisher must be asked for
    /// (cleared by the call).
    pub fn take_source_keyframe_request(&self) -> bool {
        self.source_keyframe.swap(false, Ordering::AcqRel)
    }

    /// Makes the next VP8 frame a keyframe (a VP8 viewer joined or asked for one).
    pub fn request_keyframe(&self) {
        self.keyframe.store(true, Ordering::Release);
    }

    /// Stops the transcoder.
    pub fn stop(&self) {
        self.job.stop();
    }
}

/// Passes only one kind of a mountpoint's media on to a sink: a VP8 viewer takes its audio
/// from the main fan-out and its video from the VP8 one.
pub struct KindFilter {
    /// The viewer's sink.
    pub inner: Arc<dyn StreamSink>,
    /// The kind let through.
    pub kind: MediaKind,
}

impl StreamSink for KindFilter {
    fn deliver(&self, kind: MediaKind, packet: &RtpPacket) -> bool {
        kind != self.kind || self.inner.deliver(kind, packet)
    }

    fn restart(&self, kind: MediaKind) {
        if kind == self.kind {
            self.inner.restart(kind);
        }
    }

    fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }
}

/// Builds the Annex-B access unit of `nalus`, with `sps`/`pps` first when it is a keyframe
/// that lacks them.
pub fn annex_b(nalus: &[Bytes], keyframe: bool, sps: &[Bytes], pps: &[Bytes]) -> Vec<u8> {
    let has_sps = nalus
        .iter()
        .any(|n| n.first().is_some_and(|h| h & 0x1f == 7));
    let extra: &[Bytes] = if keyframe && !has_sps { sps } else { &[] };
    let extra_pps: &[Bytes] = if keyframe && !has_sps { pps } else { &[] };
    let size: usize = extra
        .iter()
        .chain(extra_pps)
        .chain(nalus)
        .map(|n| n.len() + 4)
        .sum();
    let mut out = Vec::with_capacity(size);
    for n in extra.iter().chain(extra_pps).chain(nalus) {
        out.extend_from_slice(&[0, 0, 0, 1]);
        out.extend_from_slice(n);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::streams::VideoFormat;

    #[test]
    fn frames_split_with_a_start_flag_on_the_first_packet_only() {
        let mut out = Vec::new();
        let frame: Vec<u8> = std::iter::once(0x50)
            .chain(std::iter::repeat_n(7u8, 2500))
            .collect();
        packetize(&frame, &mut out);
        assert_eq!(out.len(), 3);
        assert!(out.iter().all(|p| p.len() <= MAX_PAYLOAD));
        assert_eq!(out[0][0], 0x10);
        assert!(out[1..].iter().all(|p| p[0] == 0));
        assert!(VideoFormat::Vp8.starts_keyframe(&out[0]));
        assert_eq!(out.iter().map(|p| p.len() - 1).sum::<usize>(), frame.len());
    }

    #[test]
    fn keyframes_get_their_parameter_sets() {
        let sps = [Bytes::from_static(&[0x67, 1])];
        let pps = [Bytes::from_static(&[0x68, 2])];
        let idr = [Bytes::from_static(&[0x65, 3])];
        assert_eq!(
            annex_b(&idr, true, &sps, &pps),
            vec![0, 0, 0, 1, 0x67, 1, 0, 0, 0, 1, 0x68, 2, 0, 0, 0, 1, 0x65, 3]
        );
        assert_eq!(annex_b(&idr, false, &sps, &pps), vec![0, 0, 0, 1, 0x65, 3]);
    }
}
