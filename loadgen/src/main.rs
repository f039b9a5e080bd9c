//! `bifrons-loadgen`: a load client for Bifrons. It drives many WebRTC peers (str0m) through
//! the Janus API, plays the far ends itself and measures, on one clock, what reached each
//! side: loss, lateness and one-way delay, with the gateway's CPU and memory from `/proc`.
//!
//! `bifrons-loadgen sip --janus ws://127.0.0.1:8188/ --gateway-pid PID --calls 100` runs the
//! SIP scenario ([`sip`]); `scripts/bench-sip` starts a gateway and runs it. See README.md.

mod audio;
mod clock;
mod janus;
mod metrics;
mod peer;
mod procfs;
mod receiver;
mod report;
mod sip;

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
    }
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
        })
    }
}
