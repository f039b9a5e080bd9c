//! Audio rooms mixed on the server: one mixing job per room on [`super::workers`], fed by its
//! participants' RTP and sending each of them the mix of everybody else.
//!
//! This service knows rooms as numbers and sinks, not Janus JSON: the audio bridge plugin maps
//! `janus.plugin.audiobridge` requests onto [`RoomMix`]; SIP legs, plain-RTP participants and
//! forwarders join the same way (a queue in, an [`AudioSink`] out).
//!
//! - **In**: each participant has its own bounded queue ([`ParticipantInput`]) that
//!   `incoming_rtp` pushes to without blocking and without any lock shared with other handles.
//! - **Mixing** (see [`job`]): per participant a jitter buffer ([`jitter`]) and a decoder with
//!   loss concealment ([`codec`]); mix-minus at the room's rate every 20 ms on a worker thread;
//!   the whole room's mix encoded once per codec for everyone who did not speak, a private
//!   encoding for each who did.
//! - **Out**: RTP with the participant's own sequence numbers and timestamps (+1 per packet,
//!   +20 ms of the codec clock per tick) through a non-blocking [`AudioSink`].
//! - **Control**: [`RoomMix`] methods queue commands that the job applies at its next tick;
//!   talking changes come back as [`MixEvent`]s.

pub mod bench;
pub mod codec;
mod crew;
pub mod jitter;
mod job;
mod levels;
pub mod pin_prompt;
pub mod restream;
pub mod sip_leg;
mod stereo;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bifrons_transcoding::mixer::VadConfig;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

pub use codec::{EncoderSettings, MixCodec};
pub use jitter::AudioPacket;
pub use job::PRIVATE_HOLD_TICKS;

use super::recording::RecorderSink;
use super::sinks::AudioSink;
use super::workers::{input_queue, InputSender, JobHandle, PushError, WorkerPool, WorkersError};

/// Packets a participant may queue between two ticks before new ones are dropped (about
/// 320 ms of 20 ms packets: a worker stall, not normal operation, fills it).
pub const PARTICIPANT_QUEUE: usize = 16;
/// Commands queued between two ticks before [`RoomMix`] calls fail.
const COMMAND_QUEUE: usize = 1024;

/// Where a participant's (or forwarder's) mix goes, and the RTP header values of its stream.
#[derive(Clone)]
pub struct OutSink {
    /// The destination; called from the worker thread, must not block.
    pub sink: Arc<dyn AudioSink>,
    /// RTP payload type negotiated for the codec.
    pub payload_type: u8,
    /// SSRC of the stream (a WebRTC sender may rewrite it).
    pub ssrc: u32,
    /// First sequence number (random, RFC 3550 §5.1).
    pub initial_seq: u16,
    /// RTP timestamp of tick 0 (random, RFC 3550 §5.1).
    pub initial_timestamp: u32,
}

impl OutSink {
    /// A sink with a random SSRC, first sequence number and timestamp origin.
    pub fn random(sink: Arc<dyn AudioSink>, payload_type: u8) -> Self {
        Self {
            sink,
            payload_type,
            ssrc: rand::random(),
            initial_seq: rand::random(),
            initial_timestamp: rand::random(),
        }
    }
}

/// A participant entering a room's mix.
pub struct NewParticipant {
    /// Its id in the room.
    pub id: u64,
    /// The codec it sends and receives.
    pub codec: MixCodec,
    /// Opus encoder settings for its private mix.
    pub settings: EncoderSettings,
    /// Whether others hear it.
    pub muted: bool,
    /// Linear gain of its voice (Janus `volume` / 100).
    pub gain: f32,
    /// Its own talking thresholds, else the room's.
    pub vad: Option<VadConfig>,
    /// Where its mix goes; `None` until its media is up.
    pub sink: Option<OutSink>,
    input: super::workers::InputReceiver<AudioPacket>,
}

/// The sending side of one participant's input queue (held by its handle).
#[derive(Clone)]
pub struct ParticipantInput(InputSender<AudioPacket>);

impl ParticipantInput {
    /// Queues one received packet for the mixer; never blocks. `false` when dropped (the
    /// queue is full, or the participant left the mix).
    pub fn push(&self, packet: AudioPacket) -> bool {
        !matches!(
            self.0.try_push(packet),
            Err(PushError::Full | PushError::Closed)
        )
    }

    /// Packets dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.0.stats().dropped()
    }
}

impl NewParticipant {
    /// A participant and the input its handle pushes to.
    pub fn new(id: u64, codec: MixCodec) -> (Self, ParticipantInput) {
        let (tx, rx) = input_queue(PARTICIPANT_QUEUE);
        (
            Self {
                id,
                codec,
                settings: EncoderSettings::default(),
                muted: false,
                gain: 1.0,
                vad: None,
                sink: None,
                input: rx,
            },
            ParticipantInput(tx),
        )
    }
}

/// What the job tells the room's owner.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MixEvent {
    /// A participant started (`true`) or stopped talking (voice activity with hysteresis).
    Talking {
        /// The participant.
        id: u64,
        /// Its new state.
        talking: bool,
        /// The level that decided it, dBov.
        level_dbov: f32,
    },
    /// A file played into the mix ended (not looping): its id.
    FileDone(u64),
}

pub(crate) enum Command {
    Add(Box<NewParticipant>),
    Remove(u64),
    Muted(u64, bool),
    Gain(u64, f32),
    Vad(u64, VadConfig),
    Sink(u64, Option<OutSink>),
    AddForward(u64, MixCodec, OutSink),
    RemoveForward(u64),
    TalkEvents(bool),
    ResetDecoder(u64),
    PlayFile(u64, Arc<Vec<bytes::Bytes>>, bool),
    Position(u64, u8),
    Stereo(u64, bool),
    StopFile(u64),
    Stop,
}

/// Counters of one room's job, readable from any thread.
#[derive(Debug)]
pub struct MixStats {
    /// Ticks mixed.
    pub ticks: AtomicU64,
    /// Participants in the mix at the last tick.
    pub participants: AtomicU64,
    /// Encodings of a participant's own mix-minus.
    pub private_encodes: AtomicU64,
    /// Encodings of the whole mix, each shared by every non-speaker of that codec.
    pub shared_encodes: AtomicU64,
    /// Time spent in ticks, nanoseconds (thread time on the worker, wall clock).
    pub tick_nanos: AtomicU64,
    /// Thread time spent pulling participants (jitter buffers, decoding), ns, summed over
    /// the workers that ran it.
    pub pull_nanos: AtomicU64,
    /// Time the room's worker spent mixing between the two shared phases (files, the mix,
    /// talking detection, the shared encodings), ns.
    pub mix_nanos: AtomicU64,
    /// Thread time spent encoding and sending participants' mixes, ns, summed over workers.
    pub encode_nanos: AtomicU64,
    /// Ticks that started more than 40 ms behind schedule and were mixed but not sent.
    pub late_ticks: AtomicU64,
    /// Shards (groups of participants) that other workers pulled or encoded for this room.
    pub helped_shards: AtomicU64,
    /// Participant ticks whose talking state was judged on RFC 6464 levels from the
    /// packets' header extension rather than on the decoded audio.
    pub level_ticks: AtomicU64,
    /// Ticks by duration: bucket `i` counts ticks of `i × 100 µs` up to the next bucket; the
    /// last bucket takes everything from 20 ms (a whole period) up.
    pub tick_histogram: [AtomicU64; TICK_BUCKETS],
}

impl Default for MixStats {
    fn default() -> Self {
        Self {
            ticks: AtomicU64::new(0),
            participants: AtomicU64::new(0),
            private_encodes: AtomicU64::new(0),
            shared_encodes: AtomicU64::new(0),
            tick_nanos: AtomicU64::new(0),
            pull_nanos: AtomicU64::new(0),
            mix_nanos: AtomicU64::new(0),
            encode_nanos: AtomicU64::new(0),
            late_ticks: AtomicU64::new(0),
            helped_shards: AtomicU64::new(0),
            level_ticks: AtomicU64::new(0),
            tick_histogram: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

/// Buckets of [`MixStats::tick_histogram`] (100 µs each, 0–20 ms).
pub const TICK_BUCKETS: usize = 201;

impl MixStats {
    /// Adds the time since `since` to `counter`.
    pub(crate) fn add_nanos(&self, counter: &AtomicU64, since: std::time::Instant) {
        let nanos = since.elapsed().as_nanos().min(u128::from(u64::MAX)) as u64;
        counter.fetch_add(nanos, Ordering::Relaxed);
    }

    /// Counts one tick that took `nanos`.
    pub(crate) fn record_tick(&self, nanos: u64) {
        self.tick_nanos.fetch_add(nanos, Ordering::Relaxed);
        let bucket = ((nanos / 100_000) as usize).min(TICK_BUCKETS - 1);
        self.tick_histogram[bucket].fetch_add(1, Ordering::Relaxed);
    }

    /// The tick duration below which `q` (0..=1) of the ticks fell, in microseconds (the upper
    /// edge of the histogram bucket).
    pub fn tick_quantile_micros(&self, q: f64) -> u64 {
        let counts: Vec<u64> = self
            .tick_histogram
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        let total: u64 = counts.iter().sum();
        let wanted = (total as f64 * q).ceil() as u64;
        let mut seen = 0;
        for (i, c) in counts.iter().enumerate() {
            seen += c;
            if seen >= wanted.max(1) {
                return (i as u64 + 1) * 100;
            }
        }
        TICK_BUCKETS as u64 * 100
    }
}

/// Why a command did not reach the mix.
#[derive(Debug, thiserror::Error)]
pub enum RoomMixError {
    /// The job is gone (stopped) or too far behind to take commands.
    #[error("room mixer unavailable")]
    Unavailable,
    /// The worker pool refused the job.
    #[error(transparent)]
    Workers(#[from] WorkersError),
}

/// Settings of a room's mix.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MixSettings {
    /// Mixing rate, Hz: 8000, 12000, 16000, 24000 or 48000.
    pub sampling_rate: u32,
    /// Talking thresholds for participants without their own.
    pub vad: VadConfig,
    /// Whether talking changes are reported as [`MixEvent::Talking`].
    pub talk_events: bool,
    /// Spatial audio (48 kHz rooms): participants that receive stereo hear each other panned
    /// by their position ([`RoomMix::set_position`]); the others hear the mono mix.
    pub spatial: bool,
}

/// A running room mix. Dropping it stops the job.
pub struct RoomMix {
    commands: InputSender<Command>,
    job: JobHandle,
    stats: Arc<MixStats>,
}

impl RoomMix {
    /// Starts the mix of a room on `workers`; its events arrive on the returned receiver,
    /// which ends when the job does.
    pub fn start(
        workers: &WorkerPool,
        settings: MixSettings,
    ) -> Result<(Self, UnboundedReceiver<MixEvent>), RoomMixError> {
        let (commands, rx) = input_queue(COMMAND_QUEUE);
        let (events_tx, events_rx): (UnboundedSender<MixEvent>, _) = unbounded_channel();
        let stats = Arc::new(MixStats::default());
        let job = job::MixJob::new(
            settings.sampling_rate,
            settings.vad,
            settings.talk_events,
            settings.spatial,
            rx,
            events_tx,
            stats.clone(),
            Some(workers.helpers()),
        );
        let job = workers.submit(job)?;
        Ok((
            Self {
                commands,
                job,
                stats,
            },
            events_rx,
        ))
    }

    fn send(&self, command: Command) -> Result<(), RoomMixError> {
        self.commands
            .try_push(command)
            .map_err(|_| RoomMixError::Unavailable)
    }

    /// Adds a participant (applied at the next tick).
    pub fn add(&self, participant: NewParticipant) -> Result<(), RoomMixError> {
        self.send(Command::Add(Box::new(participant)))
    }

    /// Removes a participant; its input queue closes.
    pub fn remove(&self, id: u64) -> Result<(), RoomMixError> {
        self.send(Command::Remove(id))
    }

    /// Mutes or unmutes a participant (a muted one still hears the room).
    pub fn set_muted(&self, id: u64, muted: bool) -> Result<(), RoomMixError> {
        self.send(Command::Muted(id, muted))
    }

    /// Sets a participant's linear gain.
    pub fn set_gain(&self, id: u64, gain: f32) -> Result<(), RoomMixError> {
        self.send(Command::Gain(id, gain))
    }

    /// Sets a participant's talking thresholds.
    pub fn set_vad(&self, id: u64, vad: VadConfig) -> Result<(), RoomMixError> {
        self.send(Command::Vad(id, vad))
    }

    /// Points a participant's mix at `sink` (media up) or nowhere (`None`: media down).
    pub fn set_sink(&self, id: u64, sink: Option<OutSink>) -> Result<(), RoomMixError> {
        self.send(Command::Sink(id, sink))
    }

    /// Sends the whole room's mix in `codec` to `sink` under forwarder id `id`.
    pub fn add_forward(&self, id: u64, codec: MixCodec, sink: OutSink) -> Result<(), RoomMixError> {
        self.send(Command::AddForward(id, codec, sink))
    }

    /// Stops forwarder `id`.
    pub fn remove_forward(&self, id: u64) -> Result<(), RoomMixError> {
        self.send(Command::RemoveForward(id))
    }

    /// Starts a participant's decoder and jitter buffer afresh (Janus' `resetdecoder`).
    pub fn reset_decoder(&self, id: u64) -> Result<(), RoomMixError> {
        self.send(Command::ResetDecoder(id))
    }

    /// Plays Opus `packets` (20 ms or any duration each, as read from an Ogg/Opus file) into
    /// the mix under id `id` (unique among the room's participant ids), once or in a loop;
    /// [`MixEvent::FileDone`] tells when a file that does not loop ended.
    pub fn play_file(
        &self,
        id: u64,
        packets: Arc<Vec<bytes::Bytes>>,
        looping: bool,
    ) -> Result<(), RoomMixError> {
        self.send(Command::PlayFile(id, packets, looping))
    }

    /// Stops the file playing under `id`.
    pub fn stop_file(&self, id: u64) -> Result<(), RoomMixError> {
        self.send(Command::StopFile(id))
    }

    /// Sets a participant's place in a spatial room's stereo image: 0 left, 50 centre, 100
    /// right (Janus' `spatial_position`; larger values are taken as 100).
    pub fn set_position(&self, id: u64, position: u8) -> Result<(), RoomMixError> {
        self.send(Command::Position(id, position.min(100)))
    }

    /// Makes a participant of a spatial room receive its mix in stereo (its Opus decoder
    /// takes two channels: `stereo=1` in its offer) or mono.
    pub fn set_stereo(&self, id: u64, stereo: bool) -> Result<(), RoomMixError> {
        self.send(Command::Stereo(id, stereo))
    }

    /// Turns talking events on or off.
    pub fn set_talk_events(&self, on: bool) -> Result<(), RoomMixError> {
        self.send(Command::TalkEvents(on))
    }

    /// The job's counters.
    pub fn stats(&self) -> &MixStats {
        &self.stats
    }

    /// Ticks mixed so far.
    pub fn ticks(&self) -> u64 {
        self.stats.ticks.load(Ordering::Relaxed)
    }

    /// The job's scheduling counters (ticks, skipped periods, input drops).
    pub fn job_counters(&self) -> super::workers::JobCounters {
        self.job.counters()
    }

    /// Stops the job (also done on drop).
    pub fn stop(&self) {
        let _ = self.send(Command::Stop);
        self.job.stop();
    }
}

impl Drop for RoomMix {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A recording as a sink of the room's whole mix: the Opus payloads go to the recording
/// service's writer thread with their RTP timestamps (never blocking the mixing thread).
impl AudioSink for RecorderSink {
    fn send_audio(&self, packet: crate::media::RtpPacket) -> bool {
        self.push(packet.payload, packet.timestamp)
    }
}
