//! The mixing job in fake time: real Opus in, real Opus out, ticks driven by the test.

use std::time::Duration;

use bifrons_transcoding::opus_codec::{OpusDecoder, OpusEncoder, OpusEncoderConfig};
use bifrons_transcoding::AudioFrame;

use super::*;
use crate::media::DetachedReceiver;
use crate::media::{MediaKind, MediaSender};
use crate::services::rooms::{NewParticipant, ParticipantInput};
use crate::services::workers::input_queue;

const RATE: u32 = 16_000;

struct Peer {
    id: u64,
    freq: f32,
    input: ParticipantInput,
    encoder: OpusEncoder,
    rx: DetachedReceiver,
    decoder: OpusDecoder,
    heard: Vec<i16>,
    seqs: Vec<u16>,
    timestamps: Vec<u32>,
    sent: u16,
    /// The RFC 6464 level its packets carry, if any.
    level: Option<u8>,
}

impl Peer {
    fn send_tone(&mut self, tick: usize) {
        let samples: Vec<i16> = (0..960)
            .map(|i| {
                let t = (tick * 960 + i) as f32 / 48_000.0;
                (6000.0 * (2.0 * std::f32::consts::PI * self.freq * t).sin()) as i16
            })
            .collect();
        let frame = AudioFrame::new(samples, 48_000, 1, 0).unwrap();
        let payload = Bytes::copy_from_slice(self.encoder.encode(&frame).unwrap());
        self.input.push(AudioPacket {
            level: self.level,
            seq: self.sent,
            timestamp: u32::from(self.sent) * 960,
            payload,
        });
        self.sent = self.sent.wrapping_add(1);
    }

    fn collect(&mut self) {
        let (packets, _) = self.rx.drain();
        for (kind, p) in packets {
            assert_eq!(kind, MediaKind::Audio);
            self.seqs.push(p.sequence_number);
            self.timestamps.push(p.timestamp);
            let pcm = self.decoder.decode(&p.payload, p.timestamp).unwrap();
            self.heard.extend_from_slice(&pcm.samples);
        }
    }
}

/// Energy of `pcm` at `freq` relative to its total energy (Goertzel), 0..=1.
fn share_at(pcm: &[i16], freq: f32, rate: u32) -> f64 {
    let w = 2.0 * std::f64::consts::PI * f64::from(freq) / f64::from(rate);
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in pcm {
        let s0 = f64::from(x) + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    let total: f64 = pcm.iter().map(|&x| f64::from(x).powi(2)).sum();
    if total == 0.0 {
        return 0.0;
    }
    (2.0 * power / pcm.len() as f64) / total
}

fn rms(pcm: &[i16]) -> f64 {
    (pcm.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / pcm.len().max(1) as f64).sqrt()
}

struct Room {
    job: MixJob,
    commands: crate::services::workers::InputSender<Command>,
    events: tokio::sync::mpsc::UnboundedReceiver<MixEvent>,
    stats: Arc<MixStats>,
    now: Duration,
    origin: std::time::Instant,
}

fn room(talk_events: bool) -> Room {
    let (commands, rx) = input_queue(64);
    let (tx, events) = tokio::sync::mpsc::unbounded_channel();
    let stats = Arc::new(MixStats::default());
    let vad = VadConfig::default();
    let job = MixJob::new(RATE, vad, talk_events, false, rx, tx, stats.clone(), None);
    Room {
        job,
        commands,
        events,
        stats,
        now: Duration::ZERO,
        origin: std::time::Instant::now(),
    }
}

impl Room {
    fn join(&mut self, id: u64, freq: f32, muted: bool) -> Peer {
        let (mut p, input) = NewParticipant::new(id, MixCodec::Opus);
        let (sender, rx) = MediaSender::detached(4096);
        p.sink = Some(OutSink::random(Arc::new(sender), 111));
        p.muted = muted;
        self.commands
            .try_push(Command::Add(Box::new(p)))
            .ok()
            .unwrap();
        Peer {
            id,
            freq,
            input,
            encoder: OpusEncoder::new(OpusEncoderConfig::default()).unwrap(),
            rx,
            decoder: OpusDecoder::new(1).unwrap(),
            heard: Vec::new(),
            seqs: Vec::new(),
            timestamps: Vec::new(),
            sent: 1000,
            level: None,
        }
    }

    /// One tick, on time whatever the test thread's speed (`late` adds real-time lateness).
    fn tick(&mut self) {
        self.tick_late(Duration::ZERO);
    }

    fn tick_late(&mut self, late: Duration) {
        self.now += TICK;
        let at = self.origin + self.now + late;
        assert_eq!(self.job.tick_at(self.now, at), JobStatus::Continue);
    }
}

/// `ticks` ticks where every peer in `sending` sends its tone, everybody collects.
fn run(room: &mut Room, peers: &mut [Peer], sending: &[u64], ticks: usize, start: usize) {
    for t in start..start + ticks {
        for p in peers.iter_mut() {
            if sending.contains(&p.id) {
                p.send_tone(t);
            }
        }
        room.tick();
        for p in peers.iter_mut() {
            p.collect();
        }
    }
}

#[test]
fn each_participant_hears_the_others_tones_but_not_its_own() {
    let mut room = room(false);
    let mut peers = vec![
        room.join(1, 440.0, false),
        room.join(2, 1000.0, false),
        room.join(3, 2500.0, false),
    ];
    run(&mut room, &mut peers, &[1, 2, 3], 100, 0);
    for p in &peers {
        // The last second, after the jitter buffer and codecs settled.
        let tail = &p.heard[p.heard.len() - 48_000..];
        assert!(rms(tail) > 500.0, "participant {} hears the room", p.id);
        for other in &peers {
            let share = share_at(tail, other.freq, 48_000);
            if other.id == p.id {
                assert!(share < 0.01, "{} hears itself: {share}", p.id);
            } else {
                assert!(share > 0.2, "{} misses {}: {share}", p.id, other.id);
            }
        }
    }
}

#[test]
fn rtp_sequence_numbers_and_timestamps_advance_per_tick() {
    let mut room = room(false);
    let mut peers = vec![room.join(1, 440.0, false), room.join(2, 1000.0, false)];
    run(&mut room, &mut peers, &[1], 30, 0);
    for p in &peers {
        assert_eq!(p.seqs.len(), 30, "one packet per tick for {}", p.id);
        for w in p.seqs.windows(2) {
            assert_eq!(w[1], w[0].wrapping_add(1));
        }
        for w in p.timestamps.windows(2) {
            assert_eq!(w[1].wrapping_sub(w[0]), 960, "20 ms of a 48 kHz clock");
        }
    }
    // A stalled worker that skips periods: timestamps follow real time, sequence stays +1.
    room.now += TICK * 10;
    run(&mut room, &mut peers, &[1], 1, 30);
    let p = &peers[0];
    let n = p.seqs.len();
    assert_eq!(p.seqs[n - 1], p.seqs[n - 2].wrapping_add(1));
    assert_eq!(
        p.timestamps[n - 1].wrapping_sub(p.timestamps[n - 2]),
        960 * 11
    );
}

#[test]
fn silent_listeners_share_one_encoding_and_speakers_get_their_own() {
    let mut room = room(false);
    let mut peers = vec![
        room.join(1, 440.0, false),
        room.join(2, 1000.0, false),
        room.join(3, 2500.0, false),
        room.join(4, 3000.0, false),
    ];
    // Only 1 speaks: 2, 3 and 4 share the whole mix; 1 gets its own (silence).
    run(&mut room, &mut peers, &[1], 50, 0);
    let private = room.stats.private_encodes.load(Relaxed);
    let shared = room.stats.shared_encodes.load(Relaxed);
    assert!(
        private <= 50,
        "one private encoding per tick at most: {private}"
    );
    assert_eq!(
        shared, 50,
        "one shared encoding per tick for three listeners"
    );
    for p in &peers[1..] {
        let tail = &p.heard[p.heard.len() - 24_000..];
        assert!(share_at(tail, 440.0, 48_000) > 0.5, "{} hears 1", p.id);
    }
    assert!(rms(&peers[0].heard[peers[0].heard.len() - 24_000..]) < 50.0);
}

#[test]
fn a_muted_participant_is_not_heard_but_still_hears() {
    let mut room = room(false);
    let mut peers = vec![room.join(1, 440.0, true), room.join(2, 1000.0, false)];
    run(&mut room, &mut peers, &[1, 2], 50, 0);
    let tail1 = &peers[0].heard[peers[0].heard.len() - 24_000..];
    let tail2 = &peers[1].heard[peers[1].heard.len() - 24_000..];
    assert!(share_at(tail1, 1000.0, 48_000) > 0.5, "muted 1 hears 2");
    assert!(
        rms(tail2) < 50.0,
        "2 hears nothing of muted 1: {}",
        rms(tail2)
    );
    // Unmute: 2 hears 1 again.
    room.commands
        .try_push(Command::Muted(1, false))
        .ok()
        .unwrap();
    run(&mut room, &mut peers, &[1, 2], 50, 50);
    let tail2 = &peers[1].heard[peers[1].heard.len() - 24_000..];
    assert!(share_at(tail2, 440.0, 48_000) > 0.5);
}

#[test]
fn talking_events_follow_voice_activity() {
    let mut room = room(true);
    let mut peers = vec![room.join(1, 440.0, false), room.join(2, 1000.0, false)];
    run(&mut room, &mut peers, &[1], 30, 0);
    let ev = room.events.try_recv().unwrap();
    assert!(
        matches!(
            ev,
            MixEvent::Talking {
                id: 1,
                talking: true,
                ..
            }
        ),
        "{ev:?}"
    );
    assert!(room.events.try_recv().is_err(), "2 never talked");
    run(&mut room, &mut peers, &[], 40, 30);
    let ev = room.events.try_recv().unwrap();
    assert!(
        matches!(
            ev,
            MixEvent::Talking {
                id: 1,
                talking: false,
                ..
            }
        ),
        "{ev:?}"
    );
}

#[test]
fn lost_packets_are_concealed_and_garbage_does_not_stop_the_mix() {
    let mut room = room(false);
    let mut peers = [room.join(1, 440.0, false), room.join(2, 1000.0, false)];
    for t in 0..60 {
        if t % 7 == 3 {
            // Lost on the way: the sequence number is used, nothing arrives.
            peers[0].sent = peers[0].sent.wrapping_add(1);
        } else if t % 11 == 5 {
            peers[0].input.push(AudioPacket {
                level: None,
                seq: peers[0].sent,
                timestamp: 0,
                payload: Bytes::from_static(&[0xff, 0xff, 0xff]),
            });
            peers[0].sent = peers[0].sent.wrapping_add(1);
        } else {
            peers[0].send_tone(t);
        }
        room.tick();
        for p in peers.iter_mut() {
            p.collect();
        }
    }
    let heard = &peers[1].heard;
    assert_eq!(heard.len(), 60 * 960, "a packet every tick");
    let tail = &heard[heard.len() - 24_000..];
    assert!(share_at(tail, 440.0, 48_000) > 0.3);
    // Removing a participant closes its input.
    room.commands.try_push(Command::Remove(1)).ok().unwrap();
    room.tick();
    assert!(!peers[0].input.push(AudioPacket {
        level: None,
        seq: 0,
        timestamp: 0,
        payload: Bytes::new(),
    }));
}

#[test]
fn pan_gains_follow_janus_balance() {
    assert_eq!(pan_gains(0), [1.0, 0.0]);
    assert_eq!(pan_gains(50), [1.0, 1.0]);
    assert_eq!(pan_gains(100), [0.0, 1.0]);
    assert_eq!(pan_gains(25), [1.0, 0.5]);
    assert_eq!(pan_gains(200), [0.0, 1.0]);
}

#[test]
fn a_spatial_room_pans_each_voice_for_stereo_listeners() {
    let (commands, rx) = input_queue(64);
    let (tx, events) = tokio::sync::mpsc::unbounded_channel();
    let stats = Arc::new(MixStats::default());
    let job = MixJob::new(
        48_000,
        VadConfig::default(),
        false,
        true,
        rx,
        tx,
        stats.clone(),
        None,
    );
    let mut room = Room {
        job,
        commands,
        events,
        stats,
        now: Duration::ZERO,
        origin: std::time::Instant::now(),
    };
    let mut peers = vec![room.join(1, 440.0, false), room.join(2, 1000.0, false)];
    peers[1].decoder = OpusDecoder::new(2).unwrap();
    for c in [Command::Stereo(2, true), Command::Position(1, 0)] {
        room.commands.try_push(c).ok().unwrap();
    }
    let channels = |pcm: &[i16]| {
        let left: Vec<i16> = pcm.iter().step_by(2).copied().collect();
        let right: Vec<i16> = pcm.iter().skip(1).step_by(2).copied().collect();
        (rms(&left), rms(&right))
    };
    run(&mut room, &mut peers, &[1], 100, 0);
    let (l, r) = channels(&peers[1].heard[peers[1].heard.len() - 96_000..]);
    assert!(
        l > 500.0 && l > 10.0 * r,
        "at 0 the voice is on the left: {l} / {r}"
    );
    room.commands
        .try_push(Command::Position(1, 100))
        .ok()
        .unwrap();
    run(&mut room, &mut peers, &[1], 100, 100);
    let (l, r) = channels(&peers[1].heard[peers[1].heard.len() - 96_000..]);
    assert!(
        r > 500.0 && r > 10.0 * l,
        "at 100 the voice is on the right: {l} / {r}"
    );
    // The speaker, a mono listener, still hears nothing of itself.
    let own = &peers[0].heard[peers[0].heard.len() - 48_000..];
    assert!(share_at(own, 440.0, 48_000) < 0.01);
}

#[test]
fn ticks_that_start_late_are_mixed_but_not_sent_and_the_stream_returns_to_schedule() {
    let mut room = room(false);
    let mut peers = vec![room.join(1, 440.0, false), room.join(2, 1000.0, false)];
    run(&mut room, &mut peers, &[1], 20, 0);
    // The worker was kept off its core for 100 ms: the ticks it catches up on start 100,
    // 80, 60, 40 and 20 ms late; the first three would reach the receivers too late.
    for (t, late) in [100u64, 80, 60, 40, 20].into_iter().enumerate() {
        peers[0].send_tone(20 + t);
        room.tick_late(Duration::from_millis(late));
        for p in peers.iter_mut() {
            p.collect();
        }
    }
    run(&mut room, &mut peers, &[1], 20, 25);
    assert_eq!(room.stats.late_ticks.load(Relaxed), 3);
    let p = &peers[1];
    assert_eq!(p.seqs.len(), 45 - 3, "no packet for the three late ticks");
    for w in p.seqs.windows(2) {
        assert_eq!(
            w[1],
            w[0].wrapping_add(1),
            "sequence numbers stay continuous"
        );
    }
    let gaps: Vec<u32> = p
        .timestamps
        .windows(2)
        .map(|w| w[1].wrapping_sub(w[0]))
        .filter(|&d| d != 960)
        .collect();
    assert_eq!(gaps, vec![960 * 4], "the timestamps skip the three periods");
    // The stream carries on: the talker is still heard after the stall.
    let tail = &p.heard[p.heard.len() - 960 * 10..];
    assert!(share_at(tail, 440.0, 48_000) > 0.3);
}

#[test]
fn a_large_room_shares_its_ticks_with_the_other_workers_and_mixes_the_same() {
    let pool = crate::services::workers::WorkerPool::start(2).unwrap();
    let (commands, rx) = input_queue(256);
    let (tx, events) = tokio::sync::mpsc::unbounded_channel();
    let stats = Arc::new(MixStats::default());
    let job = MixJob::new(
        RATE,
        VadConfig::default(),
        false,
        false,
        rx,
        tx,
        stats.clone(),
        Some(pool.helpers()),
    );
    let mut room = Room {
        job,
        commands,
        events,
        stats,
        now: Duration::ZERO,
        origin: std::time::Instant::now(),
    };
    let n = SHARE_FROM as u64 + 8;
    let mut peers: Vec<Peer> = (1..=n)
        .map(|id| room.join(id, 300.0 + 150.0 * id as f32, false))
        .collect();
    run(&mut room, &mut peers, &[1, 2, 3], 60, 0);
    for p in &peers {
        let tail = &p.heard[p.heard.len() - 24_000..];
        assert_eq!(p.seqs.len(), 60, "one packet per tick for {}", p.id);
        for speaker in &peers[..3] {
            let share = share_at(tail, speaker.freq, 48_000);
            if speaker.id == p.id {
                assert!(share < 0.01, "{} hears itself: {share}", p.id);
            } else {
                assert!(share > 0.1, "{} misses {}: {share}", p.id, speaker.id);
            }
        }
    }
    let s = &room.stats;
    assert!(s.pull_nanos.load(Relaxed) > 0 && s.encode_nanos.load(Relaxed) > 0);
    assert!(s.private_encodes.load(Relaxed) >= 3 * 50);
    assert_eq!(s.shared_encodes.load(Relaxed), 60);
}

#[test]
fn talking_follows_the_packets_audio_levels_when_they_carry_them() {
    let mut room = room(true);
    let mut peers = vec![room.join(1, 440.0, false), room.join(2, 1000.0, false)];
    // A loud tone, but the sender says its microphone is silent (127 −dBov): not talking.
    peers[0].level = Some(127);
    run(&mut room, &mut peers, &[1], 30, 0);
    assert!(room.events.try_recv().is_err(), "levels, not the audio");
    assert!(room.stats.level_ticks.load(Relaxed) >= 29);
    // The sender's level says voice (−20 dBov): talking.
    peers[0].level = Some(20);
    run(&mut room, &mut peers, &[1], 10, 30);
    let ev = room.events.try_recv().unwrap();
    assert!(
        matches!(ev, MixEvent::Talking { id: 1, talking: true, level_dbov } if level_dbov == -20.0),
        "{ev:?}"
    );
    // Nothing arrives any more: stopped talking after the quiet ticks.
    run(&mut room, &mut peers, &[], 40, 40);
    let ev = room.events.try_recv().unwrap();
    assert!(
        matches!(
            ev,
            MixEvent::Talking {
                id: 1,
                talking: false,
                ..
            }
        ),
        "{ev:?}"
    );
    // The audio itself still reaches the other participant.
    let tail = &peers[1].heard[peers[1].heard.len() - 48_000..peers[1].heard.len() - 40 * 960];
    assert!(share_at(tail, 440.0, 48_000) > 0.3);
}

#[test]
fn levels_arriving_in_bursts_still_make_a_talker() {
    let mut room = room(true);
    let mut peers = [room.join(1, 440.0, false), room.join(2, 1000.0, false)];
    peers[0].level = Some(20);
    // A busy network: two packets in one tick, none in the next.
    for t in (0..40).step_by(2) {
        peers[0].send_tone(t);
        peers[0].send_tone(t + 1);
        room.tick();
        room.tick();
        for p in peers.iter_mut() {
            p.collect();
        }
    }
    let ev = room.events.try_recv().unwrap();
    assert!(
        matches!(
            ev,
            MixEvent::Talking {
                id: 1,
                talking: true,
                ..
            }
        ),
        "{ev:?}"
    );
}
