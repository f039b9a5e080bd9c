//! Relay figures on loopback: ingest CPU for a 3 Mbit/s stream, fan-out cost per RTMP player,
//! publish-to-play latency (send time embedded in each frame), and RTP packetization cost.
//!
//! Run with `cargo bench -p bifrons-rtmp`. CPU figures come from /proc/self/stat and include the
//! in-process publisher client (and players), so they are upper bounds for the server alone.

use std::time::{Duration, Instant};

use bifrons_rtmp::client::{PublisherConfig, PublisherState, RtmpPlayer, RtmpPublisher};
use bifrons_rtmp::media::{AvcConfig, VideoFrame};
use bifrons_rtmp::rtp::H264Packetizer;
use bifrons_rtmp::server::{PublishRequest, RtmpServer, ServerConfig, StreamEvent};
use bifrons_rtmp::tag::Tag;
use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion};

const FPS: u32 = 25;
/// 3 Mbit/s of video at 25 fps.
const FRAME_BYTES: usize = 3_000_000 / 8 / FPS as usize;

fn config() -> AvcConfig {
    AvcConfig {
        profile: 100,
        compatibility: 0,
        level: 31,
        nal_length_size: 4,
        sps: vec![Bytes::from_static(&[0x67, 0x64, 0x00, 0x1f, 0xac, 0xd9])],
        pps: vec![Bytes::from_static(&[0x68, 0xeb, 0xe3, 0xcb])],
    }
}

/// Frame `i`, carrying nanoseconds since `epoch` in its first payload bytes.
fn frame(i: u32, epoch: Instant) -> VideoFrame {
    let keyframe = i % 50 == 0;
    let mut nal = vec![if keyframe { 0x65 } else { 0x41 }; FRAME_BYTES];
    nal[1..9].copy_from_slice(&(epoch.elapsed().as_nanos() as u64).to_be_bytes());
    VideoFrame {
        dts_ms: i * 1000 / FPS,
        cts_ms: 0,
        keyframe,
        nalus: vec![Bytes::from(nal)],
    }
}

fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, r)| r.split_whitespace().collect())
        .unwrap_or_default();
    let ticks: f64 = fields.get(11..13).map_or(0.0, |f| {
        f.iter().filter_map(|v| v.parse::<f64>().ok()).sum()
    });
    ticks / 100.0
}

struct Rig {
    server: RtmpServer,
    publisher: RtmpPublisher,
    url: String,
}

async fn rig() -> Rig {
    let server_config = ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..ServerConfig::default()
    };
    let server = RtmpServer::bind(server_config, |_: PublishRequest| async { true })
        .await
        .unwrap();
    let url = format!("rtmp://{}/live/bench", server.local_addr());
    let publisher = RtmpPublisher::start(PublisherConfig::new(url.clone())).unwrap();
    publisher
        .wait_for(|s| *s == PublisherState::Publishing)
        .await;
    publisher.send_video_config(&config(), 0).unwrap();
    Rig {
        server,
        publisher,
        url,
    }
}

/// Publishes `seconds` of media unpaced and returns process CPU seconds used until every player
/// and the subscriber saw the last frame.
async fn ingest(rig: &Rig, start_frame: u32, seconds: u32, players: usize) -> f64 {
    let epoch = Instant::now();
    let mut sub = rig.server.subscribe("live", "bench").unwrap();
    let last_ts = (start_frame + seconds * FPS - 1) * 1000 / FPS;
    debug_assert!(seconds > 0);
    let mut tasks = Vec::new();
    for _ in 0..players {
        let mut player = RtmpPlayer::connect(&rig.url).await.unwrap();
        tasks.push(tokio::spawn(async move {
            while let Some(tag) = player.next().await {
                if matches!(tag, Tag::Video { timestamp, .. } if timestamp == last_ts) {
                    return;
                }
            }
        }));
    }
    let cpu = cpu_seconds();
    // Second by second, so players (which a subscriber does not wait for) never fall a whole
    // broadcast queue behind.
    for second in 0..seconds {
        let first = start_frame + second * FPS;
        for i in first..first + FPS {
            rig.publisher.send_video(&frame(i, epoch)).unwrap();
        }
        let second_last = (first + FPS - 1) * 1000 / FPS;
        loop {
            match sub.next().await {
                Some(StreamEvent::Video(f)) if f.dts_ms == second_last => break,
                Some(_) => {}
                None => panic!("stream ended"),
            }
        }
    }
    for t in tasks {
        t.await.unwrap();
    }
    cpu_seconds() - cpu
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let rig = rt.block_on(rig());
    // Frame 0 is a keyframe: the publisher client holds media back until one.
    let mut next_frame = 0u32;

    // One second of a 3 Mbit/s stream through the server to a subscriber, as fast as it goes.
    c.bench_function("ingest_1s_of_3mbps", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                rt.block_on(ingest(&rig, next_frame, 1, 0));
                next_frame += FPS;
            }
            start.elapsed()
        })
    });

    // CPU figures over 600 s of media each (CPU time is read in 10 ms ticks).
    let seconds = 600;
    let mut figures = Vec::new();
    for players in [0usize, 1, 4] {
        let cpu = rt.block_on(ingest(&rig, next_frame, seconds, players));
        next_frame += seconds * FPS;
        figures.push((players, cpu / f64::from(seconds) * 100.0));
    }
    for (players, percent) in &figures {
        println!("cpu: 3 Mbit/s stream with {players} RTMP player(s): {percent:.2} % of one core");
    }
    println!(
        "cpu: fan-out cost per RTMP player: {:.2} % of one core",
        (figures[2].1 - figures[0].1) / 4.0
    );

    // Publish-to-play latency at the real 25 fps pace, with one player.
    let samples = rt.block_on(async {
        let mut player = RtmpPlayer::connect(&rig.url).await.unwrap();
        let epoch = Instant::now();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let first_ts = next_frame * 1000 / FPS;
        let reader = tokio::spawn(async move {
            let mut latencies = Vec::new();
            while latencies.len() < 100 {
                match player.next().await {
                    // The GOP backlog predates this measurement: only paced frames count.
                    Some(Tag::Video { data, timestamp })
                        if timestamp >= first_ts && data.len() > 20 && data[1] == 1 =>
                    {
                        // 5-byte tag header, 4-byte NAL length, NAL header, then the send time.
                        let sent = u64::from_be_bytes(data[10..18].try_into().unwrap());
                        let now = epoch.elapsed().as_nanos() as u64;
                        if sent > 0 && now >= sent {
                            latencies.push(Duration::from_nanos(now - sent));
                        }
                    }
                    Some(_) => {}
                    None => break,
                }
            }
            let _ = tx.send(latencies);
        });
        let mut ticker = tokio::time::interval(Duration::from_millis(40));
        // Skip the GOP backlog: only frames sent from now on carry a timestamp of this epoch.
        for i in 0..150 {
            ticker.tick().await;
            rig.publisher
                .send_video(&frame(next_frame + i, epoch))
                .unwrap();
            if reader.is_finished() {
                break;
            }
        }
        let mut latencies = rx.recv().await.unwrap_or_default();
        latencies.sort();
        latencies
    });
    if !samples.is_empty() {
        let pct = |p: usize| samples[(samples.len() - 1) * p / 100];
        println!(
            "latency: publish-to-play over loopback, {} frames of {} bytes: median {:?}, p99 {:?}, max {:?}",
            samples.len(),
            FRAME_BYTES,
            pct(50),
            pct(99),
            samples[samples.len() - 1]
        );
    }

    // RTP packetization of one second of 3 Mbit/s video.
    let frames: Vec<VideoFrame> = (0..FPS).map(|i| frame(i, Instant::now())).collect();
    let mut packetizer = H264Packetizer::new(1200, 0);
    packetizer.set_config(&config());
    let mut out = Vec::with_capacity(4096);
    c.bench_function("packetize_1s_of_3mbps", |b| {
        b.iter(|| {
            out.clear();
            for f in &frames {
                packetizer.packetize(f, &mut out);
            }
            out.len()
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).measurement_time(Duration::from_secs(5)).warm_up_time(Duration::from_secs(1));
    targets = bench
}
criterion_main!(benches);
