//! Speed of every codec and DSP step, as real-time factors (seconds of media per second of
//! CPU on one core) and criterion timings.
//!
//! `cargo bench -p bifrons-transcoding` prints a real-time report first, then criterion's
//! per-operation timings.

use std::hint::black_box;
use std::time::{Duration, Instant};

use bifrons_transcoding::aac::{AacDecoder, AacEncoder, AacEncoderConfig};
use bifrons_transcoding::g711::{self, G711Law};
use bifrons_transcoding::mixer::{Mixer, MixerConfig, ParticipantId};
use bifrons_transcoding::opus_codec::{OpusDecoder, OpusEncoder, OpusEncoderConfig};
use bifrons_transcoding::pipeline::{G711ToOpus, OpusToG711};
use bifrons_transcoding::video::vp8::{Vp8Encoder, Vp8EncoderConfig};
use bifrons_transcoding::video::VideoFrame;
use bifrons_transcoding::AudioFrame;
use criterion::{criterion_group, Criterion};

fn tone(rate: u32, n: usize, start: usize) -> Vec<i16> {
    (start..start + n)
        .map(|i| {
            ((i as f32 * 2.0 * std::f32::consts::PI * 440.0 / rate as f32).sin() * 12000.0) as i16
        })
        .collect()
}

fn opus_packets(n: usize) -> Vec<Vec<u8>> {
    let mut enc = OpusEncoder::new(OpusEncoderConfig::default()).unwrap();
    (0..n)
        .map(|i| {
            enc.encode(&AudioFrame::new(tone(48_000, 960, i * 960), 48_000, 1, 0).unwrap())
                .unwrap()
                .to_vec()
        })
        .collect()
}

/// CPU time this thread has run, from the kernel's scheduler statistics: the machine is shared,
/// so wall-clock time would count other processes' work against ours.
fn thread_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = stat.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

/// Runs `step` (which processes `media` of audio or video) repeatedly for about a second of
/// CPU and returns media seconds per CPU second. The clock is read between growing batches so
/// that reading it does not weigh on sub-microsecond steps.
fn realtime_factor(media: Duration, mut step: impl FnMut(usize)) -> f64 {
    let mut i = 0;
    let wall = Instant::now();
    let cpu_start = thread_cpu();
    let spent = || match (cpu_start, thread_cpu()) {
        (Some(a), Some(b)) => b.saturating_sub(a),
        _ => wall.elapsed(),
    };
    let mut batch = 1;
    loop {
        for _ in 0..batch {
            step(i);
            i += 1;
        }
        let t = spent();
        if t >= Duration::from_secs(1) && i >= 10 {
            return media.as_secs_f64() * i as f64 / t.as_secs_f64();
        }
        if t < Duration::from_millis(100) {
            batch *= 2;
        }
    }
}

fn report() {
    let ms20 = Duration::from_millis(20);
    let packets = opus_packets(50);
    println!("== real-time factors on one core (media time / CPU time) ==");

    let mut enc = OpusEncoder::new(OpusEncoderConfig::default()).unwrap();
    let frames: Vec<AudioFrame> = (0..50)
        .map(|i| AudioFrame::new(tone(48_000, 960, i * 960), 48_000, 1, 0).unwrap())
        .collect();
    let opus_enc = realtime_factor(ms20, |i| {
        black_box(enc.encode(&frames[i % 50]).unwrap());
    });
    println!("opus encode 20 ms mono 32 kbps: {opus_enc:>10.0}x");

    let mut dec = OpusDecoder::new(1).unwrap();
    let opus_dec = realtime_factor(ms20, |i| {
        black_box(dec.decode(&packets[i % 50], 0).unwrap());
    });
    println!("opus decode 20 ms mono:         {opus_dec:>10.0}x");

    let pcm8 = tone(8_000, 160, 0);
    let mut buf = Vec::new();
    let mut out = Vec::new();
    let g = realtime_factor(ms20, |_| {
        g711::encode_into(G711Law::Mu, black_box(&pcm8), &mut buf);
        g711::decode_into(G711Law::Mu, black_box(&buf), &mut out);
    });
    println!("G.711 encode+decode 20 ms:      {g:>10.0}x");

    let mut to_pcmu = OpusToG711::new(G711Law::Mu).unwrap();
    let mut to_opus = G711ToOpus::new(G711Law::Mu, OpusEncoderConfig::default()).unwrap();
    let pcmu: Vec<Vec<u8>> = (0..50)
        .map(|i| {
            let mut b = Vec::new();
            g711::encode_into(G711Law::Mu, &tone(8_000, 160, i * 160), &mut b);
            b
        })
        .collect();
    let leg = realtime_factor(ms20, |i| {
        black_box(to_pcmu.push(&packets[i % 50], (i * 960) as u32).unwrap());
        black_box(to_opus.push(&pcmu[i % 50], (i * 160) as u32).unwrap());
    });
    println!("Opus<->PCMU call leg (both directions, 20 ms): {leg:>6.0}x  => ~{:.0} concurrent legs per core", leg);

    let aac_cfg = AacEncoderConfig {
        sample_rate: 48_000,
        channels: 2,
        bitrate: 128_000,
    };
    let mut aenc = AacEncoder::new(aac_cfg).unwrap();
    let stereo: Vec<i16> = tone(48_000, 1024, 0)
        .into_iter()
        .flat_map(|s| [s, s])
        .collect();
    let stereo_frame = AudioFrame::new(stereo, 48_000, 2, 0).unwrap();
    let frame_dur = Duration::from_micros(1024 * 1_000_000 / 48_000);
    let aac_enc = realtime_factor(frame_dur, |_| {
        black_box(aenc.encode(&stereo_frame).unwrap());
    });
    println!("AAC-LC encode 1024 stereo 128k: {aac_enc:>10.0}x");
    let mut aenc2 = AacEncoder::new(aac_cfg).unwrap();
    let units: Vec<Vec<u8>> = (0..40)
        .flat_map(|_| aenc2.encode(&stereo_frame).unwrap())
        .map(|p| p.data)
        .collect();
    let mut adec = AacDecoder::new(aenc2.audio_specific_config()).unwrap();
    let aac_dec = realtime_factor(frame_dur, |i| {
        black_box(adec.decode(&units[i % units.len()], 0).unwrap());
    });
    println!("AAC-LC decode 1024 stereo:      {aac_dec:>10.0}x");

    let mut venc = Vp8Encoder::new(Vp8EncoderConfig::default()).unwrap();
    let pictures: Vec<VideoFrame> = (0..30)
        .map(|i| VideoFrame::new(640, 480, pattern(640, 480, i), 0).unwrap())
        .collect();
    let vp8 = realtime_factor(Duration::from_micros(33_333), |i| {
        black_box(venc.encode(&pictures[i % 30]).unwrap());
    });
    println!(
        "VP8 encode 640x480 @30 fps realtime: {vp8:>6.1}x  => {:.0} fps on one core",
        vp8 * 30.0
    );

    for n in [10usize, 100] {
        let mut mixer = Mixer::new(MixerConfig::default());
        let inputs: Vec<Vec<i16>> = (0..n).map(|i| tone(48_000, 960, i * 37)).collect();
        for i in 0..n {
            mixer.add(ParticipantId(i as u64));
        }
        let refs: Vec<(ParticipantId, &[i16])> = inputs
            .iter()
            .enumerate()
            .map(|(i, p)| (ParticipantId(i as u64), p.as_slice()))
            .collect();
        let mix = realtime_factor(ms20, |_| {
            black_box(mixer.mix(&refs));
        });
        println!("mixer {n:>3} participants per 20 ms tick: {mix:>8.0}x");
        // A participant also costs one Opus decode and one encode per tick.
        let per_participant_codec = 1.0 / opus_enc + 1.0 / opus_dec;
        let per_tick = 1.0 / mix + n as f64 * per_participant_codec;
        println!(
            "  with Opus decode+encode per participant: {:.1}x => ~{:.0} mixed participants per core",
            1.0 / per_tick,
            n as f64 / per_tick
        );
    }
}

/// The same moving gradient + square pattern as the tests.
fn pattern(width: usize, height: usize, index: usize) -> Vec<u8> {
    let mut data = vec![128u8; width * height * 3 / 2];
    let (bx, by) = ((index * 4) % (width - 64), (index * 2) % (height - 64));
    for y in 0..height {
        for x in 0..width {
            let base = ((x + y + index * 2) * 255 / (width + height)) as u8 / 2 + 40;
            let inside = x >= bx && x < bx + 64 && y >= by && y < by + 64;
            data[y * width + x] = if inside { 220 } else { base };
        }
    }
    data
}

fn criterion_benches(c: &mut Criterion) {
    let packets = opus_packets(50);
    let frame = AudioFrame::new(tone(48_000, 960, 0), 48_000, 1, 0).unwrap();
    let mut enc = OpusEncoder::new(OpusEncoderConfig::default()).unwrap();
    c.bench_function("opus_encode_20ms", |b| {
        b.iter(|| black_box(enc.encode(&frame).unwrap().len()))
    });
    let mut dec = OpusDecoder::new(1).unwrap();
    let mut i = 0;
    c.bench_function("opus_decode_20ms", |b| {
        b.iter(|| {
            i += 1;
            black_box(dec.decode(&packets[i % 50], 0).unwrap())
        })
    });
    let pcm8 = tone(8_000, 160, 0);
    let mut buf = Vec::new();
    c.bench_function("pcmu_encode_20ms", |b| {
        b.iter(|| g711::encode_into(G711Law::Mu, black_box(&pcm8), &mut buf))
    });
    let mut mixer = Mixer::new(MixerConfig::default());
    let inputs: Vec<Vec<i16>> = (0..10).map(|i| tone(48_000, 960, i * 37)).collect();
    for i in 0..10 {
        mixer.add(ParticipantId(i));
    }
    let refs: Vec<(ParticipantId, &[i16])> = inputs
        .iter()
        .enumerate()
        .map(|(i, p)| (ParticipantId(i as u64), p.as_slice()))
        .collect();
    c.bench_function("mixer_10_participants_tick", |b| {
        b.iter(|| black_box(mixer.mix(&refs).len()))
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(2)).warm_up_time(Duration::from_millis(500));
    targets = criterion_benches
}

fn main() {
    report();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
