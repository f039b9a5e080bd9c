//! The codec job of one mountpoint's egress, on a worker thread: RTP in (through the
//! mountpoint sink in [`super::sink`]), FLV tags out to every RTMP target of the mountpoint.
//!
//! One job per mountpoint, whatever the number of targets: the VP8 → H.264 encoder and the
//! Opus → AAC encoder run once and their output goes to each target's non-blocking
//! [`PublisherSender`]. The sequence headers and `onMetaData` are remembered and given to a
//! target that joins later.
//!
//! Packets are held for [`WARM_UP`] after the first one, while the
//! [`Timeline`] learns how audio and video line up; then they flow with the
//! timestamps fixed.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bifrons_rtmp::client::PublisherSender;
use bifrons_rtmp::rtp::sps;
use bifrons_rtmp::{AvcConfig, StreamMetadata};
use bifrons_transcoding::pipeline::AudioPacket;
use bytes::Bytes;

use super::audio::{AudioRoute, AAC_RATE};
use super::timeline::Timeline;
use super::video::{AccessUnit, VideoRoute};
use crate::media::{MediaKind, RtpPacket};
use crate::services::workers::{InputReceiver, JobStatus, MediaJob, QueueStats};

/// How long packets are held at the start while audio and video are lined up.
pub const WARM_UP: Duration = Duration::from_millis(500);

/// Most packets held during the warm-up (a long keyframe replay plus 500 ms of media).
const MAX_HELD: usize = 8192;

/// An Opus packet cannot leave its source before its last sample (20 ms after its
/// timestamp) while a video frame leaves right after capture: audio arrivals are taken back
/// by this much (ms) so the two line up on their capture times.
const AUDIO_PACKETIZATION_MS: i64 = 20;

/// The first video picture sent may start this much (ms) before the first audio.
const START_SLACK_MS: u32 = 20;

/// Audio waits this long (ms of media) for video to start before it goes out alone.
const VIDEO_START_WAIT_MS: u32 = 3_000;

/// What the mountpoint sink hands the job: a packet of `kind` and when it arrived.
pub type Input = (MediaKind, RtpPacket, Instant);

/// Changes to the job's target list, from the service.
pub enum Control {
    /// A target joins: it gets the remembered configuration, then the media.
    Add(u64, PublisherSender),
    /// A target leaves.
    Remove(u64),
    /// Make the next transcoded picture an IDR (a target just went live).
    Keyframe,
}

/// Counters of a mountpoint's egress job, read by `egress_list` and the bench.
#[derive(Debug, Default)]
pub struct EgressCounters {
    /// H.264 access units sent as they came (no re-encode).
    pub video_passed: AtomicU64,
    /// H.264 access units produced by the VP8 → H.264 encoder.
    pub video_transcoded: AtomicU64,
    /// AAC access units sent.
    pub audio_frames: AtomicU64,
    /// Packets dropped because the job fell behind (its input queue was full).
    pub dropped: AtomicU64,
}

/// A target of the job: a publisher to one RTMP server.
struct Target {
    id: u64,
    sender: PublisherSender,
    /// FLV time (ms) from which media goes to it; `None`: not yet. A target that joins a
    /// running job starts at the next keyframe, audio and video together (a passed-through
    /// source cannot be asked for one, so audio sent before it would start up to a GOP ahead
    /// of the video, and the AAC encoder hands over frames a few tens of ms after the picture
    /// of the same time); at once when the mountpoint has no video, or its audio already goes
    /// out without video.
    start_ms: Option<u32>,
}

/// One mountpoint's egress job.
pub struct EgressJob {
    input: InputReceiver<Input>,
    control: Receiver<Control>,
    stopped: Arc<AtomicBool>,
    epoch: Option<Instant>,
    timeline: Timeline,
    held: VecDeque<Input>,
    video: Option<VideoRoute>,
    audio: Option<AudioRoute>,
    targets: Vec<Target>,
    avc: Option<AvcConfig>,
    metadata: StreamMetadata,
    counters: Arc<EgressCounters>,
    units: Vec<AccessUnit>,
    aac: Vec<AudioPacket>,
    audio_bitrate: u32,
    /// FLV time of the first audio held at the warm-up: video starts at a keyframe no
    /// earlier, so both streams start together.
    audio_first: Option<u32>,
    /// FLV time from which audio is sent: when video started (or gave up waiting for it).
    av_start: Option<u32>,
    /// FLV time of the first picture sent (a keyframe).
    video_start: Option<u32>,
    /// AAC frames waiting for the first picture (at most [`VIDEO_START_WAIT_MS`] of them).
    pending_audio: VecDeque<bifrons_rtmp::AudioFrame>,
    /// Last FLV time sent per kind (audio, video).
    last_ms: [Option<u32>; 2],
}

impl EgressJob {
    /// A job reading `input`, with the given routes (`None`: the mountpoint has no such
    /// media; audio with its AAC bitrate in bit/s). `stopped` ends it.
    pub fn new(
        input: InputReceiver<Input>,
        control: Receiver<Control>,
        stopped: Arc<AtomicBool>,
        video: Option<VideoRoute>,
        audio: Option<(AudioRoute, u32)>,
        counters: Arc<EgressCounters>,
    ) -> Self {
        let (audio, audio_bitrate) = match audio {
            Some((route, bitrate)) => (Some(route), bitrate),
            None => (None, 0),
        };
        let mut metadata = StreamMetadata::new();
        metadata.encoder = Some("Bifrons".into());
        if video.is_some() {
            metadata.video_codec_id = Some(7);
        }
        if let Some(a) = &audio {
            metadata.audio_codec_id = Some(10);
            metadata.audio_sample_rate = Some(a.config().sample_rate);
            metadata.audio_channels = Some(u32::from(a.config().channels));
            metadata.audio_is_stereo = Some(a.config().channels == 2);
            metadata.audio_bitrate_kbps = Some(audio_bitrate / 1000);
        }
        Self {
            input,
            control,
            stopped,
            epoch: None,
            timeline: Timeline::new(AAC_RATE, 90_000),
            held: VecDeque::new(),
            video,
            audio,
            targets: Vec::new(),
            avc: None,
            metadata,
            counters,
            units: Vec::with_capacity(4),
            aac: Vec::with_capacity(4),
            audio_bitrate,
            audio_first: None,
            av_start: None,
            video_start: None,
            pending_audio: VecDeque::new(),
            last_ms: [None, None],
        }
    }

    fn control(&mut self, command: Control) {
        match command {
            Control::Add(id, sender) => {
                let _ = sender.send_metadata(self.metadata.clone());
                if let Some(a) = &self.audio {
                    let _ = sender.send_audio_config(a.config(), 0);
                }
                if let Some(c) = &self.avc {
                    let _ = sender.send_video_config(c, 0);
                }
                // Audio already going out alone (no keyframe came): the target joins it.
                let audio_alone = self.av_start.is_some() && self.video_start.is_none();
                let start_ms = (self.video.is_none() || audio_alone).then_some(0);
                self.targets.push(Target {
                    id,
                    sender,
                    start_ms,
                });
                if let Some(v) = &mut self.video {
                    v.request_keyframe();
                }
            }
            Control::Remove(id) => self.targets.retain(|t| t.id != id),
            Control::Keyframe => {
                if let Some(v) = &mut self.video {
                    v.request_keyframe();
                }
            }
        }
    }

    fn media(&mut self, kind: MediaKind, packet: &RtpPacket, arrival: Instant) {
        if kind == MediaKind::Audio {
            self.still_picture(packet, arrival);
        }
        let epoch = *self.epoch.get_or_insert(arrival);
        let mut at = arrival.saturating_duration_since(epoch).as_millis() as i64;
        if kind == MediaKind::Audio {
            at -= AUDIO_PACKETIZATION_MS;
        }
        let resync = self.timeline.observe(kind, packet.timestamp, at);
        if resync && kind == MediaKind::Audio {
            // A new source: the AAC encoder's own cadence starts again with it.
            if self.audio.is_some() {
                if let Ok(fresh) = AudioRoute::new(self.audio_bitrate) {
                    self.audio = Some(fresh);
                }
            }
        }
        if self.timeline.is_frozen() {
            self.process(kind, packet);
            return;
        }
        if self.held.len() < MAX_HELD {
            self.held.push_back((kind, packet.clone(), arrival));
        }
    }

    /// An audio-only mountpoint with a still picture as video ([`super::still`]): the picture
    /// due at this audio packet's time enters as a video packet captured with it.
    fn still_picture(&mut self, audio: &RtpPacket, arrival: Instant) {
        let Some(still) = self.video.as_mut().and_then(VideoRoute::still) else {
            return;
        };
        let Some(timestamp) = still.due(audio.timestamp) else {
            return;
        };
        let picture = RtpPacket {
            timestamp,
            payload: Bytes::new(),
            ..audio.clone()
        };
        let captured = arrival
            .checked_sub(Duration::from_millis(AUDIO_PACKETIZATION_MS as u64))
            .unwrap_or(arrival);
        self.media(MediaKind::Video, &picture, captured);
    }

    fn warm_up_done(&mut self, now: Instant) {
        let Some(epoch) = self.epoch else { return };
        if self.timeline.is_frozen() || now.saturating_duration_since(epoch) < WARM_UP {
            return;
        }
        let mut first = Vec::with_capacity(2);
        for kind in [MediaKind::Audio, MediaKind::Video] {
            if let Some((_, p, _)) = self.held.iter().find(|(k, _, _)| *k == kind) {
                first.push((kind, p.timestamp));
            }
        }
        self.timeline.freeze(&first);
        self.audio_first = first
            .iter()
            .find(|(k, _)| *k == MediaKind::Audio)
            .and_then(|&(_, rtp)| self.timeline.flv_ms(MediaKind::Audio, rtp));
        if self.video.is_none() {
            self.av_start = Some(0);
        }
        for (kind, packet, _) in std::mem::take(&mut self.held) {
            self.process(kind, &packet);
        }
    }

    fn process(&mut self, kind: MediaKind, packet: &RtpPacket) {
        match kind {
            MediaKind::Video => {
                let Some(route) = &mut self.video else { return };
                route.push(packet, &mut self.units);
                let transcoded = route.transcodes();
                let mut units = std::mem::take(&mut self.units);
                for unit in units.drain(..) {
                    self.send_video(unit, transcoded);
                }
                self.units = units;
            }
            MediaKind::Audio => {
                let Some(route) = &mut self.audio else { return };
                route.push(packet, &mut self.aac);
                let mut units = std::mem::take(&mut self.aac);
                for unit in units.drain(..) {
                    let Some(ms) = self.timeline.flv_ms(MediaKind::Audio, unit.timestamp) else {
                        continue;
                    };
                    // FLV needs increasing timestamps per stream (a re-anchored source or
                    // a late packet must not step back).
                    let ms = ms.max(self.last_ms[0].map_or(0, |l| l + 1));
                    self.last_ms[0] = Some(ms);
                    let first = *self.audio_first.get_or_insert(ms);
                    let frame = bifrons_rtmp::AudioFrame {
                        timestamp_ms: ms,
                        data: Bytes::from(unit.payload),
                    };
                    match self.av_start {
                        Some(start) if ms + START_SLACK_MS / 2 >= start => self.send_audio(&frame),
                        Some(_) => {}
                        // Audio ahead of the first picture waits for it (the encoder and the
                        // network hand audio over sooner than video).
                        None if ms < first + VIDEO_START_WAIT_MS => {
                            self.pending_audio.push_back(frame)
                        }
                        None => {
                            tracing::info!("egress: no video keyframe yet, audio goes out alone");
                            self.av_start = Some(ms);
                            for t in &mut self.targets {
                                t.start_ms.get_or_insert(0);
                            }
                            self.flush_audio(0);
                            self.send_audio(&frame);
                        }
                    }
                }
                self.aac = units;
            }
        }
    }

    fn send_audio(&self, frame: &bifrons_rtmp::AudioFrame) {
        self.counters.audio_frames.fetch_add(1, Ordering::Relaxed);
        let ms = frame.timestamp_ms + START_SLACK_MS / 2;
        for t in self
            .targets
            .iter()
            .filter(|t| t.start_ms.is_some_and(|s| ms >= s))
        {
            let _ = t.sender.send_audio(frame);
        }
    }

    /// Sends the audio held while video had not started, from `start_ms` (FLV) on.
    fn flush_audio(&mut self, start_ms: u32) {
        for frame in std::mem::take(&mut self.pending_audio) {
            if frame.timestamp_ms + START_SLACK_MS / 2 >= start_ms {
                self.send_audio(&frame);
            }
        }
    }

    fn send_video(&mut self, unit: AccessUnit, transcoded: bool) {
        if let Some((sps_list, pps_list)) = unit.parameter_sets {
            let changed = self
                .avc
                .as_ref()
                .is_none_or(|c| c.sps != sps_list || c.pps != pps_list);
            if changed {
                if let Some(config) = AvcConfig::from_parameter_sets(sps_list, pps_list) {
                    if let Some((w, h)) = config.sps.first().and_then(|s| sps::picture_size(s)) {
                        self.metadata.video_width = Some(w);
                        self.metadata.video_height = Some(h);
                        for t in &self.targets {
                            let _ = t.sender.send_metadata(self.metadata.clone());
                        }
                    }
                    let ms = self
                        .timeline
                        .flv_ms(MediaKind::Video, unit.timestamp)
                        .unwrap_or(0);
                    for t in &self.targets {
                        let _ = t.sender.send_video_config(&config, ms);
                    }
                    self.avc = Some(config);
                }
            }
        }
        // Nothing is decodable before the first sequence header.
        if self.avc.is_none() || unit.nalus.is_empty() {
            return;
        }
        let Some(ms) = self.timeline.flv_ms(MediaKind::Video, unit.timestamp) else {
            return;
        };
        let ms = ms.max(self.last_ms[1].map_or(0, |l| l + 1));
        if self.video_start.is_none() {
            let early = self.audio_first.is_some_and(|a| ms + START_SLACK_MS < a);
            if !unit.keyframe || early {
                if transcoded {
                    // The picture after the one dropped must be an IDR to start on.
                    if let Some(v) = &mut self.video {
                        v.request_keyframe();
                    }
                }
                return;
            }
            self.video_start = Some(ms);
            if self.av_start.is_none() {
                self.av_start = Some(ms);
                self.send_video_frame(ms, unit.keyframe, unit.nalus, transcoded);
                self.flush_audio(ms);
                return;
            }
        }
        self.send_video_frame(ms, unit.keyframe, unit.nalus, transcoded);
    }

    fn send_video_frame(&mut self, ms: u32, keyframe: bool, nalus: Vec<Bytes>, transcoded: bool) {
        self.last_ms[1] = Some(ms);
        let frame = bifrons_rtmp::VideoFrame {
            dts_ms: ms,
            // WebRTC and the mountpoint's H.264 carry pictures in decode order without
            // reordering, so presentation time is decode time.
            cts_ms: 0,
            keyframe,
            nalus,
        };
        let counter = if transcoded {
            &self.counters.video_transcoded
        } else {
            &self.counters.video_passed
        };
        counter.fetch_add(1, Ordering::Relaxed);
        for t in &mut self.targets {
            if t.start_ms.is_none() && keyframe {
                t.start_ms = Some(ms);
            }
            if t.start_ms.is_some() {
                let _ = t.sender.send_video(&frame);
            }
        }
    }
}

impl MediaJob for EgressJob {
    fn tick(&mut self, _now: Duration) -> JobStatus {
        if self.stopped.load(Ordering::Acquire) {
            return JobStatus::Done;
        }
        while let Ok(command) = self.control.try_recv() {
            self.control(command);
        }
        for _ in 0..self.input.queued() {
            let Some((kind, packet, arrival)) = self.input.try_recv() else {
                break;
            };
            self.media(kind, &packet, arrival);
        }
        self.warm_up_done(Instant::now());
        self.counters
            .dropped
            .store(self.input.stats().dropped(), Ordering::Relaxed);
        JobStatus::Continue
    }

    fn queues(&self) -> Vec<QueueStats> {
        vec![self.input.stats()]
    }

    fn name(&self) -> &str {
        match &self.video {
            Some(v) if v.transcodes() => "egress vp8→h264",
            _ => "egress",
        }
    }
}
