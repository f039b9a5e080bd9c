//! The streaming scenario (issue 11's benchmark): N WebRTC viewers of one RTMP-fed
//! mountpoint of `janus.plugin.streaming`.
//!
//! Per viewer: a Janus session, a handle on the streaming plugin, `watch` of the mountpoint,
//! the gateway's offer answered by a receive-only [`ViewerPeer`] with `start`. Every RTP
//! packet is accounted ([`VideoStats`] for H.264, [`LegStats`] for Opus): packets, sequence
//! gaps (loss), whole frames, and the time from sending `watch` to the last packet of the
//! first whole keyframe (first frame). With a direct pull of the same publisher (an FLV
//! stream, [`crate::flv`]), each frame's arrival is compared with the pull's
//! ([`added_delays_ms`]).

use crate::clock::{secs, Window};
use crate::frames::{added_delays_ms, RefFrame, VideoStats};
use crate::janus::{Handle, Janus};
use crate::metrics::{percentiles, LegStats};
use crate::peer::PeerReport;
use crate::viewer_peer::{h264_payload_types, RtpSink, ViewerPeer};
use anyhow::{anyhow, Context, Result};
use serde_json::json;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Settings of one viewer.
pub struct ViewerSpec {
    /// Janus WebSocket URL.
    pub janus_url: String,
    /// Mountpoint id.
    pub mountpoint: u64,
    /// Loopback address of the peer's socket.
    pub ip: IpAddr,
}

/// What one viewer's packets told.
struct Accounts {
    video_pts: Vec<u8>,
    video: VideoStats,
    audio: LegStats,
    window: Arc<Window>,
}

impl RtpSink for Accounts {
    fn packet(
        &mut self,
        arrival: Instant,
        pt: u8,
        seq: u16,
        ts: u32,
        marker: bool,
        payload: &[u8],
    ) {
        let t = secs(arrival);
        let in_window = self.window.contains(t);
        if self.video_pts.contains(&pt) {
            self.video.on_packet(t, seq, ts, marker, payload, in_window);
        } else {
            self.audio.on_packet(t, seq, ts, in_window);
        }
    }
}

/// A viewer watching.
pub struct LiveViewer {
    janus: Arc<Janus>,
    session: u64,
    keepalive: JoinHandle<()>,
    peer: JoinHandle<(PeerReport, Accounts)>,
    watch_at: f64,
}

/// A finished viewer.
pub struct ViewerResult {
    /// H.264 accounting.
    pub video: VideoStats,
    /// Opus accounting.
    pub audio: LegStats,
    /// From sending `watch` to the last packet of the first whole keyframe, ms.
    pub first_frame_ms: Option<f64>,
    /// The peer's own report.
    pub peer: PeerReport,
}

/// Sets up one viewer: session, attach, `watch`, answer, `start`. Returns once `start` is
/// acknowledged; media flows from then on.
///
/// Errors: any step failing or timing out.
pub async fn start_viewer(
    spec: &ViewerSpec,
    window: Arc<Window>,
    stop: watch::Receiver<bool>,
) -> Result<LiveViewer> {
    let janus = Janus::connect(&spec.janus_url).await?;
    let session = janus.create_session().await?;
    let mut handle: Handle = janus.attach(session, "janus.plugin.streaming").await?;
    let watch_at = secs(Instant::now());
    janus
        .message(
            &handle,
            json!({"request": "watch", "id": spec.mountpoint}),
            None,
        )
        .await?;
    let (_, jsep) = handle
        .wait_event(Duration::from_secs(30), |d| {
            d["result"]["status"] == "preparing"
        })
        .await
        .context("waiting for the offer")?;
    let offer = jsep
        .as_ref()
        .and_then(|j| j["sdp"].as_str())
        .ok_or_else(|| anyhow!("preparing without an SDP offer"))?
        .to_string();
    let (peer, answer) = ViewerPeer::answer(spec.ip, &offer).await?;
    janus
        .message(
            &handle,
            json!({"request": "start"}),
            Some(json!({"type": "answer", "sdp": answer})),
        )
        .await?;
    let mut accounts = Accounts {
        video_pts: h264_payload_types(&offer),
        video: VideoStats::default(),
        audio: LegStats::new(48_000),
        window,
    };
    let peer = tokio::spawn(async move {
        let report = peer.run(&mut accounts, stop).await;
        (report, accounts)
    });
    let keepalive = {
        let janus = janus.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(20)).await;
                if janus.keepalive(session).await.is_err() {
                    break;
                }
            }
        })
    };
    // Events are not needed past this point; the handle's queue is dropped with it.
    drop(handle);
    Ok(LiveViewer {
        janus,
        session,
        keepalive,
        peer,
        watch_at,
    })
}

impl LiveViewer {
    /// Waits for the peer (stopped through the `stop` channel) and destroys the session.
    pub async fn finish(self) -> Result<ViewerResult> {
        let (peer, accounts) = self.peer.await.map_err(|e| anyhow!("viewer task: {e}"))?;
        self.keepalive.abort();
        let _ = self.janus.destroy(self.session).await;
        Ok(ViewerResult {
            first_frame_ms: accounts
                .video
                .first_key
                .map(|t| (t - self.watch_at) * 1000.0),
            video: accounts.video,
            audio: accounts.audio,
            peer,
        })
    }
}

/// Figures of a run, printed by [`Summary::print`].
pub struct Summary {
    /// Viewers asked for.
    pub viewers: usize,
    /// Viewers finished with a result.
    pub results: Vec<ViewerResult>,
    /// Setup and hang-up failures.
    pub failures: Vec<String>,
    /// Measuring window, s.
    pub window_s: f64,
    /// Gateway CPU with the publisher alone, % of one core.
    pub ingest_cpu_pct: Option<f64>,
    /// Gateway CPU in the window, % of one core.
    pub gateway_cpu_pct: Option<f64>,
    /// Gateway CPU by thread name in the window, % of one core.
    pub threads: Vec<(String, f64)>,
    /// Gateway RSS with the publisher alone and at the window's end, KiB.
    pub rss_kib: Option<(u64, u64)>,
    /// Load client CPU in the window, % of one core.
    pub loadgen_cpu_pct: f64,
    /// Machine busy in the window, % of one core.
    pub machine_cpu_pct: f64,
    /// The direct pull's frames (empty without one).
    pub reference: Vec<RefFrame>,
}

fn fmt_ms(p: Option<(f64, f64, f64)>) -> String {
    p.map_or("n/a".into(), |(a, b, c)| {
        format!("{a:.0} / {b:.0} / {c:.0}")
    })
}

impl Summary {
    /// Whether every viewer came up and received whole video frames and audio in the window.
    pub fn all_viewers_played(&self) -> bool {
        self.results.len() == self.viewers
            && self
                .results
                .iter()
                .all(|r| !r.video.frames.is_empty() && r.audio.received > 0)
    }

    /// Prints the figures and a Markdown row.
    pub fn print(&self) {
        let up = self.results.len().max(1) as f64;
        let sum = |f: &dyn Fn(&ViewerResult) -> u64| self.results.iter().map(f).sum::<u64>();
        let (v_rx, v_lost) = (sum(&|r| r.video.received), sum(&|r| r.video.lost()));
        let (a_rx, a_lost) = (sum(&|r| r.audio.received), sum(&|r| r.audio.lost()));
        let frames = sum(&|r| r.video.frames.len() as u64);
        let broken = sum(&|r| r.video.broken);
        let lossy = self
            .results
            .iter()
            .filter(|r| r.video.lost() + r.audio.lost() > 0)
            .count();
        let first: Vec<f64> = self
            .results
            .iter()
            .filter_map(|r| r.first_frame_ms)
            .collect();
        let delays: Vec<f64> = if self.reference.is_empty() {
            Vec::new()
        } else {
            self.results
                .iter()
                .flat_map(|r| added_delays_ms(&self.reference, &r.video.frames))
                .collect()
        };
        let per_viewer_cpu = match (self.gateway_cpu_pct, self.ingest_cpu_pct) {
            (Some(c), Some(i)) => Some((c - i) / up),
            _ => None,
        };
        let rss_per = self.rss_kib.map(|(a, b)| b.saturating_sub(a) as f64 / up);
        println!();
        println!(
            "viewers up            {} of {}",
            self.results.len(),
            self.viewers
        );
        for f in self.failures.iter().take(10) {
            println!("  failed: {f}");
        }
        let connected = self.results.iter().filter(|r| r.peer.connected).count();
        println!("ICE/DTLS connected    {connected}");
        for e in self
            .results
            .iter()
            .filter_map(|r| r.peer.error.as_ref())
            .take(5)
        {
            println!("  peer stopped: {e}");
        }
        println!("window                {:.1} s", self.window_s);
        println!(
            "video                 {v_rx} packets, {v_lost} lost ({:.3} %), {frames} whole frames ({:.1}/s per viewer), {broken} broken",
            v_lost as f64 * 100.0 / (v_rx + v_lost).max(1) as f64,
            frames as f64 / up / self.window_s
        );
        println!(
            "audio                 {a_rx} packets, {a_lost} lost ({:.3} %)",
            a_lost as f64 * 100.0 / (a_rx + a_lost).max(1) as f64
        );
        println!("viewers with loss     {lossy}");
        println!(
            "first frame (ms)      {} (p50 / p95 / max, from watch)",
            fmt_ms(percentiles(&first))
        );
        println!(
            "added delay (ms)      {} (p50 / p95 / max over {} frames; {} pull frames)",
            fmt_ms(percentiles(&delays)),
            delays.len(),
            self.reference.len()
        );
        let pct = |p: Option<f64>| p.map_or("n/a".into(), |p| format!("{p:.1} %"));
        println!("gateway CPU, ingest   {}", pct(self.ingest_cpu_pct));
        println!("gateway CPU           {}", pct(self.gateway_cpu_pct));
        println!(
            "  per viewer          {}",
            per_viewer_cpu.map_or("n/a".into(), |p| format!("{p:.2} %"))
        );
        for (name, p) in &self.threads {
            if *p >= 0.5 {
                println!("  thread {name:<14} {p:.1} %");
            }
        }
        if let Some((a, b)) = self.rss_kib {
            println!(
                "gateway RSS           {:.1} → {:.1} MiB, {:.0} KiB per viewer",
                a as f64 / 1024.0,
                b as f64 / 1024.0,
                rss_per.unwrap_or(0.0)
            );
        }
        println!("load client CPU       {:.1} %", self.loadgen_cpu_pct);
        println!(
            "machine busy          {:.1} % (of {} cores × 100)",
            self.machine_cpu_pct,
            cores()
        );
        println!();
        println!("| viewers | loss (video / audio packets) | gateway CPU: ingest, total, per viewer | RSS per viewer | first frame p50 / p95 | added delay p50 / p95 |");
        println!(
            "| {} of {} | {v_lost} / {a_lost} | {}, {}, {} | {} | {} / {} ms | {} / {} ms |",
            self.results.len(),
            self.viewers,
            pct(self.ingest_cpu_pct),
            pct(self.gateway_cpu_pct),
            per_viewer_cpu.map_or("n/a".into(), |p| format!("{p:.2} %")),
            rss_per.map_or("n/a".into(), |k| format!("{k:.0} KiB")),
            opt0(percentiles(&first).map(|p| p.0)),
            opt0(percentiles(&first).map(|p| p.1)),
            opt1(percentiles(&delays).map(|p| p.0)),
            opt1(percentiles(&delays).map(|p| p.1)),
        );
    }
}

fn opt0(v: Option<f64>) -> String {
    v.map_or("n/a".into(), |v| format!("{v:.0}"))
}

fn opt1(v: Option<f64>) -> String {
    v.map_or("n/a".into(), |v| format!("{v:.1}"))
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
