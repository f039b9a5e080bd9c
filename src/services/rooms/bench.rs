//! `bifrons bench-audiobridge`: the cost of mixing, without the network. `rooms` rooms of
//! `participants` each run on the real worker pool; a load thread sends every participant one
//! real Opus packet (20 ms of a tone, pre-encoded) every 20 ms, `speakers` of them loud and
//! the others silent (or open microphones at 1/20 of the level), and drains what the rooms send back. Reported: worker time per tick and
//! per participant, the p50/p99 tick duration, the share of a core, resident memory per
//! participant, and packets late (skipped periods), dropped (full queues) or missing.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bifrons_transcoding::mixer::VadConfig;
use bifrons_transcoding::opus_codec::{OpusEncoder, OpusEncoderConfig};
use bifrons_transcoding::AudioFrame;
use bytes::Bytes;

use super::{
    AudioPacket, MixCodec, MixSettings, NewParticipant, OutSink, ParticipantInput, RoomMix,
};
use crate::media::{DetachedReceiver, MediaSender};
use crate::services::workers::WorkerPool;

/// What to run.
#[derive(Debug, Clone, Copy)]
pub struct BenchConfig {
    /// Rooms.
    pub rooms: usize,
    /// Participants per room.
    pub participants: usize,
    /// Participants per room sending a loud tone (the others send silence).
    pub speakers: usize,
    /// Seconds of load.
    pub seconds: u64,
    /// Mixing rate, Hz.
    pub sampling_rate: u32,
    /// Worker threads (0: cores − 1).
    pub threads: usize,
    /// The participants who are not speakers send the tone at 1/20 of the level (open
    /// microphones, as `bifrons-loadgen audiobridge` sends) rather than silence: everybody is
    /// then in the mix and needs a mix-minus encoding of its own.
    pub open_mics: bool,
}

/// Figures of one run.
#[derive(Debug, Clone)]
pub struct BenchReport {
    /// Ticks run over all rooms.
    pub ticks: u64,
    /// Mean worker time per room tick, µs.
    pub mean_tick_micros: f64,
    /// Median tick, µs (bucket upper edge, 100 µs buckets).
    pub p50_tick_micros: u64,
    /// 99th percentile tick, µs.
    pub p99_tick_micros: u64,
    /// Worker time per participant per tick, µs.
    pub micros_per_participant_tick: f64,
    /// Share of one core the mixing took (all rooms).
    pub cores: f64,
    /// Resident memory added per participant, KiB (from `/proc/self/status`; 0 elsewhere).
    pub rss_kib_per_participant: f64,
    /// Periods the workers skipped (late ticks).
    pub skipped: u64,
    /// Packets dropped at the rooms' input queues.
    pub input_drops: u64,
    /// Packets sent back per participant per second (50 expected).
    pub out_per_participant_second: f64,
    /// Private (speaker) and shared encodings.
    pub encodes: (u64, u64),
    /// Thread time per tick pulling participants (jitter buffers, decoding), µs, all workers.
    pub pull_micros_per_tick: f64,
    /// Time per tick mixing on the room's worker (mix, talking, shared encodings), µs.
    pub mix_micros_per_tick: f64,
    /// Thread time per tick encoding and sending the participants' mixes, µs, all workers.
    pub encode_micros_per_tick: f64,
    /// Ticks mixed but not sent because they started more than 40 ms late.
    pub late_ticks: u64,
    /// Shards (groups of participants) pulled or encoded by a worker other than the room's.
    pub helped_shards: u64,
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_owned))
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// One second of a tone at `amplitude` (0: silence) as 50 Opus packets.
fn packets(freq: f32, amplitude: f32) -> Vec<Bytes> {
    let mut enc = match OpusEncoder::new(OpusEncoderConfig::default()) {
        Ok(e) => e,
        Err(_) => return Vec::new(),
    };
    (0..50)
        .filter_map(|k| {
            let samples = (0..960)
                .map(|i| {
                    let t = (k * 960 + i) as f32 / 48_000.0;
                    (amplitude * (2.0 * std::f32::consts::PI * freq * t).sin()) as i16
                })
                .collect();
            let frame = AudioFrame::new(samples, 48_000, 1, 0).ok()?;
            enc.encode(&frame).ok().map(Bytes::copy_from_slice)
        })
        .collect()
}

struct Load {
    input: ParticipantInput,
    packets: Arc<Vec<Bytes>>,
    seq: u16,
    rx: DetachedReceiver,
    received: u64,
}

/// Runs the benchmark; blocks for `seconds` plus set-up (call it off the async runtime).
pub fn run(config: BenchConfig) -> anyhow::Result<BenchReport> {
    let threads = crate::services::workers::thread_count(
        config.threads,
        std::thread::available_parallelism().map_or(1, |n| n.get()),
    );
    let pool = WorkerPool::start(threads)?;
    let loud = packets(440.0, 6000.0);
    let quiet = Arc::new(if config.open_mics {
        packets(440.0, 300.0)
    } else {
        packets(0.0, 0.0)
    });
    let rss_before = rss_kib();
    let mut rooms = Vec::new();
    let mut loads = Vec::new();
    for _ in 0..config.rooms {
        let (mix, _events) = RoomMix::start(
            &pool,
            MixSettings {
                sampling_rate: config.sampling_rate,
                vad: VadConfig::default(),
                talk_events: false,
                spatial: false,
            },
        )?;
        for p in 0..config.participants {
            let (mut entry, input) = NewParticipant::new(p as u64 + 1, MixCodec::Opus);
            let (sender, rx) = MediaSender::detached(256);
            entry.sink = Some(OutSink::random(Arc::new(sender), 111));
            mix.add(entry)?;
            let packets = if p < config.speakers {
                Arc::new(loud.clone())
            } else {
                quiet.clone()
            };
            loads.push(Load {
                input,
                packets,
                seq: 0,
                rx,
                received: 0,
            });
        }
        rooms.push(mix);
    }
    // Let the jobs take their participants in, then measure from a clean state.
    std::thread::sleep(Duration::from_millis(200));
    let rss_after = rss_kib();
    let start = Instant::now();
    let mut next = start;
    let end = start + Duration::from_secs(config.seconds.max(1));
    let base: Vec<(u64, u64)> = rooms
        .iter()
        .map(|r| {
            (
                r.stats().tick_nanos.load(Ordering::Relaxed),
                r.stats().ticks.load(Ordering::Relaxed),
            )
        })
        .collect();
    for r in &rooms {
        for b in &r.stats().tick_histogram {
            b.store(0, Ordering::Relaxed);
        }
    }
    while Instant::now() < end {
        for l in loads.iter_mut() {
            let payload = l.packets[usize::from(l.seq) % l.packets.len().max(1)].clone();
            l.input.push(AudioPacket {
                level: None,
                seq: l.seq,
                timestamp: u32::from(l.seq).wrapping_mul(960),
                payload,
            });
            l.seq = l.seq.wrapping_add(1);
            l.received += l.rx.discard() as u64;
        }
        next += Duration::from_millis(20);
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let (mut nanos, mut ticks, mut skipped, mut drops) = (0u64, 0u64, 0u64, 0u64);
    let (mut private, mut shared) = (0u64, 0u64);
    let (mut pull, mut mixing, mut encode, mut late, mut helped) = (0u64, 0u64, 0u64, 0u64, 0u64);
    for (r, (n0, t0)) in rooms.iter().zip(&base) {
        nanos += r.stats().tick_nanos.load(Ordering::Relaxed) - n0;
        ticks += r.stats().ticks.load(Ordering::Relaxed) - t0;
        let c = r.job_counters();
        skipped += c.skipped;
        private += r.stats().private_encodes.load(Ordering::Relaxed);
        shared += r.stats().shared_encodes.load(Ordering::Relaxed);
        pull += r.stats().pull_nanos.load(Ordering::Relaxed);
        mixing += r.stats().mix_nanos.load(Ordering::Relaxed);
        encode += r.stats().encode_nanos.load(Ordering::Relaxed);
        late += r.stats().late_ticks.load(Ordering::Relaxed);
        helped += r.stats().helped_shards.load(Ordering::Relaxed);
        drops += c.input_drops;
    }
    drops += loads.iter().map(|l| l.input.dropped()).sum::<u64>();
    let participants = (config.rooms * config.participants).max(1) as f64;
    let all_ticks: u64 = rooms
        .iter()
        .map(|r| r.stats().ticks.load(Ordering::Relaxed))
        .sum();
    let per_tick = |nanos: u64| nanos as f64 / all_ticks.max(1) as f64 / 1000.0;
    let received: u64 = loads.iter().map(|l| l.received).sum();
    // Quantiles over every room's ticks: merge the histograms.
    let merged = super::MixStats::default();
    for r in &rooms {
        for (m, b) in merged.tick_histogram.iter().zip(&r.stats().tick_histogram) {
            m.fetch_add(b.load(Ordering::Relaxed), Ordering::Relaxed);
        }
    }
    let report = BenchReport {
        ticks,
        mean_tick_micros: nanos as f64 / ticks.max(1) as f64 / 1000.0,
        p50_tick_micros: merged.tick_quantile_micros(0.5),
        p99_tick_micros: merged.tick_quantile_micros(0.99),
        micros_per_participant_tick: nanos as f64
            / ticks.max(1) as f64
            / config.participants.max(1) as f64
            / 1000.0,
        cores: nanos as f64 / 1e9 / elapsed,
        rss_kib_per_participant: rss_after.saturating_sub(rss_before) as f64 / participants,
        skipped,
        input_drops: drops,
        out_per_participant_second: received as f64 / participants / elapsed,
        encodes: (private, shared),
        pull_micros_per_tick: per_tick(pull),
        mix_micros_per_tick: per_tick(mixing),
        encode_micros_per_tick: per_tick(encode),
        late_ticks: late,
        helped_shards: helped,
    };
    drop(rooms);
    pool.shutdown();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_run_mixes_and_reports_every_participant_served() {
        let r = run(BenchConfig {
            rooms: 1,
            participants: 4,
            speakers: 1,
            seconds: 1,
            sampling_rate: 16_000,
            threads: 1,
            open_mics: false,
        })
        .unwrap();
        assert!(r.ticks >= 40, "{r:?}");
        assert!(r.out_per_participant_second > 35.0, "{r:?}");
        assert!(r.p99_tick_micros >= r.p50_tick_micros);
        assert!(r.encodes.0 > 0 && r.encodes.1 > 0, "{r:?}");
    }
}
