//! The audio bridge scenario (issue 13's benchmark): R rooms of P participants of
//! `janus.plugin.audiobridge`, each an [`AudioPeer`] sending pre-encoded Opus every 20 ms and
//! receiving its mix (everyone else in the room). The same run works against Bifrons and
//! against Janus (both speak the Janus API), so `scripts/bench-audiobridge` compares them.
//!
//! Signals (48 kHz mono Opus, 32 kbit/s, 50 packets a second, each loop encoded once at
//! start): per room, participant 0 sends the pulse loop of [`crate::audio`] (a loud 1 kHz
//! pulse once a second over a 440 Hz tone with noise); the next `talkers − 1` send the same
//! tone without the pulse; the rest are open microphones: the tone and noise at 1/20 of the
//! level. Everyone but participant 0 finds the pulse's onset in its mix: the mix delay, one
//! way, from participant 0's send to the onset in the listener's decoded audio, with the
//! client's own Opus encoder delay subtracted.

use crate::audio::{loop_pcm, opus_loop, opus_loop_of, FRAME_MS};
use crate::clock::{PulseClock, Window};
use crate::echo::{num, quantile, side_by_side, Row};
use crate::janus::{Handle, Janus};
use crate::peer::{AudioPeer, LoopSource, PeerReport};
use crate::receiver::{LegReceiver, Opus};
use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Room ids of a run: `FIRST_ROOM`, `FIRST_ROOM + 1`, ...
pub const FIRST_ROOM: u64 = 4_713_000;
/// Level of the open microphones against the talkers.
const QUIET_DIVISOR: i16 = 20;

/// A loop of pre-encoded packets, shared by every participant that sends it.
type Frames = Arc<[Arc<[u8]>]>;

/// The three loops of the scenario, encoded once.
pub struct Signals {
    pulse: Frames,
    tone: Frames,
    quiet: Frames,
    /// Onset delay the client's own encoder adds to the pulse (s).
    calibration: f64,
}

impl Signals {
    /// Encodes the loops. Errors: the Opus library.
    pub fn new() -> Result<Signals> {
        let shared = |frames: Vec<Vec<u8>>| frames.into_iter().map(Arc::from).collect();
        let (pulse, calibration) = opus_loop()?;
        let frame = (48 * FRAME_MS) as usize;
        let mut tone = loop_pcm(48_000);
        // The pulse fills the first frame: the second frame's background replaces it.
        tone.copy_within(frame..2 * frame, 0);
        let quiet: Vec<i16> = tone.iter().map(|s| s / QUIET_DIVISOR).collect();
        Ok(Signals {
            pulse: shared(pulse),
            tone: shared(opus_loop_of(&tone)?),
            quiet: shared(opus_loop_of(&quiet)?),
            calibration,
        })
    }
}

/// Creates `rooms` rooms (`create` on `janus.plugin.audiobridge`, ids from [`FIRST_ROOM`],
/// Opus at `sampling_rate` Hz) over one session of its own.
///
/// Errors: the connection failing or the plugin refusing a room (its error code and reason).
pub async fn create_rooms(janus_url: &str, rooms: usize, sampling_rate: u32) -> Result<()> {
    let janus = Janus::connect(janus_url).await?;
    let session = janus.create_session().await?;
    let handle = janus.attach(session, "janus.plugin.audiobridge").await?;
    for r in 0..rooms as u64 {
        let body = json!({"request": "create", "room": FIRST_ROOM + r,
                          "description": format!("bench {r}"), "sampling_rate": sampling_rate});
        let v = janus.message(&handle, body, None).await?;
        let data = &v["plugindata"]["data"];
        if data["audiobridge"] != "created" {
            bail!("create of room {}: {v}", FIRST_ROOM + r);
        }
    }
    let _ = janus.destroy(session).await;
    Ok(())
}

/// Who a participant is in its room.
pub struct ParticipantSpec {
    /// Room id.
    pub room: u64,
    /// Index in the room (0 sends the pulse).
    pub n: usize,
    /// Participants of the room sending the tone at full level (the first of them the pulse).
    pub talkers: usize,
    /// Janus WebSocket URL.
    pub janus_url: String,
    /// Address of the peer's socket.
    pub ip: IpAddr,
    /// Offset of this participant's ticks, so participants do not all send at once.
    pub phase: Duration,
}

/// What a finished participant reports.
pub struct ParticipantResult {
    /// Sending `join` with the offer to the event carrying the answer, ms.
    pub join_to_answer_ms: f64,
    /// What it heard (the mix).
    pub rx: LegReceiver<Opus>,
    /// The peer's report.
    pub peer: PeerReport,
}

/// A participant in its room, its peer running.
pub struct LiveParticipant {
    janus: Arc<Janus>,
    session: u64,
    keepalive: JoinHandle<()>,
    peer: JoinHandle<(PeerReport, LegReceiver<Opus>)>,
    join_to_answer_ms: f64,
}

/// Joins one participant: Janus session, `attach`, `join` with the offer (`muted: false`),
/// answer from the event that carries it; the peer then runs until `stop`. `pulse` is the
/// room's pulse clock: participant 0 writes it, the others' receivers read it.
///
/// Errors: any step failing or timing out, or a plugin error (e.g. 485, no such room).
pub async fn join(
    spec: &ParticipantSpec,
    signals: &Signals,
    pulse: &Arc<PulseClock>,
    window: Arc<Window>,
    stop: watch::Receiver<bool>,
) -> Result<LiveParticipant> {
    let janus = Janus::connect(&spec.janus_url).await?;
    let session = janus.create_session().await?;
    let mut handle = janus.attach(session, "janus.plugin.audiobridge").await?;
    let (mut peer, offer) = AudioPeer::offer(spec.ip).await?;
    let asked = Instant::now();
    janus
        .message(
            &handle,
            json!({"request": "join", "room": spec.room, "muted": false,
                   "display": format!("bench-{}-{}", spec.room, spec.n)}),
            Some(json!({"type": "offer", "sdp": offer, "trickle": false})),
        )
        .await?;
    let sdp = wait_answer(&mut handle).await?;
    let join_to_answer_ms = asked.elapsed().as_secs_f64() * 1e3;
    peer.accept_answer(&sdp)?;
    let keepalive = janus.spawn_keepalive(session);

    let source = LoopSource {
        frames: match spec.n {
            0 => signals.pulse.clone(),
            n if n < spec.talkers => signals.tone.clone(),
            _ => signals.quiet.clone(),
        },
        pulse: (spec.n == 0).then(|| pulse.clone()),
    };
    // Participant 0 hears no pulse: its receiver waits on a clock nobody writes.
    let heard = match spec.n {
        0 => Arc::default(),
        _ => pulse.clone(),
    };
    let mut rx = LegReceiver::new(48_000, Opus::new()?, heard, window, signals.calibration);
    let first_tick = tokio::time::Instant::now() + spec.phase;
    let peer = tokio::spawn(async move {
        let report = peer.run(source, &mut rx, first_tick, stop).await;
        (report, rx)
    });
    Ok(LiveParticipant {
        janus,
        session,
        keepalive,
        peer,
        join_to_answer_ms,
    })
}

/// The SDP answer to a `join`: from the `joined` event or a later one of the same handle.
async fn wait_answer(handle: &mut Handle) -> Result<String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let (_, jsep) = handle
            .wait_event(left, |_| true)
            .await
            .context("waiting for the answer to join")?;
        if let Some(sdp) = jsep.as_ref().and_then(|j| j["sdp"].as_str()) {
            return Ok(sdp.to_string());
        }
    }
}

impl LiveParticipant {
    /// Collects the peer's figures (it was told to stop) and destroys the session.
    ///
    /// Errors: the peer task panicked.
    pub async fn finish(self) -> Result<ParticipantResult> {
        let (peer, rx) = self.peer.await.context("peer task")?;
        let _ = self.janus.destroy(self.session).await;
        self.keepalive.abort();
        Ok(ParticipantResult {
            join_to_answer_ms: self.join_to_answer_ms,
            rx,
            peer,
        })
    }
}

/// The figures of one run against one gateway.
#[derive(Debug, Default)]
pub struct Summary {
    /// Gateway name for the table.
    pub gateway: String,
    /// Rooms.
    pub rooms: usize,
    /// Participants per room.
    pub per_room: usize,
    /// Full-level talkers per room.
    pub talkers: usize,
    /// Mixing rate of the rooms, Hz.
    pub sampling_rate: u32,
    /// Participants whose peer connected.
    pub up: usize,
    /// Participants that failed, with why.
    pub failures: Vec<String>,
    /// Measuring window, s.
    pub window_s: f64,
    /// Gateway CPU over the window, % of one core.
    pub cpu_pct: Option<f64>,
    /// The load client's own CPU, % of one core.
    pub loadgen_cpu_pct: f64,
    /// The machine's busy time, % of one core.
    pub machine_cpu_pct: f64,
    /// Gateway RSS after the rooms were created and before the first join, at the end of the
    /// window and after every session ended, KiB.
    pub rss_kib: [Option<u64>; 3],
    /// Gateway threads at the end of the window.
    pub threads: Option<usize>,
    /// Join → answer per participant, ms.
    pub answer_ms: Vec<f64>,
    /// Mix packets received in the window, all participants.
    pub received: u64,
    /// Of those, more than 40 ms behind their schedule.
    pub late: u64,
    /// Sequence gaps in the window, all participants.
    pub lost: u64,
    /// Participants that heard something in the window.
    pub hearing: usize,
    /// Mix delays (pulse send → onset in a listener's audio), ms.
    pub delay_ms: Vec<f64>,
    /// Pulses sent in the window that a listener never found.
    pub pulses_missed: u64,
    /// Ticks of the load client more than a frame late.
    pub slips: u64,
}

impl Summary {
    /// Adds one participant's result.
    pub fn add(&mut self, r: ParticipantResult) {
        self.up += usize::from(r.peer.connected);
        self.answer_ms.push(r.join_to_answer_ms);
        let s = &r.rx.stats;
        self.received += s.received;
        self.late += s.late;
        self.lost += s.lost();
        self.hearing += usize::from(s.received > 0);
        self.delay_ms.extend(&s.delays_ms);
        self.pulses_missed += s.pulses_missed;
        self.slips += r.peer.slips;
        if let Some(e) = r.peer.error {
            self.failures.push(e);
        }
    }

    /// The figures as one JSON object (what `audiobridge-table` reads).
    pub fn to_json(&self) -> Value {
        let up = self.up.max(1) as f64;
        let q = |v: &[f64], x| quantile(v, x);
        let [idle, loaded, after] = self.rss_kib;
        let expected = self.up as f64 * self.window_s * 1000.0 / FRAME_MS as f64;
        let heard = (self.received + self.lost).max(1) as f64;
        json!({
            "gateway": self.gateway,
            "rooms": self.rooms,
            "per_room": self.per_room,
            "talkers": self.talkers,
            "sampling_rate": self.sampling_rate,
            "participants": self.rooms * self.per_room,
            "up": self.up,
            "hearing": self.hearing,
            "failures": self.failures.len(),
            "window_s": self.window_s,
            "cpu_pct": self.cpu_pct,
            "cpu_per_participant_pct": self.cpu_pct.map(|c| c / up),
            "loadgen_cpu_pct": self.loadgen_cpu_pct,
            "machine_cpu_pct": self.machine_cpu_pct,
            "rss_idle_kib": idle,
            "rss_loaded_kib": loaded,
            "rss_after_kib": after,
            "rss_per_participant_kib":
                idle.zip(loaded).map(|(i, l)| l.saturating_sub(i) as f64 / up),
            "threads": self.threads,
            "answer_p50_ms": q(&self.answer_ms, 0.5),
            "answer_p99_ms": q(&self.answer_ms, 0.99),
            "pps_per_participant": (self.window_s > 0.0)
                .then(|| self.received as f64 / up / self.window_s),
            "received_pct": (expected > 0.0).then(|| self.received as f64 / expected * 100.0),
            "lost_pct": self.lost as f64 / heard * 100.0,
            "late_pct": self.late as f64 / self.received.max(1) as f64 * 100.0,
            "delay_p50_ms": q(&self.delay_ms, 0.5),
            "delay_p95_ms": q(&self.delay_ms, 0.95),
            "delays": self.delay_ms.len(),
            "pulses_missed": self.pulses_missed,
            "received": self.received, "lost": self.lost, "late": self.late,
            "slips": self.slips,
        })
    }
}

/// One Markdown table of runs side by side (one column per [`Summary::to_json`]).
pub fn table(runs: &[Value]) -> String {
    let pair = |a: &'static str, b: &'static str, d: usize| -> Box<dyn Fn(&Value) -> String> {
        Box::new(move |v: &Value| format!("{} / {}", num(v, a, d), num(v, b, d)))
    };
    let one = |k: &'static str, d: usize| -> Box<dyn Fn(&Value) -> String> {
        Box::new(move |v: &Value| num(v, k, d))
    };
    let rows: Vec<Row> = vec![
        (
            "rooms × participants (talkers), rate",
            Box::new(|v: &Value| {
                format!(
                    "{} × {} ({}), {} kHz",
                    v["rooms"],
                    v["per_room"],
                    v["talkers"],
                    v["sampling_rate"].as_u64().unwrap_or(0) / 1000
                )
            }),
        ),
        (
            "participants up / hearing the mix",
            Box::new(|v: &Value| {
                format!("{} / {} of {}", v["up"], v["hearing"], v["participants"])
            }),
        ),
        ("gateway CPU, % of a core", one("cpu_pct", 1)),
        (
            "CPU per participant, % of a core",
            one("cpu_per_participant_pct", 3),
        ),
        (
            "RSS per participant, KiB",
            one("rss_per_participant_kib", 0),
        ),
        (
            "RSS rooms made → loaded → after, MiB",
            Box::new(|v: &Value| {
                let m = |k: &str| {
                    v[k].as_f64()
                        .map_or("-".into(), |x| format!("{:.1}", x / 1024.0))
                };
                format!(
                    "{} → {} → {}",
                    m("rss_idle_kib"),
                    m("rss_loaded_kib"),
                    m("rss_after_kib")
                )
            }),
        ),
        ("threads", one("threads", 0)),
        (
            "join → answer p50 / p99, ms",
            pair("answer_p50_ms", "answer_p99_ms", 1),
        ),
        (
            "mix received, packets/s per participant (50)",
            one("pps_per_participant", 1),
        ),
        ("lost (sequence gaps), %", one("lost_pct", 2)),
        ("late (> 40 ms behind), %", one("late_pct", 2)),
        (
            "mix delay p50 / p95, ms",
            pair("delay_p50_ms", "delay_p95_ms", 1),
        ),
        ("pulses missed", one("pulses_missed", 0)),
        ("load client CPU, % of a core", one("loadgen_cpu_pct", 0)),
        ("machine busy, % of a core", one("machine_cpu_pct", 0)),
    ];
    side_by_side("audio bridge", runs, rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loops_are_one_second_and_only_the_pulse_loop_is_loud_at_its_start() {
        let s = Signals::new().unwrap();
        for l in [&s.pulse, &s.tone, &s.quiet] {
            assert_eq!(l.len(), 50);
        }
        let mut dec = opus::Decoder::new(48_000, opus::Channels::Mono).unwrap();
        let mut peak = |frames: &Frames| {
            let mut pcm = vec![0i16; 960];
            let mut max = 0u16;
            for f in frames.iter().take(3) {
                let n = dec.decode(f, &mut pcm, false).unwrap();
                max = max.max(pcm[..n].iter().map(|x| x.unsigned_abs()).max().unwrap());
            }
            dec.reset_state().unwrap();
            max
        };
        assert!(peak(&s.pulse) > 12_000);
        let tone = peak(&s.tone);
        assert!((1_000..12_000).contains(&tone), "tone peak {tone}");
        assert!(peak(&s.quiet) < tone / 5);
    }

    #[test]
    fn figures_count_loss_and_rate_against_the_window() {
        let mut s = Summary {
            gateway: "G".into(),
            rooms: 1,
            per_room: 2,
            talkers: 1,
            sampling_rate: 16_000,
            window_s: 10.0,
            up: 2,
            received: 900,
            lost: 100,
            ..Summary::default()
        };
        s.delay_ms = vec![30.0, 40.0, 50.0];
        let v = s.to_json();
        assert_eq!(v["pps_per_participant"], 45.0);
        assert_eq!(v["lost_pct"], 10.0);
        assert_eq!(v["received_pct"], 90.0);
        let t = table(&[v]);
        assert!(t.contains("| lost (sequence gaps), % | 10.00 |"), "{t}");
        assert!(t.contains("| 1 × 2 (1), 16 kHz |"), "{t}");
        assert!(
            t.contains("| mix delay p50 / p95, ms | 40.0 / 50.0 |"),
            "{t}"
        );
    }
}
