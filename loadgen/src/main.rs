//! `bifrons-loadgen`: a load client for Bifrons. It drives many WebRTC peers (str0m) through
//! the Janus API, plays the far ends itself and measures, on one clock, what reached each
//! side: loss, lateness and one-way delay, with the gateway's CPU and memory from `/proc`.
//!
//! `bifrons-loadgen sip --janus ws://127.0.0.1:8188/ --gateway-pid PID --calls 100` runs the
//! SIP scenario ([`sip`]); `scripts/bench-sip` starts a gateway and runs it. See README.md.

mod audio;
mod audiobridge;
mod clock;
mod echo;
mod flv;
mod frames;
mod janus;
mod metrics;
mod peer;
mod procfs;
mod receiver;
mod report;
mod sip;
mod streaming;
mod viewer_peer;

use anyhow::{bail, Result};
use clap::{Parser, Subcommand};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(
    version,
    about = "Load client for Bifrons: WebRTC peers over the Janus API"
)]
struct Cli {
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand)]
enum Scenario {
    /// Browser⇄SIP calls through janus.plugin.sip, transcoded Opus⇄PCMU.
    Sip(SipArgs),
    /// WebRTC viewers of one mountpoint of janus.plugin.streaming.
    Streaming(StreamingArgs),
    /// HTTP-FLV pulls from another server (the relay comparison), with its CPU and memory.
    FlvPull(FlvPullArgs),
    /// Echo-test sessions (janus.plugin.echotest) with Opus and VP8, on Bifrons or Janus.
    Echo(EchoArgs),
    /// One Markdown table of echo runs side by side, from their `--json` files.
    EchoTable {
        /// JSON files written by `echo --json`, one column each.
        files: Vec<std::path::PathBuf>,
    },
    /// Rooms of janus.plugin.audiobridge full of Opus participants, on Bifrons or Janus.
    Audiobridge(AudiobridgeArgs),
    /// One Markdown table of audio bridge runs side by side, from their `--json` files.
    AudiobridgeTable {
        /// JSON files written by `audiobridge --json`, one column each.
        files: Vec<std::path::PathBuf>,
    },
}

#[derive(clap::Args)]
struct AudiobridgeArgs {
    /// Janus API WebSocket URL of the gateway.
    #[arg(long, default_value = "ws://127.0.0.1:8188/")]
    janus: String,
    /// Name of the gateway in the table.
    #[arg(long, default_value = "Bifrons")]
    name: String,
    /// Rooms, each created with `create` before the first join.
    #[arg(long, default_value_t = 1)]
    rooms: usize,
    /// Participants per room.
    #[arg(long, default_value_t = 100)]
    participants: usize,
    /// Participants per room sending the tone at full level (the first one the pulse); the
    /// others send it at 1/20 of the level (open microphones).
    #[arg(long, default_value_t = 3)]
    talkers: usize,
    /// Mixing rate of the rooms, Hz (`sampling_rate` of `create`).
    #[arg(long, default_value_t = 16_000)]
    sampling_rate: u32,
    /// Length of the measuring window, seconds.
    #[arg(long, default_value_t = 30.0)]
    seconds: f64,
    /// Participants joining at once while ramping up.
    #[arg(long, default_value_t = 10)]
    batch: usize,
    /// Gateway process whose CPU, memory and threads are read from /proc.
    #[arg(long)]
    gateway_pid: Option<u32>,
    /// Address of every socket the load client opens.
    #[arg(long, default_value = "127.0.0.1")]
    ip: IpAddr,
    /// Seconds to wait after the sessions end before reading the gateway's memory again.
    #[arg(long, default_value_t = 5.0)]
    settle: f64,
    /// Writes the figures as JSON to this file (for `audiobridge-table`).
    #[arg(long)]
    json: Option<std::path::PathBuf>,
    /// Exit with status 1 unless every participant came up and heard the mix.
    #[arg(long)]
    check: bool,
}

#[derive(clap::Args)]
struct EchoArgs {
    /// Janus API WebSocket URL of the gateway.
    #[arg(long, default_value = "ws://127.0.0.1:8188/")]
    janus: String,
    /// Name of the gateway in the table.
    #[arg(long, default_value = "Bifrons")]
    name: String,
    /// Concurrent sessions.
    #[arg(long, default_value_t = 100)]
    sessions: usize,
    /// Length of the measuring window, seconds.
    #[arg(long, default_value_t = 30.0)]
    seconds: f64,
    /// Sessions set up at once while ramping up.
    #[arg(long, default_value_t = 10)]
    batch: usize,
    /// Gateway process whose CPU, memory and threads are read from /proc.
    #[arg(long)]
    gateway_pid: Option<u32>,
    /// Address of every socket the load client opens.
    #[arg(long, default_value = "127.0.0.1")]
    ip: IpAddr,
    /// Seconds to wait after the sessions end before reading the gateway's memory again.
    #[arg(long, default_value_t = 5.0)]
    settle: f64,
    /// Writes the figures as JSON to this file (for `echo-table`).
    #[arg(long)]
    json: Option<std::path::PathBuf>,
    /// Exit with status 1 unless every session came up and echoed both kinds.
    #[arg(long)]
    check: bool,
}

#[derive(clap::Args)]
struct StreamingArgs {
    /// Janus API WebSocket URL of the gateway.
    #[arg(long, default_value = "ws://127.0.0.1:8188/")]
    janus: String,
    /// Mountpoint to watch.
    #[arg(long)]
    mountpoint: u64,
    /// Concurrent viewers.
    #[arg(long, default_value_t = 100)]
    viewers: usize,
    /// Length of the measuring window, seconds.
    #[arg(long, default_value_t = 30.0)]
    seconds: f64,
    /// Viewers set up at once while ramping up.
    #[arg(long, default_value_t = 10)]
    batch: usize,
    /// Gateway process whose CPU and memory are read from /proc.
    #[arg(long)]
    gateway_pid: Option<u32>,
    /// FLV stream of a direct RTMP pull of the same publisher (a file or FIFO written as it
    /// arrives): the reference of the added delay.
    #[arg(long)]
    reference_flv: Option<std::path::PathBuf>,
    /// Address of every socket the load client opens.
    #[arg(long, default_value = "127.0.0.1")]
    ip: IpAddr,
    /// Exit with status 1 unless every viewer came up and played video and audio.
    #[arg(long)]
    check: bool,
}

#[derive(clap::Args)]
struct FlvPullArgs {
    /// Server address (host:port) of the HTTP-FLV endpoint.
    #[arg(long, default_value = "127.0.0.1:8000")]
    addr: std::net::SocketAddr,
    /// Request path, e.g. /live/bench.flv.
    #[arg(long)]
    path: String,
    /// Concurrent pulls.
    #[arg(long, default_value_t = 50)]
    pulls: usize,
    /// Length of the measuring window, seconds.
    #[arg(long, default_value_t = 30.0)]
    seconds: f64,
    /// Server process whose CPU and memory are read from /proc.
    #[arg(long)]
    server_pid: u32,
}

#[derive(clap::Args)]
struct SipArgs {
    /// Janus API WebSocket URL of the gateway.
    #[arg(long, default_value = "ws://127.0.0.1:8188/")]
    janus: String,
    /// Concurrent calls.
    #[arg(long, default_value_t = 100)]
    calls: usize,
    /// Length of the measuring window, seconds.
    #[arg(long, default_value_t = 30.0)]
    seconds: f64,
    /// Calls set up at once while ramping up.
    #[arg(long, default_value_t = 10)]
    batch: usize,
    /// Gateway process whose CPU and memory are read from /proc.
    #[arg(long)]
    gateway_pid: Option<u32>,
    /// Address of every socket the load client opens.
    #[arg(long, default_value = "127.0.0.1")]
    ip: IpAddr,
    /// Exit with status 1 unless every call was set up and both legs of every call carried
    /// packets in the window (for smoke tests).
    #[arg(long)]
    check: bool,
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.scenario {
        Scenario::Sip(args) => rt.block_on(run_sip(args)),
        Scenario::Streaming(args) => rt.block_on(run_streaming(args)),
        Scenario::FlvPull(args) => rt.block_on(run_flv_pull(args)),
        Scenario::Echo(args) => rt.block_on(run_echo(args)),
        Scenario::EchoTable { files } => {
            print!("{}", echo::table(&read_runs(&files)?));
            Ok(())
        }
        Scenario::Audiobridge(args) => rt.block_on(run_audiobridge(args)),
        Scenario::AudiobridgeTable { files } => {
            print!("{}", audiobridge::table(&read_runs(&files)?));
            Ok(())
        }
    }
}

/// The JSON figures of runs, one file each.
fn read_runs(files: &[std::path::PathBuf]) -> Result<Vec<serde_json::Value>> {
    files
        .iter()
        .map(|f| Ok(serde_json::from_str(&std::fs::read_to_string(f)?)?))
        .collect()
}

async fn run_sip(args: SipArgs) -> Result<()> {
    if args.calls == 0 || args.seconds <= 0.0 {
        bail!("--calls and --seconds must be positive");
    }
    // Start the one clock before anything is timed.
    clock::secs(Instant::now());
    let media = sip::Media::new()?;
    let window = Arc::new(clock::Window::default());
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let pid = args.gateway_pid;
    let idle_rss = pid
        .map(procfs::rss_kib)
        .transpose()
        .map_err(anyhow::Error::msg)?;

    let ramp_start = Instant::now();
    let mut live = Vec::with_capacity(args.calls);
    let mut failures: Vec<String> = Vec::new();
    for first in (0..args.calls).step_by(args.batch.max(1)) {
        let last = (first + args.batch.max(1)).min(args.calls);
        let setups = (first..last).map(|n| {
            let spec = sip::CallSpec {
                n,
                janus_url: args.janus.clone(),
                ip: args.ip,
                phase: Duration::from_micros(n as u64 * 20_000 / args.calls as u64),
            };
            let (media, window, stop) = (&media, window.clone(), stop.clone());
            async move { sip::start_call(&spec, media, window, stop).await }
        });
        for (n, r) in (first..).zip(futures::future::join_all(setups).await) {
            match r {
                Ok(c) => live.push(c),
                Err(e) => failures.push(format!("call {n}: {e:#}")),
            }
        }
        eprintln!("ramp: {} of {} calls up", live.len(), args.calls);
    }
    let ramp = ramp_start.elapsed();
    // Let the last calls' ICE/DTLS finish and the legs settle before measuring.
    tokio::time::sleep(Duration::from_secs(3)).await;

    let before = Snapshot::take(pid)?;
    let start = Instant::now();
    window.set(clock::secs(start), clock::secs(start) + args.seconds);
    tokio::time::sleep(Duration::from_secs_f64(args.seconds)).await;
    let elapsed = start.elapsed().as_secs_f64();
    let after = Snapshot::take(pid)?;
    let load_average = procfs::load_average();
    let loaded_rss = pid
        .map(procfs::rss_kib)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    // Packets of the window's last frames may still be in flight.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let _ = stop_tx.send(true);
    let mut results = Vec::with_capacity(live.len());
    let finished = futures::future::join_all(live.into_iter().map(|c| c.finish())).await;
    for (i, r) in finished.into_iter().enumerate() {
        match r {
            Ok(r) => results.push(r),
            Err(e) => failures.push(format!("call {i} at hang-up: {e:#}")),
        }
    }

    let hz = procfs::clock_ticks() as f64;
    let cpu = |a: Option<u64>, b: Option<u64>| match (a, b) {
        (Some(a), Some(b)) => Some((b - a) as f64 / hz / elapsed * 100.0),
        _ => None,
    };
    let threads = after
        .threads
        .iter()
        .map(|(name, t1)| {
            let t0 = before.threads.get(name).copied().unwrap_or(0);
            (
                name.clone(),
                t1.saturating_sub(t0) as f64 / hz / elapsed * 100.0,
            )
        })
        .collect();
    let summary = report::Summary {
        calls: args.calls,
        up: results.len(),
        window_s: elapsed,
        ramp_s: ramp.as_secs_f64(),
        gateway_cpu_pct: cpu(before.gateway, after.gateway),
        loadgen_cpu_pct: cpu(Some(before.own), Some(after.own)).unwrap_or(0.0),
        // Busy share of all cores, as % of one core (200 % = both cores of 2 busy).
        machine_cpu_pct: (after.machine.0 - before.machine.0) as f64
            / (after.machine.1 - before.machine.1).max(1) as f64
            * 100.0
            * std::thread::available_parallelism().map_or(1, |n| n.get()) as f64,
        load_average,
        idle_rss_kib: idle_rss,
        loaded_rss_kib: loaded_rss,
        threads,
        results,
        failures,
    };
    summary.print();
    if args.check && !summary.all_legs_carried() {
        bail!("check failed: not every call was up with packets on both legs");
    }
    Ok(())
}

/// The gateway's resident memory (KiB), when its PID is known.
fn gateway_rss(pid: Option<u32>) -> Result<Option<u64>> {
    pid.map(procfs::rss_kib)
        .transpose()
        .map_err(anyhow::Error::msg)
}

/// What a measure window read: snapshots at its two ends, its length (s), and the gateway's
/// resident memory (KiB) and thread count at its end.
struct Measured {
    before: Snapshot,
    after: Snapshot,
    elapsed: f64,
    rss_kib: Option<u64>,
    threads: Option<usize>,
}

impl Measured {
    /// Opens `window` for `seconds` s (the peers count what falls in it) and reads the gateway
    /// `pid` and this process around it.
    async fn window(window: &clock::Window, seconds: f64, pid: Option<u32>) -> Result<Self> {
        let before = Snapshot::take(pid)?;
        let start = Instant::now();
        window.set(clock::secs(start), clock::secs(start) + seconds);
        tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
        let elapsed = start.elapsed().as_secs_f64();
        let after = Snapshot::take(pid)?;
        let threads = pid.and_then(|p| {
            std::fs::read_dir(format!("/proc/{p}/task"))
                .ok()
                .map(|d| d.count())
        });
        Ok(Self {
            before,
            after,
            elapsed,
            rss_kib: gateway_rss(pid)?,
            threads,
        })
    }

    /// UDP datagrams the kernel dropped in the window: on the gateway's sockets, on the
    /// others (the load client's).
    fn udp_drops(&self) -> [u64; 2] {
        [
            self.after
                .udp_drops
                .0
                .saturating_sub(self.before.udp_drops.0),
            self.after
                .udp_drops
                .1
                .saturating_sub(self.before.udp_drops.1),
        ]
    }

    /// The gateway's CPU over the window, % of one core.
    fn gateway_cpu_pct(&self) -> Option<f64> {
        cpu_pct(&self.before, &self.after, self.elapsed)
    }

    /// This load client's own CPU over the window, % of one core.
    fn loadgen_cpu_pct(&self) -> f64 {
        (self.after.own - self.before.own) as f64 / procfs::clock_ticks() as f64 / self.elapsed
            * 100.0
    }
}

/// CPU of `pid` between two snapshots over `elapsed` s, % of one core.
fn cpu_pct(before: &Snapshot, after: &Snapshot, elapsed: f64) -> Option<f64> {
    let hz = procfs::clock_ticks() as f64;
    Some((after.gateway? - before.gateway?) as f64 / hz / elapsed * 100.0)
}

/// Busy share of all cores between two snapshots, % of one core (200 % = 2 cores busy).
fn machine_pct(before: &Snapshot, after: &Snapshot) -> f64 {
    (after.machine.0 - before.machine.0) as f64 / (after.machine.1 - before.machine.1).max(1) as f64
        * 100.0
        * std::thread::available_parallelism().map_or(1, |n| n.get()) as f64
}

async fn run_streaming(args: StreamingArgs) -> Result<()> {
    if args.viewers == 0 || args.seconds <= 0.0 {
        bail!("--viewers and --seconds must be positive");
    }
    clock::secs(Instant::now());
    let window = Arc::new(clock::Window::default());
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let pid = args.gateway_pid;
    let reference = match &args.reference_flv {
        Some(path) => {
            let file = tokio::fs::File::open(path).await?;
            Some(tokio::spawn(flv::read_reference(file, stop.clone())))
        }
        None => None,
    };
    // The publisher alone: what ingest costs, before any viewer.
    let before = Snapshot::take(pid)?;
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let ingest = Snapshot::take(pid)?;
    let ingest_cpu_pct = cpu_pct(&before, &ingest, t0.elapsed().as_secs_f64());
    let idle_rss = pid
        .map(procfs::rss_kib)
        .transpose()
        .map_err(anyhow::Error::msg)?;

    let mut live = Vec::with_capacity(args.viewers);
    let mut failures: Vec<String> = Vec::new();
    let batch = args.batch.max(1);
    for first in (0..args.viewers).step_by(batch) {
        let last = (first + batch).min(args.viewers);
        let setups = (first..last).map(|_| {
            let spec = streaming::ViewerSpec {
                janus_url: args.janus.clone(),
                mountpoint: args.mountpoint,
                ip: args.ip,
            };
            let (window, stop) = (window.clone(), stop.clone());
            async move { streaming::start_viewer(&spec, window, stop).await }
        });
        for (n, r) in (first..).zip(futures::future::join_all(setups).await) {
            match r {
                Ok(v) => live.push(v),
                Err(e) => failures.push(format!("viewer {n}: {e:#}")),
            }
        }
        eprintln!("ramp: {} of {} viewers up", live.len(), args.viewers);
    }
    tokio::time::sleep(Duration::from_secs(3)).await;

    let before = Snapshot::take(pid)?;
    let start = Instant::now();
    window.set(clock::secs(start), clock::secs(start) + args.seconds);
    tokio::time::sleep(Duration::from_secs_f64(args.seconds)).await;
    let elapsed = start.elapsed().as_secs_f64();
    let after = Snapshot::take(pid)?;
    let loaded_rss = pid
        .map(procfs::rss_kib)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _ = stop_tx.send(true);

    let mut results = Vec::with_capacity(live.len());
    let finished = futures::future::join_all(live.into_iter().map(|v| v.finish())).await;
    for (i, r) in finished.into_iter().enumerate() {
        match r {
            Ok(r) => results.push(r),
            Err(e) => failures.push(format!("viewer {i} at hang-up: {e:#}")),
        }
    }
    let reference = match reference {
        Some(task) => task
            .await
            .map_err(|e| anyhow::anyhow!("pull task: {e}"))??,
        None => Vec::new(),
    };
    let hz = procfs::clock_ticks() as f64;
    let threads = after
        .threads
        .iter()
        .map(|(name, t1)| {
            let t0 = before.threads.get(name).copied().unwrap_or(0);
            (
                name.clone(),
                t1.saturating_sub(t0) as f64 / hz / elapsed * 100.0,
            )
        })
        .collect();
    let summary = streaming::Summary {
        viewers: args.viewers,
        results,
        failures,
        window_s: elapsed,
        ingest_cpu_pct,
        gateway_cpu_pct: cpu_pct(&before, &after, elapsed),
        threads,
        rss_kib: idle_rss.zip(loaded_rss),
        loadgen_cpu_pct: (after.own - before.own) as f64 / hz / elapsed * 100.0,
        machine_cpu_pct: machine_pct(&before, &after),
        reference,
    };
    summary.print();
    if args.check && !summary.all_viewers_played() {
        bail!("check failed: not every viewer was up with video and audio");
    }
    Ok(())
}

async fn run_flv_pull(args: FlvPullArgs) -> Result<()> {
    clock::secs(Instant::now());
    let pid = Some(args.server_pid);
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let (count_tx, counting) = tokio::sync::watch::channel(false);
    let before = Snapshot::take(pid)?;
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let ingest = Snapshot::take(pid)?;
    let ingest_cpu_pct = cpu_pct(&before, &ingest, t0.elapsed().as_secs_f64());
    let idle_rss = procfs::rss_kib(args.server_pid).map_err(anyhow::Error::msg)?;
    let pulls: Vec<_> = (0..args.pulls)
        .map(|_| {
            tokio::spawn(flv::http_pull(
                args.addr,
                args.path.clone(),
                counting.clone(),
                stop.clone(),
            ))
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let before = Snapshot::take(pid)?;
    let start = Instant::now();
    let _ = count_tx.send(true);
    tokio::time::sleep(Duration::from_secs_f64(args.seconds)).await;
    let _ = count_tx.send(false);
    let elapsed = start.elapsed().as_secs_f64();
    let after = Snapshot::take(pid)?;
    let rss = procfs::rss_kib(args.server_pid).map_err(anyhow::Error::msg)?;
    let _ = stop_tx.send(true);
    let mut bytes = Vec::new();
    for p in pulls {
        bytes.push(
            p.await
                .map_err(|e| anyhow::anyhow!("pull: {e}"))?
                .unwrap_or(0),
        );
    }
    let served = bytes.iter().filter(|b| **b > 0).count();
    let total: u64 = bytes.iter().sum();
    let cpu = cpu_pct(&before, &after, elapsed).unwrap_or(0.0);
    let ingest = ingest_cpu_pct.unwrap_or(0.0);
    println!();
    println!("pulls served          {served} of {}", args.pulls);
    println!(
        "received              {:.2} Mbit/s per pull (mean)",
        total as f64 * 8.0 / 1e6 / elapsed / served.max(1) as f64
    );
    println!("server CPU, ingest    {ingest:.1} %");
    println!("server CPU            {cpu:.1} %");
    println!(
        "  per pull            {:.2} %",
        (cpu - ingest) / served.max(1) as f64
    );
    println!(
        "server RSS            {:.1} → {:.1} MiB, {:.0} KiB per pull",
        idle_rss as f64 / 1024.0,
        rss as f64 / 1024.0,
        rss.saturating_sub(idle_rss) as f64 / served.max(1) as f64
    );
    println!(
        "machine busy          {:.1} %",
        machine_pct(&before, &after)
    );
    Ok(())
}

async fn run_echo(args: EchoArgs) -> Result<()> {
    if args.sessions == 0 || args.seconds <= 0.0 {
        bail!("--sessions and --seconds must be positive");
    }
    clock::secs(Instant::now());
    let window = Arc::new(clock::Window::default());
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let pid = args.gateway_pid;
    let mut summary = echo::Summary {
        gateway: args.name.clone(),
        sessions: args.sessions,
        ..Default::default()
    };
    summary.rss_kib[0] = gateway_rss(pid)?;

    let mut live = Vec::with_capacity(args.sessions);
    let batch = args.batch.max(1);
    for first in (0..args.sessions).step_by(batch) {
        let last = (first + batch).min(args.sessions);
        let setups = (first..last).map(|n| {
            let spec = echo::SessionSpec {
                n: n as u32,
                janus_url: args.janus.clone(),
                ip: args.ip,
                phase: Duration::from_micros(n as u64 * 20_000 / args.sessions as u64),
            };
            let (window, stop) = (window.clone(), stop.clone());
            async move { echo::start_session(&spec, window, stop).await }
        });
        for (n, r) in (first..).zip(futures::future::join_all(setups).await) {
            match r {
                Ok(s) => live.push(s),
                Err(e) => summary.failures.push(format!("session {n}: {e:#}")),
            }
        }
        eprintln!("ramp: {} of {} sessions set up", live.len(), args.sessions);
        if pid.is_some() && echo::half_way(first, last, args.sessions) {
            // The first half's media flowing (their retransmission histories filled) before
            // the reading; the second half then shows what one more session costs.
            tokio::time::sleep(Duration::from_secs(2)).await;
            summary.rss_half = gateway_rss(pid)?.map(|kib| (kib, live.len()));
        }
    }
    summary.set_up = live.len();
    tokio::time::sleep(Duration::from_secs(3)).await;

    let measured = Measured::window(&window, args.seconds, pid).await?;
    summary.rss_kib[1] = measured.rss_kib;
    summary.threads = measured.threads;
    // Echoes of the window's last packets may still be on their way.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _ = stop_tx.send(true);
    for (i, r) in futures::future::join_all(live.into_iter().map(|s| s.finish()))
        .await
        .into_iter()
        .enumerate()
    {
        match r {
            Ok(r) => summary.add(r),
            Err(e) => summary
                .failures
                .push(format!("session {i} at the end: {e:#}")),
        }
    }
    tokio::time::sleep(Duration::from_secs_f64(args.settle)).await;
    summary.rss_kib[2] = gateway_rss(pid)?;
    summary.window_s = measured.elapsed;
    summary.cpu_pct = measured.gateway_cpu_pct();
    summary.loadgen_cpu_pct = measured.loadgen_cpu_pct();
    summary.machine_cpu_pct = machine_pct(&measured.before, &measured.after);
    summary.udp_drops = Some(measured.udp_drops());

    for f in summary.failures.iter().take(5) {
        eprintln!("failure: {f}");
    }
    let figures = summary.to_json();
    print!("{}", echo::table(std::slice::from_ref(&figures)));
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&figures)?)?;
    }
    let all_echoed = summary.up == args.sessions && summary.echoed.iter().all(|e| *e > 0);
    if args.check && !all_echoed {
        bail!("check failed: not every session was up with echoed audio and video");
    }
    Ok(())
}

async fn run_audiobridge(args: AudiobridgeArgs) -> Result<()> {
    let total = args.rooms * args.participants;
    if total == 0 || args.seconds <= 0.0 {
        bail!("--rooms, --participants and --seconds must be positive");
    }
    clock::secs(Instant::now());
    let signals = audiobridge::Signals::new()?;
    let window = Arc::new(clock::Window::default());
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let pid = args.gateway_pid;
    audiobridge::create_rooms(&args.janus, args.rooms, args.sampling_rate).await?;
    let mut summary = audiobridge::Summary {
        gateway: args.name.clone(),
        rooms: args.rooms,
        per_room: args.participants,
        talkers: args.talkers.min(args.participants),
        sampling_rate: args.sampling_rate,
        ..Default::default()
    };
    summary.rss_kib[0] = gateway_rss(pid)?;
    let pulses: Vec<Arc<clock::PulseClock>> = (0..args.rooms).map(|_| Arc::default()).collect();

    // Rooms fill one after the other; ticks are spread over the 20 ms period.
    let mut live = Vec::with_capacity(total);
    let batch = args.batch.max(1);
    for first in (0..total).step_by(batch) {
        let last = (first + batch).min(total);
        let joins = (first..last).map(|i| {
            let spec = audiobridge::ParticipantSpec {
                room: audiobridge::FIRST_ROOM + (i / args.participants) as u64,
                n: i % args.participants,
                talkers: args.talkers,
                janus_url: args.janus.clone(),
                ip: args.ip,
                phase: Duration::from_micros(i as u64 * 20_000 / total as u64),
            };
            let pulse = &pulses[i / args.participants];
            let (signals, window, stop) = (&signals, window.clone(), stop.clone());
            async move { audiobridge::join(&spec, signals, pulse, window, stop).await }
        });
        for (i, r) in (first..).zip(futures::future::join_all(joins).await) {
            match r {
                Ok(p) => live.push(p),
                Err(e) => summary.failures.push(format!("participant {i}: {e:#}")),
            }
        }
        eprintln!("ramp: {} of {total} participants joined", live.len());
    }
    tokio::time::sleep(Duration::from_secs(3)).await;

    let measured = Measured::window(&window, args.seconds, pid).await?;
    summary.rss_kib[1] = measured.rss_kib;
    summary.threads = measured.threads;
    // The mix of the window's last pulse may still be on its way.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _ = stop_tx.send(true);
    for (i, r) in futures::future::join_all(live.into_iter().map(|p| p.finish()))
        .await
        .into_iter()
        .enumerate()
    {
        match r {
            Ok(r) => summary.add(r),
            Err(e) => summary
                .failures
                .push(format!("participant {i} at the end: {e:#}")),
        }
    }
    tokio::time::sleep(Duration::from_secs_f64(args.settle)).await;
    summary.rss_kib[2] = gateway_rss(pid)?;
    summary.window_s = measured.elapsed;
    summary.cpu_pct = measured.gateway_cpu_pct();
    summary.loadgen_cpu_pct = measured.loadgen_cpu_pct();
    summary.machine_cpu_pct = machine_pct(&measured.before, &measured.after);

    for f in summary.failures.iter().take(5) {
        eprintln!("failure: {f}");
    }
    let figures = summary.to_json();
    print!("{}", audiobridge::table(std::slice::from_ref(&figures)));
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&figures)?)?;
    }
    if args.check && !(summary.up == total && summary.hearing == total) {
        bail!("check failed: not every participant was up and hearing the mix");
    }
    Ok(())
}

/// CPU counters read at one edge of the measuring window.
struct Snapshot {
    /// The gateway's ticks, when its PID is known.
    gateway: Option<u64>,
    /// The gateway's ticks by thread name.
    threads: std::collections::BTreeMap<String, u64>,
    /// The load client's own ticks.
    own: u64,
    /// The machine's busy and total ticks.
    machine: (u64, u64),
    /// UDP datagrams the kernel dropped so far: on the gateway's sockets, on the others.
    udp_drops: (u64, u64),
}

impl Snapshot {
    fn take(pid: Option<u32>) -> Result<Snapshot> {
        let gateway = pid
            .map(procfs::process_ticks)
            .transpose()
            .map_err(anyhow::Error::msg)?;
        Ok(Snapshot {
            gateway,
            threads: pid.map(procfs::thread_ticks).unwrap_or_default(),
            own: procfs::process_ticks(std::process::id()).map_err(anyhow::Error::msg)?,
            machine: procfs::machine_ticks().map_err(anyhow::Error::msg)?,
            udp_drops: procfs::udp_drops(pid),
        })
    }
}
