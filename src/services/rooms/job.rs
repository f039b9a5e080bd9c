//! The mixing job of one room: every 20 ms tick, on a worker thread, it applies the room's
//! commands, pulls one frame per participant from its jitter buffer and decoder, mixes
//! (mix-minus), encodes and sends each participant its mix, and feeds forwarders.
//!
//! Encoding once per distinct mix: a participant whose audio went into this tick's mix needs
//! its own mix-minus, encoded for it alone; everybody else hears the whole room's mix, which is
//! encoded once per codec and shared (the payload is reference-counted, not copied). A
//! participant keeps its own encoder for [`PRIVATE_HOLD_TICKS`] after it last contributed, so
//! pauses between words do not switch encoders back and forth.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bifrons_transcoding::mixer::{Mixer, MixerConfig, ParticipantId, VadConfig, VoiceActivity};
use bytes::Bytes;
use tokio::sync::mpsc::UnboundedSender;

use super::codec::{Decoder, Encoder, EncoderSettings, MixCodec};
use super::crew::{Crew, Work};
use super::jitter::{AudioPacket, JitterBuffer, Pop};
use super::levels::TickLevels;
use super::stereo::{add_panned, limit_into, pan_gains};
use super::{Command, MixEvent, MixStats, NewParticipant, OutSink};
use crate::media::RtpPacket;
use crate::services::workers::{Helpers, InputReceiver, JobStatus, MediaJob, QueueStats, TICK};

/// Ticks (20 ms each) a participant keeps its own encoder after it last contributed: 1 s.
pub const PRIVATE_HOLD_TICKS: u64 = 50;
/// Frames quieter than this (dBov) are not mixed: silence and faint room noise, far below the
/// talking threshold, would otherwise make every participant a speaker needing its own
/// encoding.
const GATE_DBOV: f32 = -60.0;
/// Packets buffered before playout starts (40 ms).
const PREBUFFER: usize = 2;
/// Packets queued before the oldest are shed (clock drift, bursts): 240 ms.
const MAX_BUFFERED: usize = 12;
/// Ticks a participant's last RFC 6464 level stands for when no packet arrived (packets come
/// in bursts over a busy network: two in one tick, none in the next): 100 ms, as long as the
/// jitter buffer smooths the audio itself.
const LEVEL_HOLD_TICKS: u32 = 5;

/// One outgoing RTP stream: sequence numbers and timestamps that advance with the tick,
/// whatever encoder fed the packet.
pub(super) struct RtpOut {
    sink: OutSink,
    seq: u16,
    ts_base: u32,
    spt: u32,
    first: bool,
    sent: u64,
}

impl RtpOut {
    pub(super) fn new(sink: OutSink, codec: MixCodec) -> Self {
        Self {
            seq: sink.initial_seq,
            ts_base: sink.initial_timestamp,
            spt: codec.samples_per_tick(),
            first: true,
            sent: 0,
            sink,
        }
    }

    /// Sends `payload` as the packet of tick number `tick` (timestamps follow the tick
    /// count, so a skipped period leaves a timestamp gap as real time did).
    fn send(&mut self, tick: u64, payload: Bytes) {
        let packet = RtpPacket {
            payload_type: self.sink.payload_type,
            sequence_number: self.seq,
            timestamp: self
                .ts_base
                .wrapping_add((tick as u32).wrapping_mul(self.spt)),
            ssrc: self.sink.ssrc,
            marker: self.first,
            payload,
        };
        if self.sink.sink.send_audio(packet) {
            self.sent += 1;
        }
        self.first = false;
        self.seq = self.seq.wrapping_add(1);
    }
}

/// What a participant gets this tick, decided by the room's worker after the mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plan {
    /// Nothing (no sink yet, or no encoder).
    Nothing,
    /// Its own mix-minus ([`Slot::mix`]), on its own encoder.
    Private,
    /// The whole room's mix in its codec, encoded once for all such listeners.
    Shared,
    /// Its own stereo mix-minus, from the shard's copy of the room's stereo mix.
    PrivateStereo,
    /// The whole stereo mix, encoded once.
    SharedStereo,
}

struct Slot {
    input: InputReceiver<AudioPacket>,
    jitter: JitterBuffer,
    decoder: Decoder,
    codec: MixCodec,
    settings: EncoderSettings,
    pcm: Vec<i16>,
    fed: bool,
    muted: bool,
    out: Option<RtpOut>,
    /// Its own encoder, while it contributes (or did recently).
    private: Option<Encoder>,
    last_contributed: Option<u64>,
    decode_errors: u64,
    /// Linear gain of its voice (as given to the mixer), for the stereo mix.
    gain: f32,
    /// Gains of its voice in the left and right channels of a spatial room.
    pan: [f32; 2],
    /// It receives the spatial room's stereo mix.
    stereo: bool,
    /// Whether its voice is in this tick's mix.
    contributed: bool,
    /// This tick's mix-minus, copied from the mixer when [`Plan::Private`].
    mix: Vec<i16>,
    plan: Plan,
    /// Its talking thresholds.
    vad: VadConfig,
    /// Talking detection from its packets' RFC 6464 levels, once one carried a level.
    levels: Option<VoiceActivity>,
    /// This tick's level from the extension (dBov), when its packets carry one.
    level_dbov: Option<f32>,
    /// The switch to [`Slot::levels`] was logged.
    levels_announced: bool,
    /// Ticks since a packet last brought a level.
    level_age: u32,
}

/// Phase of a tick run over the shards: pull (jitter buffer, decode) every participant.
const PULL: u8 = 1;
/// Phase: encode and send every participant's mix.
const ENCODE: u8 = 2;
/// Shards of a room: participants are spread over them (fewest first), and the workers of
/// the pool claim whole shards; 16 leaves about 6 participants per shard at 100.
const SHARDS: usize = 16;
/// Rooms with at least this many participants ask the other workers to help with their
/// ticks; smaller ones (a few decodes and encodes) run on their own worker, where the cost of
/// waking another thread would outweigh the work.
const SHARE_FROM: usize = 12;
/// A tick that starts more than this behind its schedule (the worker was kept off its core,
/// or earlier ticks overran) is caught up without mixing or sending: its packets would reach
/// the receivers too late to be played, and skipping the encodes lets the job return to its
/// schedule instead of making every following packet late too. Decoders still advance.
const LATE_SKIP: Duration = Duration::from_millis(40);

/// A share of a room's participants, processed by one thread per phase.
struct Shard {
    slots: BTreeMap<u64, Slot>,
    /// The tick being run.
    tick: u64,
    /// This tick's whole-mix payloads by codec (shared by the [`Plan::Shared`] listeners).
    shared: Vec<(MixCodec, Bytes)>,
    /// This tick's whole stereo mix payload.
    shared_stereo: Option<Bytes>,
    /// A copy of this tick's stereo mix accumulator (spatial rooms), before limiting.
    stereo_acc: Vec<i32>,
    /// Scratch: a limited stereo frame.
    stereo_frame: Vec<i16>,
    stats: Arc<MixStats>,
    room_rate: u32,
}

impl Work for Shard {
    fn work(&mut self, phase: u8) {
        let started = std::time::Instant::now();
        match phase {
            PULL => {
                for slot in self.slots.values_mut() {
                    MixJob::pull(slot);
                }
                self.stats.add_nanos(&self.stats.pull_nanos, started);
            }
            ENCODE => {
                self.encode();
                self.stats.add_nanos(&self.stats.encode_nanos, started);
            }
            _ => {}
        }
    }
}

impl Shard {
    /// Encodes (or takes the shared payload of) and sends each participant's mix.
    fn encode(&mut self) {
        let tick = self.tick;
        for slot in self.slots.values_mut() {
            let Some(out) = slot.out.as_mut() else {
                continue;
            };
            let payload = match slot.plan {
                Plan::Nothing => None,
                Plan::Shared => self
                    .shared
                    .iter()
                    .find(|(c, _)| *c == slot.codec)
                    .map(|(_, p)| p.clone()),
                Plan::SharedStereo => self.shared_stereo.clone(),
                Plan::Private => {
                    if slot.private.is_none() {
                        match Encoder::new(slot.codec, self.room_rate, slot.settings) {
                            Ok(e) => slot.private = Some(e),
                            Err(e) => tracing::warn!(error = %e, "room: no encoder"),
                        }
                    }
                    let encoded = slot.private.as_mut().and_then(|e| e.encode(&slot.mix).ok());
                    if encoded.is_some() {
                        self.stats.private_encodes.fetch_add(1, Relaxed);
                    }
                    encoded.map(Bytes::copy_from_slice)
                }
                Plan::PrivateStereo => {
                    if slot.private.is_none() {
                        slot.private = Encoder::stereo(slot.settings).ok();
                    }
                    // The whole room minus its own voice, panned as the others hear it.
                    if slot.contributed {
                        add_panned(&mut self.stereo_acc, &slot.pcm, slot.gain, slot.pan, -1);
                    }
                    limit_into(&self.stereo_acc, &mut self.stereo_frame);
                    if slot.contributed {
                        add_panned(&mut self.stereo_acc, &slot.pcm, slot.gain, slot.pan, 1);
                    }
                    let encoded = slot
                        .private
                        .as_mut()
                        .and_then(|e| e.encode(&self.stereo_frame).ok());
                    if encoded.is_some() {
                        self.stats.private_encodes.fetch_add(1, Relaxed);
                    }
                    encoded.map(Bytes::copy_from_slice)
                }
            };
            if let Some(p) = payload {
                out.send(tick, p);
            }
        }
    }
}

/// An Ogg/Opus file played into the mix (Janus' announcements): a participant that only
/// speaks.
struct FilePlayer {
    packets: Arc<Vec<Bytes>>,
    next: usize,
    looping: bool,
    decoder: Decoder,
    pcm: Vec<i16>,
    fed: bool,
    done: bool,
}

/// A forwarder of the room's whole mix (RTP to a UDP address, a recording...).
struct Forward {
    codec: MixCodec,
    out: RtpOut,
}

/// The job of one room; built by [`super::RoomMix::start`].
pub struct MixJob {
    mixer: Mixer,
    room_rate: u32,
    frame: usize,
    commands: InputReceiver<Command>,
    events: UnboundedSender<MixEvent>,
    /// The participants, spread over shards.
    crew: Crew<Shard>,
    /// Which shard holds each participant.
    homes: BTreeMap<u64, usize>,
    forwards: BTreeMap<u64, Forward>,
    files: BTreeMap<u64, FilePlayer>,
    /// The whole mix encoded once per codec, reused by every non-contributor.
    shared: BTreeMap<MixCodec, Encoder>,
    shared_payload: BTreeMap<MixCodec, Bytes>,
    talk_events: bool,
    /// The room's talking thresholds (participants may have their own).
    vad: VadConfig,
    stats: Arc<MixStats>,
    tick_zero: Option<Duration>,
    /// The earliest `Instant − scheduled time` seen: a tick's lateness is how far its own
    /// value is past this one.
    on_time: Option<Instant>,
    queues: Vec<QueueStats>,
    /// Spatial room: stereo listeners get [`Self::stereo_acc`] encoded in stereo.
    spatial: bool,
    /// The whole stereo mix of this tick, interleaved, before limiting.
    stereo_acc: Vec<i32>,
    /// Scratch: a limited stereo frame.
    stereo_frame: Vec<i16>,
    /// The whole stereo mix encoded once per tick for stereo listeners who did not speak.
    shared_stereo: Option<Encoder>,
}

impl MixJob {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        room_rate: u32,
        vad: VadConfig,
        talk_events: bool,
        spatial: bool,
        commands: InputReceiver<Command>,
        events: UnboundedSender<MixEvent>,
        stats: Arc<MixStats>,
        helpers: Option<Helpers>,
    ) -> Self {
        let frame = room_rate as usize / 50;
        let queues = vec![commands.stats()];
        let stereo = if spatial { frame * 2 } else { 0 };
        let shards = (0..SHARDS)
            .map(|_| Shard {
                slots: BTreeMap::new(),
                tick: 0,
                shared: Vec::with_capacity(4),
                shared_stereo: None,
                stereo_acc: vec![0; stereo],
                stereo_frame: vec![0; stereo],
                stats: stats.clone(),
                room_rate,
            })
            .collect();
        Self {
            mixer: Mixer::new(MixerConfig {
                frame_samples: frame,
                vad,
                gate_dbov: Some(GATE_DBOV),
            }),
            room_rate,
            frame,
            commands,
            events,
            crew: Crew::new(shards, helpers),
            homes: BTreeMap::new(),
            forwards: BTreeMap::new(),
            files: BTreeMap::new(),
            shared: BTreeMap::new(),
            shared_payload: BTreeMap::new(),
            talk_events,
            vad,
            stats,
            tick_zero: None,
            on_time: None,
            queues,
            spatial,
            stereo_acc: vec![0; stereo],
            stereo_frame: vec![0; stereo],
            shared_stereo: None,
        }
    }

    /// Runs `f` on participant `id`'s slot, if it is in the mix.
    fn with_slot(&self, id: u64, f: impl FnOnce(&mut Slot)) {
        if let Some(&home) = self.homes.get(&id) {
            if let Some(slot) = self.crew.shard(home).slots.get_mut(&id) {
                f(slot);
            }
        }
    }

    fn apply(&mut self, command: Command) {
        match command {
            Command::Add(p) => self.add(*p),
            Command::Remove(id) => {
                if let Some(home) = self.homes.remove(&id) {
                    self.crew.shard(home).slots.remove(&id);
                }
                self.mixer.remove(ParticipantId(id));
            }
            Command::Muted(id, muted) => {
                self.with_slot(id, |s| {
                    s.muted = muted;
                    if muted {
                        // As Janus: what was queued while unmuted is not played later.
                        s.jitter.clear();
                        s.decoder.clear();
                    }
                });
                let _ = self.mixer.set_muted(ParticipantId(id), muted);
            }
            Command::Gain(id, gain) => {
                let _ = self.mixer.set_gain(ParticipantId(id), gain);
                self.with_slot(id, |s| s.gain = gain);
            }
            Command::Position(id, position) => {
                self.with_slot(id, |s| s.pan = pan_gains(position));
            }
            Command::Stereo(id, stereo) => {
                let (spatial, rate) = (self.spatial, self.room_rate);
                self.with_slot(id, |s| {
                    // Stereo needs Opus at 48 kHz on both sides.
                    s.stereo = stereo
                        && spatial
                        && s.codec == MixCodec::Opus
                        && rate == MixCodec::Opus.clock_rate();
                    s.private = None;
                });
            }
            Command::Vad(id, vad) => {
                let _ = self.mixer.set_vad(ParticipantId(id), vad);
                self.with_slot(id, |s| {
                    s.vad = vad;
                    s.levels = s.levels.as_ref().map(|_| VoiceActivity::new(vad));
                });
            }
            Command::Sink(id, sink) => {
                self.with_slot(id, |s| s.out = sink.map(|k| RtpOut::new(k, s.codec)));
            }
            Command::AddForward(id, codec, sink) => {
                match Encoder::new(codec, self.room_rate, EncoderSettings::default()) {
                    Ok(_) => {
                        self.forwards.insert(
                            id,
                            Forward {
                                codec,
                                out: RtpOut::new(sink, codec),
                            },
                        );
                    }
                    Err(e) => tracing::warn!(error = %e, "room forwarder: no encoder"),
                }
            }
            Command::RemoveForward(id) => {
                self.forwards.remove(&id);
            }
            Command::TalkEvents(on) => self.talk_events = on,
            Command::ResetDecoder(id) => {
                let rate = self.room_rate;
                self.with_slot(id, |s| match Decoder::new(s.codec, rate) {
                    Ok(d) => {
                        s.decoder = d;
                        s.jitter.clear();
                    }
                    Err(e) => tracing::warn!(error = %e, "room: cannot reset decoder"),
                });
            }
            Command::PlayFile(id, packets, looping) => {
                match Decoder::new(MixCodec::Opus, self.room_rate) {
                    Ok(decoder) => {
                        self.mixer.add(ParticipantId(id));
                        self.files.insert(
                            id,
                            FilePlayer {
                                packets,
                                next: 0,
                                looping,
                                decoder,
                                pcm: vec![0; self.frame],
                                fed: false,
                                done: false,
                            },
                        );
                    }
                    Err(e) => tracing::warn!(error = %e, "room: cannot play file"),
                }
            }
            Command::StopFile(id) => {
                if self.files.remove(&id).is_some() {
                    self.mixer.remove(ParticipantId(id));
                }
            }
            Command::Stop => {}
        }
    }

    fn add(&mut self, p: NewParticipant) {
        let decoder = match Decoder::new(p.codec, self.room_rate) {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(participant = p.id, error = %e, "room: cannot decode participant");
                return;
            }
        };
        let id = ParticipantId(p.id);
        self.mixer.add(id);
        let _ = self.mixer.set_muted(id, p.muted);
        let _ = self.mixer.set_gain(id, p.gain);
        if let Some(vad) = p.vad {
            let _ = self.mixer.set_vad(id, vad);
        }
        if let Some(old) = self.homes.remove(&p.id) {
            self.crew.shard(old).slots.remove(&p.id);
        }
        // The shard with the fewest participants (the first of them on a tie).
        let home = (0..self.crew.len())
            .min_by_key(|&i| (self.crew.shard(i).slots.len(), i))
            .unwrap_or(0);
        self.homes.insert(p.id, home);
        self.crew.shard(home).slots.insert(
            p.id,
            Slot {
                input: p.input,
                jitter: JitterBuffer::new(PREBUFFER, MAX_BUFFERED),
                decoder,
                codec: p.codec,
                settings: p.settings,
                pcm: vec![0; self.frame],
                fed: false,
                muted: p.muted,
                out: p.sink.map(|k| RtpOut::new(k, p.codec)),
                private: None,
                last_contributed: None,
                decode_errors: 0,
                gain: p.gain,
                pan: pan_gains(50),
                stereo: false,
                contributed: false,
                mix: vec![0; self.frame],
                plan: Plan::Nothing,
                vad: p.vad.unwrap_or(self.vad),
                levels: None,
                level_dbov: None,
                levels_announced: false,
                level_age: 0,
            },
        );
    }

    /// Pulls one frame for `slot` out of its queue, jitter buffer and decoder.
    fn pull(slot: &mut Slot) {
        let mut levels = TickLevels::default();
        for packet in slot.input.drain() {
            if let Some(level) = packet.level {
                levels.add(level);
            }
            if !slot.muted {
                slot.jitter.push(packet);
            }
        }
        match levels.mean_dbov() {
            Some(level) => {
                slot.level_dbov = Some(level);
                slot.level_age = 0;
            }
            // No packet this tick: the last level holds a little, then it is silence.
            None => {
                slot.level_age = slot.level_age.saturating_add(1);
                if slot.level_age > LEVEL_HOLD_TICKS {
                    slot.level_dbov = None;
                }
            }
        }
        if slot.level_dbov.is_some() && slot.levels.is_none() {
            slot.levels = Some(VoiceActivity::new(slot.vad));
        }
        let need = slot.pcm.len();
        // At most a few pops per tick: enough for 10 ms packets, bounded on garbage.
        for _ in 0..4 {
            if slot.decoder.buffered() >= need {
                break;
            }
            let result = match slot.jitter.pop() {
                Pop::Packet(p) => slot.decoder.decode(&p.payload),
                Pop::Lost { next } => slot.decoder.conceal(next.as_deref()),
                Pop::Empty => break,
            };
            if let Err(e) = result {
                slot.decode_errors += 1;
                if slot.decode_errors.is_power_of_two() {
                    tracing::debug!(error = %e, errors = slot.decode_errors, "room: undecodable packet");
                }
            }
        }
        slot.fed = slot.decoder.take_frame(&mut slot.pcm);
        if !slot.fed {
            // Not enough for a whole frame: start the next one clean rather than late.
            slot.decoder.clear();
        }
    }

    /// One frame of a file, decoding packets as needed; marks it done at its end.
    fn pull_file(file: &mut FilePlayer) {
        let need = file.pcm.len();
        for _ in 0..8 {
            if file.decoder.buffered() >= need {
                break;
            }
            if file.next >= file.packets.len() {
                if file.looping && !file.packets.is_empty() {
                    file.next = 0;
                } else {
                    break;
                }
            }
            let packet = &file.packets[file.next];
            file.next += 1;
            if file.decoder.decode(packet).is_err() {
                let _ = file.decoder.conceal(None);
            }
        }
        file.fed = file.decoder.take_frame(&mut file.pcm);
        if !file.fed && file.next >= file.packets.len() && !file.looping {
            file.done = true;
        }
    }

    fn tick_number(&mut self, now: Duration) -> u64 {
        let zero = *self.tick_zero.get_or_insert(now);
        ((now - zero).as_nanos() / TICK.as_nanos()) as u64
    }

    /// How far behind its schedule a tick scheduled at `now` starts, measured at `at`:
    /// against the earliest start seen, so the worker's own clock origin is not needed.
    fn lateness(&mut self, now: Duration, at: Instant) -> Duration {
        let Some(base) = at.checked_sub(now) else {
            return Duration::ZERO;
        };
        let on_time = *self.on_time.get_or_insert(base);
        if base < on_time {
            self.on_time = Some(base);
            return Duration::ZERO;
        }
        base - on_time
    }

    /// Decodes and mixes one tick; when `send`, encodes and sends it too.
    fn run_tick(&mut self, tick: u64, send: bool) {
        let share = self.homes.len() >= SHARE_FROM;
        self.crew.run(PULL, share);
        let started = Instant::now();
        for file in self.files.values_mut() {
            Self::pull_file(file);
        }
        let finished: Vec<u64> = self
            .files
            .iter()
            .filter(|(_, f)| f.done)
            .map(|(&id, _)| id)
            .collect();
        for id in finished {
            self.files.remove(&id);
            self.mixer.remove(ParticipantId(id));
            let _ = self.events.send(MixEvent::FileDone(id));
        }
        let mut shards: Vec<_> = self.crew.all().collect();
        let inputs: Vec<(ParticipantId, &[i16])> = shards
            .iter()
            .flat_map(|shard| shard.slots.iter())
            .filter(|(_, s)| s.fed)
            .map(|(&id, s)| (ParticipantId(id), s.pcm.as_slice()))
            .chain(
                self.files
                    .iter()
                    .filter(|(_, f)| f.fed)
                    .map(|(&id, f)| (ParticipantId(id), f.pcm.as_slice())),
            )
            .collect();
        let events = self.mixer.mix(&inputs);
        drop(inputs);
        // Talking: from the decoded audio (the mixer), except for participants whose packets
        // carry their level (RFC 6464), judged on that.
        for e in events {
            let id = e.participant.0;
            let by_levels = self
                .homes
                .get(&id)
                .and_then(|&h| shards[h].slots.get(&id))
                .is_some_and(|s| s.levels.is_some());
            if self.talk_events && !by_levels {
                let _ = self.events.send(MixEvent::Talking {
                    id,
                    talking: e.talking,
                    level_dbov: e.level,
                });
            }
        }
        for shard in shards.iter_mut() {
            for (&id, slot) in shard.slots.iter_mut() {
                let Some(vad) = slot.levels.as_mut() else {
                    continue;
                };
                // Muted or silent (nothing arrived): quiet, as for the decoded audio.
                let level = match slot.level_dbov {
                    Some(l) if !slot.muted => l,
                    _ => -127.0,
                };
                self.stats.level_ticks.fetch_add(1, Relaxed);
                if !slot.levels_announced {
                    slot.levels_announced = true;
                    tracing::info!(
                        participant = id,
                        "room: talking detection from the RFC 6464 audio level extension"
                    );
                }
                if let Some(talking) = vad.update_level(level) {
                    if self.talk_events {
                        let _ = self.events.send(MixEvent::Talking {
                            id,
                            talking,
                            level_dbov: level,
                        });
                    }
                }
            }
        }
        if self.spatial {
            self.stereo_acc.fill(0);
            for (&id, s) in shards.iter().flat_map(|shard| shard.slots.iter()) {
                if s.fed && self.mixer.contributed(ParticipantId(id)) == Some(true) {
                    add_panned(&mut self.stereo_acc, &s.pcm, s.gain, s.pan, 1);
                }
            }
            for (&id, f) in &self.files {
                if f.fed && self.mixer.contributed(ParticipantId(id)) == Some(true) {
                    add_panned(&mut self.stereo_acc, &f.pcm, 1.0, pan_gains(50), 1);
                }
            }
        }
        // Who gets what: a private encoding for recent speakers, the shared one otherwise.
        let mut wanted: [bool; 3] = [false; 3];
        let mut wanted_stereo = false;
        for f in self.forwards.values() {
            wanted[codec_index(f.codec)] = true;
        }
        for shard in shards.iter_mut() {
            for (&id, slot) in shard.slots.iter_mut() {
                slot.contributed = self.mixer.contributed(ParticipantId(id)) == Some(true);
                if slot.contributed {
                    slot.last_contributed = Some(tick);
                }
                let keep_private = slot
                    .last_contributed
                    .is_some_and(|t| tick.saturating_sub(t) < PRIVATE_HOLD_TICKS);
                slot.plan = match (slot.out.is_some(), slot.stereo, keep_private) {
                    (false, _, _) => Plan::Nothing,
                    (true, true, true) => Plan::PrivateStereo,
                    (true, true, false) => Plan::SharedStereo,
                    (true, false, true) => Plan::Private,
                    (true, false, false) => Plan::Shared,
                };
                match slot.plan {
                    Plan::Private => {
                        if let Some(mix) = self.mixer.output(ParticipantId(id)) {
                            slot.mix.copy_from_slice(mix);
                        }
                    }
                    Plan::Shared => wanted[codec_index(slot.codec)] = true,
                    Plan::SharedStereo => wanted_stereo = true,
                    Plan::PrivateStereo | Plan::Nothing => {}
                }
                if !keep_private {
                    // An encoder nobody used this tick would resume with stale state.
                    slot.private = None;
                }
            }
        }
        self.shared_payload.clear();
        let full = self.mixer.full_mix();
        for codec in [MixCodec::Opus, MixCodec::Pcmu, MixCodec::Pcma] {
            if send && wanted[codec_index(codec)] {
                shared_payload(
                    &mut self.shared,
                    &mut self.shared_payload,
                    codec,
                    self.room_rate,
                    full,
                    &self.stats,
                );
            }
        }
        let mut shared_stereo_payload = None;
        if send && wanted_stereo {
            if self.shared_stereo.is_none() {
                self.shared_stereo = Encoder::stereo(EncoderSettings::default()).ok();
            }
            if let Some(encoder) = self.shared_stereo.as_mut() {
                limit_into(&self.stereo_acc, &mut self.stereo_frame);
                shared_stereo_payload = encoder
                    .encode(&self.stereo_frame)
                    .ok()
                    .map(Bytes::copy_from_slice);
                self.stats.shared_encodes.fetch_add(1, Relaxed);
            }
        }
        for shard in shards.iter_mut() {
            shard.tick = tick;
            shard.shared.clear();
            shard
                .shared
                .extend(self.shared_payload.iter().map(|(&c, p)| (c, p.clone())));
            shard.shared_stereo = shared_stereo_payload.clone();
            if self.spatial {
                shard.stereo_acc.copy_from_slice(&self.stereo_acc);
            }
        }
        drop(shards);
        self.stats.add_nanos(&self.stats.mix_nanos, started);
        if send {
            self.crew.run(ENCODE, share);
            for f in self.forwards.values_mut() {
                if let Some(p) = self.shared_payload.get(&f.codec) {
                    f.out.send(tick, p.clone());
                }
            }
        }
        if send {
            // An encoder nobody used this tick would resume with stale state: drop it.
            if shared_stereo_payload.is_none() {
                self.shared_stereo = None;
            }
            let used = &self.shared_payload;
            self.shared.retain(|codec, _| used.contains_key(codec));
        }
        self.stats.ticks.fetch_add(1, Relaxed);
        self.stats
            .participants
            .store(self.homes.len() as u64, Relaxed);
        self.stats.helped_shards.store(self.crew.helped(), Relaxed);
    }
}

impl MixJob {
    /// One tick scheduled at `now` that starts at `started` (real time).
    fn tick_at(&mut self, now: Duration, started: Instant) -> JobStatus {
        while let Some(command) = self.commands.try_recv() {
            if matches!(command, Command::Stop) {
                return JobStatus::Done;
            }
            self.apply(command);
        }
        let tick = self.tick_number(now);
        let send = self.lateness(now, started) <= LATE_SKIP;
        if !send {
            self.stats.late_ticks.fetch_add(1, Relaxed);
        }
        self.run_tick(tick, send);
        self.stats
            .record_tick(started.elapsed().as_nanos().min(u128::from(u64::MAX)) as u64);
        JobStatus::Continue
    }
}

/// Index of `codec` in per-codec arrays.
fn codec_index(codec: MixCodec) -> usize {
    match codec {
        MixCodec::Opus => 0,
        MixCodec::Pcmu => 1,
        MixCodec::Pcma => 2,
    }
}

use std::sync::atomic::Ordering::Relaxed;

/// The whole mix in `codec`, encoded at most once per tick.
fn shared_payload(
    encoders: &mut BTreeMap<MixCodec, Encoder>,
    done: &mut BTreeMap<MixCodec, Bytes>,
    codec: MixCodec,
    room_rate: u32,
    full: &[i16],
    stats: &MixStats,
) -> Option<Bytes> {
    if let Some(p) = done.get(&codec) {
        return Some(p.clone());
    }
    let encoder = match encoders.entry(codec) {
        std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
        std::collections::btree_map::Entry::Vacant(v) => {
            match Encoder::new(codec, room_rate, EncoderSettings::default()) {
                Ok(e) => v.insert(e),
                Err(e) => {
                    tracing::warn!(error = %e, "room: no shared encoder");
                    return None;
                }
            }
        }
    };
    let payload = Bytes::copy_from_slice(encoder.encode(full).ok()?);
    stats.shared_encodes.fetch_add(1, Relaxed);
    done.insert(codec, payload.clone());
    Some(payload)
}

impl MediaJob for MixJob {
    fn tick(&mut self, now: Duration) -> JobStatus {
        self.tick_at(now, Instant::now())
    }

    fn queues(&self) -> Vec<QueueStats> {
        self.queues.clone()
    }

    fn name(&self) -> &str {
        "room mixer"
    }
}

#[cfg(test)]
mod tests;
