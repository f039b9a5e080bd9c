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
use std::time::Duration;

use bifrons_transcoding::mixer::{Mixer, MixerConfig, ParticipantId, VadConfig};
use bytes::Bytes;
use tokio::sync::mpsc::UnboundedSender;

use super::codec::{Decoder, Encoder, EncoderSettings, MixCodec};
use super::jitter::{AudioPacket, JitterBuffer, Pop};
use super::{Command, MixEvent, MixStats, NewParticipant, OutSink};
use crate::media::RtpPacket;
use crate::services::workers::{InputReceiver, JobStatus, MediaJob, QueueStats, TICK};

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
}

/// Left and right gains of a voice at `position` (0 left … 50 centre … 100 right), as Janus'
/// AudioBridge pans: full level on the near side, falling linearly to silence on the far side
/// as the voice moves away from the centre.
pub fn pan_gains(position: u8) -> [f32; 2] {
    let p = f32::from(position.min(100));
    [((100.0 - p) / 50.0).min(1.0), (p / 50.0).min(1.0)]
}

/// Adds `pcm` (mono) at `gain`, panned by `pan`, into the interleaved stereo accumulator.
fn add_panned(acc: &mut [i32], pcm: &[i16], gain: f32, pan: [f32; 2], sign: i32) {
    let (l, r) = (gain * pan[0], gain * pan[1]);
    for (frame, &s) in acc.chunks_exact_mut(2).zip(pcm) {
        let s = f32::from(s);
        frame[0] += sign * (s * l) as i32;
        frame[1] += sign * (s * r) as i32;
    }
}

/// The accumulator clamped to 16 bits into `out`.
fn clamp_into(acc: &[i32], out: &mut [i16]) {
    for (o, &a) in out.iter_mut().zip(acc) {
        *o = a.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16;
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
    slots: BTreeMap<u64, Slot>,
    forwards: BTreeMap<u64, Forward>,
    files: BTreeMap<u64, FilePlayer>,
    /// The whole mix encoded once per codec, reused by every non-contributor.
    shared: BTreeMap<MixCodec, Encoder>,
    shared_payload: BTreeMap<MixCodec, Bytes>,
    talk_events: bool,
    stats: Arc<MixStats>,
    tick_zero: Option<Duration>,
    queues: Vec<QueueStats>,
    /// Spatial room: stereo listeners get [`Self::stereo_acc`] encoded in stereo.
    spatial: bool,
    /// The whole stereo mix of this tick, interleaved, before clamping.
    stereo_acc: Vec<i32>,
    /// Scratch: a clamped stereo frame.
    stereo_frame: Vec<i16>,
    /// The whole stereo mix encoded once per tick for stereo listeners who did not speak.
    shared_stereo: Option<Encoder>,
}

impl MixJob {
    pub(super) fn new(
        room_rate: u32,
        vad: VadConfig,
        talk_events: bool,
        spatial: bool,
        commands: InputReceiver<Command>,
        events: UnboundedSender<MixEvent>,
        stats: Arc<MixStats>,
    ) -> Self {
        let frame = room_rate as usize / 50;
        let queues = vec![commands.stats()];
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
            slots: BTreeMap::new(),
            forwards: BTreeMap::new(),
            files: BTreeMap::new(),
            shared: BTreeMap::new(),
            shared_payload: BTreeMap::new(),
            talk_events,
            stats,
            tick_zero: None,
            queues,
            spatial,
            stereo_acc: if spatial {
                vec![0; frame * 2]
            } else {
                Vec::new()
            },
            stereo_frame: if spatial {
                vec![0; frame * 2]
            } else {
                Vec::new()
            },
            shared_stereo: None,
        }
    }

    fn apply(&mut self, command: Command) {
        match command {
            Command::Add(p) => self.add(*p),
            Command::Remove(id) => {
                self.slots.remove(&id);
                self.mixer.remove(ParticipantId(id));
            }
            Command::Muted(id, muted) => {
                if let Some(s) = self.slots.get_mut(&id) {
                    s.muted = muted;
                    if muted {
                        // As Janus: what was queued while unmuted is not played later.
                        s.jitter.clear();
                        s.decoder.clear();
                    }
                }
                let _ = self.mixer.set_muted(ParticipantId(id), muted);
            }
            Command::Gain(id, gain) => {
                let _ = self.mixer.set_gain(ParticipantId(id), gain);
                if let Some(s) = self.slots.get_mut(&id) {
                    s.gain = gain;
                }
            }
            Command::Position(id, position) => {
                if let Some(s) = self.slots.get_mut(&id) {
                    s.pan = pan_gains(position);
                }
            }
            Command::Stereo(id, stereo) => {
                if let Some(s) = self.slots.get_mut(&id) {
                    // Stereo needs Opus at 48 kHz on both sides.
                    s.stereo = stereo
                        && self.spatial
                        && s.codec == MixCodec::Opus
                        && self.room_rate == MixCodec::Opus.clock_rate();
                    s.private = None;
                }
            }
            Command::Vad(id, vad) => {
                let _ = self.mixer.set_vad(ParticipantId(id), vad);
            }
            Command::Sink(id, sink) => {
                if let Some(s) = self.slots.get_mut(&id) {
                    s.out = sink.map(|k| RtpOut::new(k, s.codec));
                }
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
                if let Some(s) = self.slots.get_mut(&id) {
                    match Decoder::new(s.codec, self.room_rate) {
                        Ok(d) => {
                            s.decoder = d;
                            s.jitter.clear();
                        }
                        Err(e) => tracing::warn!(error = %e, "room: cannot reset decoder"),
                    }
                }
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
        self.slots.insert(
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
            },
        );
    }

    /// Pulls one frame for `slot` out of its queue, jitter buffer and decoder.
    fn pull(slot: &mut Slot) {
        for packet in slot.input.drain() {
            if !slot.muted {
                slot.jitter.push(packet);
            }
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

    fn run_tick(&mut self, tick: u64) {
        for slot in self.slots.values_mut() {
            Self::pull(slot);
        }
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
        let inputs: Vec<(ParticipantId, &[i16])> = self
            .slots
            .iter()
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
        if self.talk_events {
            for e in events {
                let _ = self.events.send(MixEvent::Talking {
                    id: e.participant.0,
                    talking: e.talking,
                    level_dbov: e.level,
                });
            }
        }
        self.shared_payload.clear();
        let mut shared_stereo_payload: Option<Bytes> = None;
        if self.spatial {
            self.stereo_acc.fill(0);
            for (&id, s) in &self.slots {
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
        let full = self.mixer.full_mix();
        for (&id, slot) in self.slots.iter_mut() {
            let contributed = self.mixer.contributed(ParticipantId(id)) == Some(true);
            if contributed {
                slot.last_contributed = Some(tick);
            }
            let keep_private = slot
                .last_contributed
                .is_some_and(|t| tick.saturating_sub(t) < PRIVATE_HOLD_TICKS);
            let Some(out) = slot.out.as_mut() else {
                continue;
            };
            if slot.stereo {
                let payload = if keep_private {
                    if slot.private.is_none() {
                        slot.private = Encoder::stereo(slot.settings).ok();
                    }
                    let Some(encoder) = slot.private.as_mut() else {
                        continue;
                    };
                    // The whole room minus its own voice, panned as the others hear it.
                    if contributed {
                        add_panned(&mut self.stereo_acc, &slot.pcm, slot.gain, slot.pan, -1);
                    }
                    clamp_into(&self.stereo_acc, &mut self.stereo_frame);
                    if contributed {
                        add_panned(&mut self.stereo_acc, &slot.pcm, slot.gain, slot.pan, 1);
                    }
                    let encoded = encoder.encode(&self.stereo_frame).ok();
                    self.stats.private_encodes.fetch_add(1, Relaxed);
                    encoded.map(Bytes::copy_from_slice)
                } else {
                    slot.private = None;
                    if shared_stereo_payload.is_none() {
                        if self.shared_stereo.is_none() {
                            self.shared_stereo = Encoder::stereo(EncoderSettings::default()).ok();
                        }
                        if let Some(encoder) = self.shared_stereo.as_mut() {
                            clamp_into(&self.stereo_acc, &mut self.stereo_frame);
                            shared_stereo_payload = encoder
                                .encode(&self.stereo_frame)
                                .ok()
                                .map(Bytes::copy_from_slice);
                            self.stats.shared_encodes.fetch_add(1, Relaxed);
                        }
                    }
                    shared_stereo_payload.clone()
                };
                if let Some(p) = payload {
                    out.send(tick, p);
                }
                continue;
            }
            if keep_private {
                if slot.private.is_none() {
                    match Encoder::new(slot.codec, self.room_rate, slot.settings) {
                        Ok(e) => slot.private = Some(e),
                        Err(e) => {
                            tracing::warn!(error = %e, "room: no encoder");
                            continue;
                        }
                    }
                }
                let Some(encoder) = slot.private.as_mut() else {
                    continue;
                };
                let Some(mix) = self.mixer.output(ParticipantId(id)) else {
                    continue;
                };
                if let Ok(payload) = encoder.encode(mix) {
                    self.stats.private_encodes.fetch_add(1, Relaxed);
                    out.send(tick, Bytes::copy_from_slice(payload));
                }
            } else {
                slot.private = None;
                let payload = shared_payload(
                    &mut self.shared,
                    &mut self.shared_payload,
                    slot.codec,
                    self.room_rate,
                    full,
                    &self.stats,
                );
                if let Some(p) = payload {
                    out.send(tick, p);
                }
            }
        }
        for f in self.forwards.values_mut() {
            let payload = shared_payload(
                &mut self.shared,
                &mut self.shared_payload,
                f.codec,
                self.room_rate,
                full,
                &self.stats,
            );
            if let Some(p) = payload {
                f.out.send(tick, p);
            }
        }
        // An encoder nobody used this tick would resume with stale state: drop it.
        if shared_stereo_payload.is_none() {
            self.shared_stereo = None;
        }
        let used = &self.shared_payload;
        self.shared.retain(|codec, _| used.contains_key(codec));
        self.stats.ticks.fetch_add(1, Relaxed);
        self.stats
            .participants
            .store(self.slots.len() as u64, Relaxed);
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
        while let Some(command) = self.commands.try_recv() {
            if matches!(command, Command::Stop) {
                return JobStatus::Done;
            }
            self.apply(command);
        }
        let tick = self.tick_number(now);
        let started = std::time::Instant::now();
        self.run_tick(tick);
        self.stats
            .record_tick(started.elapsed().as_nanos().min(u128::from(u64::MAX)) as u64);
        JobStatus::Continue
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
