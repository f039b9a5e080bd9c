//! The echo scenario (issue 16's benchmark): N sessions of `janus.plugin.echotest`, each a
//! str0m peer in RTP mode sending Opus at 50 packets/s and VP8 at 500 kbit/s (synthetic
//! payloads) that the gateway sends back. Every packet carries a probe at the end of its
//! payload (session, kind, counter, send time), so the echoed copy tells its round-trip time
//! and which packets never came back, whatever the gateway did to the RTP header.
//!
//! The same run works against Bifrons and against Janus (both speak the Janus API), so
//! `scripts/bench-echo` compares them under the same load.

use crate::clock::{secs, Window};
use crate::janus::Janus;
use crate::peer::PeerReport;
use anyhow::{anyhow, Context, Result};
use serde_json::{json, Value};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use str0m::change::{SdpAnswer, SdpPendingOffer};
use str0m::media::{Direction, MediaKind, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::rtp::RtpWrite;
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc, RtcConfig};
use tokio::net::UdpSocket;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

/// One tick: an Opus frame (20 ms) and one VP8 packet.
const TICK: Duration = Duration::from_millis(20);
/// VP8 payload per packet, bytes: 1,250 every 20 ms is 500 kbit/s.
const VIDEO_PAYLOAD: usize = 1250;
/// Opus payload per packet, bytes (a 32 kbit/s frame is about 80).
const AUDIO_PAYLOAD: usize = 80;
/// Packets per VP8 frame (25 frames/s, 90 kHz ticks 3,600 apart).
const VIDEO_PACKETS_PER_FRAME: u64 = 2;
/// A VP8 keyframe every this many frames (2 s).
const KEYFRAME_EVERY: u64 = 50;
/// Probe marker at the start of the probe.
const MAGIC: [u8; 4] = *b"BFEC";
/// Probe length: magic, kind, 3 spare bytes, session (u32), counter (u64), send time (ns on
/// the load client's clock, u64)... 28 bytes in all.
const PROBE_LEN: usize = 28;

/// Media kind of a probe, as written in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Opus.
    Audio = 0,
    /// VP8.
    Video = 1,
}

/// What a probe says about the packet that carried it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    /// Kind of the packet.
    pub kind: Kind,
    /// Session number of the sender.
    pub session: u32,
    /// Packet counter of that kind in that session, from 0.
    pub counter: u64,
    /// Send time, ns since the load client's clock epoch.
    pub sent_ns: u64,
}

impl Probe {
    /// Writes the probe into the last [`PROBE_LEN`] bytes of `payload`.
    pub fn write(&self, payload: &mut [u8]) {
        let at = payload.len() - PROBE_LEN;
        let p = &mut payload[at..];
        p[..4].copy_from_slice(&MAGIC);
        p[4] = self.kind as u8;
        p[5..8].fill(0);
        p[8..12].copy_from_slice(&self.session.to_be_bytes());
        p[12..20].copy_from_slice(&self.counter.to_be_bytes());
        p[20..28].copy_from_slice(&self.sent_ns.to_be_bytes());
    }

    /// Reads the probe at the end of `payload`; `None` when there is none.
    pub fn read(payload: &[u8]) -> Option<Probe> {
        let p = payload.get(payload.len().checked_sub(PROBE_LEN)?..)?;
        if p[..4] != MAGIC {
            return None;
        }
        let kind = match p[4] {
            0 => Kind::Audio,
            1 => Kind::Video,
            _ => return None,
        };
        let u64_at = |i: usize| u64::from_be_bytes(p[i..i + 8].try_into().unwrap_or_default());
        Some(Probe {
            kind,
            session: u32::from_be_bytes(p[8..12].try_into().ok()?),
            counter: u64_at(12),
            sent_ns: u64_at(20),
        })
    }
}

/// The synthetic payload of VP8 packet `n` (0, 1, ...): a VP8 payload descriptor (RFC 7741
/// §4.2: S set on a frame's first packet, partition 0), on a frame's first packet the
/// frame tag (with the keyframe start code and a 640×360 size on keyframes, RFC 6386 §9.1),
/// then filler; the probe goes at the end.
pub fn vp8_payload(n: u64) -> Vec<u8> {
    let mut p = vec![0x5a; VIDEO_PAYLOAD];
    let frame = n / VIDEO_PACKETS_PER_FRAME;
    if n % VIDEO_PACKETS_PER_FRAME == 0 {
        p[0] = 0x10;
        let key = frame % KEYFRAME_EVERY == 0;
        // Frame tag: bit 0 = 0 on keyframes, show_frame (bit 4), a small first partition.
        p[1..4].copy_from_slice(&[if key { 0x10 } else { 0x11 }, 0x02, 0x00]);
        if key {
            p[4..10].copy_from_slice(&[0x9d, 0x01, 0x2a, 0x80, 0x02, 0x68]);
            p[10] = 0x01;
        }
    } else {
        p[0] = 0x00;
    }
    p
}

/// The synthetic Opus payload: a TOC byte (RFC 6716 §3.1: CELT fullband 20 ms, mono, one
/// frame), then filler; the probe goes at the end.
pub fn opus_payload() -> Vec<u8> {
    let mut p = vec![0xa5; AUDIO_PAYLOAD];
    p[0] = 0xf8;
    p
}

/// What one kind of one session measured, for probes sent inside the window.
#[derive(Debug, Default, Clone)]
pub struct KindStats {
    /// Packets sent in the window.
    pub sent: u64,
    /// Of those, packets that came back (each counted once).
    pub echoed: u64,
    /// Round-trip times of those, ms.
    pub rtt_ms: Vec<f64>,
    /// Bitmap of counters seen back, to count duplicates (retransmissions) once.
    seen: Vec<u64>,
}

impl KindStats {
    /// Counts a packet sent at `at_s` (s on the load client's clock).
    fn on_sent(&mut self, window: &Window, at_s: f64) {
        if window.contains(at_s) {
            self.sent += 1;
        }
    }

    /// Counts an echoed probe arriving at `arrival_s`.
    fn on_echo(&mut self, window: &Window, probe: &Probe, arrival_s: f64) {
        let sent_s = probe.sent_ns as f64 / 1e9;
        if !window.contains(sent_s) {
            return;
        }
        let (word, bit) = ((probe.counter / 64) as usize, probe.counter % 64);
        if word >= self.seen.len() {
            // Counters grow by 50 a second: a run of an hour is 23 KB per kind.
            if word > 1 << 20 {
                return;
            }
            self.seen.resize(word + 1, 0);
        }
        if self.seen[word] & (1 << bit) != 0 {
            return;
        }
        self.seen[word] |= 1 << bit;
        self.echoed += 1;
        self.rtt_ms.push((arrival_s - sent_s) * 1e3);
    }
}

/// What a finished session reports.
#[derive(Debug, Default)]
pub struct SessionResult {
    /// Sending `message` with the offer to the event carrying the answer, ms.
    pub create_to_answer_ms: f64,
    /// `create` sent to ICE and DTLS up on the peer, ms.
    pub setup_ms: Option<f64>,
    /// Opus.
    pub audio: KindStats,
    /// VP8.
    pub video: KindStats,
    /// The peer's report.
    pub peer: PeerReport,
}

/// A session up and running.
pub struct LiveSession {
    janus: Arc<Janus>,
    session: u64,
    keepalive: JoinHandle<()>,
    peer: JoinHandle<SessionResult>,
}

/// Settings of one session.
pub struct SessionSpec {
    /// Session number (written in its probes).
    pub n: u32,
    /// Janus WebSocket URL.
    pub janus_url: String,
    /// Address of the peer's socket.
    pub ip: IpAddr,
    /// Offset of this session's ticks, so sessions do not all send at once.
    pub phase: Duration,
}

/// Sets up one echo session: Janus session, `attach`, offer with `{"audio": true, "video":
/// true}`, answer; then the peer runs until `stop`.
///
/// Errors: any step failing or timing out.
pub async fn start_session(
    spec: &SessionSpec,
    window: Arc<Window>,
    stop: watch::Receiver<bool>,
) -> Result<LiveSession> {
    let created = Instant::now();
    let janus = Janus::connect(&spec.janus_url).await?;
    let session = janus.create_session().await?;
    let mut handle = janus.attach(session, "janus.plugin.echotest").await?;
    let (mut peer, offer) = EchoPeer::offer(spec.ip).await?;
    let asked = Instant::now();
    janus
        .message(
            &handle,
            json!({"audio": true, "video": true}),
            Some(json!({"type": "offer", "sdp": offer, "trickle": false})),
        )
        .await?;
    let (_, jsep) = handle
        .wait_event(Duration::from_secs(60), |d| d["result"].is_string())
        .await
        .context("waiting for the answer")?;
    let answered = Instant::now();
    let sdp = jsep
        .as_ref()
        .and_then(|j| j["sdp"].as_str())
        .ok_or_else(|| anyhow!("echotest event without an SDP answer"))?;
    peer.accept_answer(sdp)?;
    let keepalive = janus.spawn_keepalive(session);
    let first_tick = tokio::time::Instant::now() + spec.phase;
    let n = spec.n;
    let peer = tokio::spawn(async move {
        let mut result = SessionResult {
            create_to_answer_ms: (answered - asked).as_secs_f64() * 1e3,
            ..SessionResult::default()
        };
        let connected = peer.run(n, &mut result, &window, first_tick, stop).await;
        result.setup_ms = connected.map(|t| (t - created).as_secs_f64() * 1e3);
        result
    });
    Ok(LiveSession {
        janus,
        session,
        keepalive,
        peer,
    })
}

impl LiveSession {
    /// Collects the peer's figures (it was told to stop) and destroys the session.
    ///
    /// Errors: the peer task panicked.
    pub async fn finish(self) -> Result<SessionResult> {
        let result = self.peer.await.context("peer task")?;
        let _ = self.janus.destroy(self.session).await;
        self.keepalive.abort();
        Ok(result)
    }
}

/// A sendrecv Opus + VP8 peer in RTP mode with its offer made.
pub struct EchoPeer {
    rtc: Rtc,
    socket: UdpSocket,
    local: SocketAddr,
    audio: Mid,
    video: Mid,
    pending: Option<SdpPendingOffer>,
}

impl EchoPeer {
    /// Binds a UDP socket on `ip` and offers one Opus and one VP8 m-line, both sendrecv.
    ///
    /// Errors: binding the socket.
    pub async fn offer(ip: IpAddr) -> Result<(EchoPeer, String)> {
        let socket = UdpSocket::bind(SocketAddr::new(ip, 0)).await?;
        let local = socket.local_addr()?;
        let mut rtc = RtcConfig::new()
            .clear_codecs()
            .enable_opus(true, false)
            .enable_vp8(true)
            .set_rtp_mode(true)
            .build(Instant::now());
        let cand = Candidate::host(local, "udp").map_err(|e| anyhow!("candidate: {e}"))?;
        rtc.add_local_candidate(cand);
        let mut api = rtc.sdp_api();
        let audio = api.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
        let video = api.add_media(MediaKind::Video, Direction::SendRecv, None, None, None);
        let (offer, pending) = api.apply().ok_or_else(|| anyhow!("no offer"))?;
        let sdp = offer.to_sdp_string();
        Ok((
            EchoPeer {
                rtc,
                socket,
                local,
                audio,
                video,
                pending: Some(pending),
            },
            sdp,
        ))
    }

    /// Applies the answer's SDP. Errors: an SDP str0m cannot parse or accept.
    pub fn accept_answer(&mut self, sdp: &str) -> Result<()> {
        let answer = SdpAnswer::from_sdp_string(sdp).context("parsing the answer")?;
        let pending = self
            .pending
            .take()
            .ok_or_else(|| anyhow!("no offer pending"))?;
        self.rtc
            .sdp_api()
            .accept_answer(pending, answer)
            .context("accepting the answer")?;
        Ok(())
    }

    /// The payload type the answer gave `mid`.
    fn pt(&self, mid: Mid) -> Option<Pt> {
        self.rtc.media(mid)?.remote_pts().first().copied()
    }

    /// Drives the peer until `stop`; returns when ICE and DTLS came up, if they did. Sends one
    /// Opus and one VP8 packet per tick from `first_tick` on, once connected, and accounts
    /// what comes back into `result`.
    async fn run(
        mut self,
        session: u32,
        result: &mut SessionResult,
        window: &Window,
        first_tick: tokio::time::Instant,
        mut stop: watch::Receiver<bool>,
    ) -> Option<Instant> {
        let mut connected_at = None;
        let mut buf = vec![0u8; 2000];
        let mut tick = tokio::time::interval_at(first_tick, TICK);
        tick.set_missed_tick_behavior(MissedTickBehavior::Burst);
        let mut audio_payload = opus_payload();
        let mut n = 0u64;
        let report = &mut result.peer;
        loop {
            let deadline = loop {
                match self.rtc.poll_output() {
                    Ok(Output::Transmit(t)) => {
                        let _ = self.socket.send_to(&t.contents, t.destination).await;
                    }
                    Ok(Output::Timeout(t)) => break t,
                    Ok(Output::Event(e)) => match e {
                        Event::Connected => {
                            report.connected = true;
                            connected_at = Some(Instant::now());
                        }
                        Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                            report.error = Some("ICE disconnected".into());
                            return connected_at;
                        }
                        Event::RtpPacket(p) => {
                            if let Some(probe) = Probe::read(&p.payload) {
                                let arrival = secs(p.timestamp);
                                match probe.kind {
                                    Kind::Audio => result.audio.on_echo(window, &probe, arrival),
                                    Kind::Video => result.video.on_echo(window, &probe, arrival),
                                }
                            }
                        }
                        _ => {}
                    },
                    Err(e) => {
                        report.error = Some(format!("rtc: {e}"));
                        return connected_at;
                    }
                }
            };
            let wake = tokio::time::Instant::from_std(deadline);
            tokio::select! {
                r = self.socket.recv_from(&mut buf) => {
                    let Ok((len, source)) = r else { continue };
                    let now = Instant::now();
                    let Ok(rx) = Receive::new(Protocol::Udp, source, self.local, &buf[..len]) else {
                        continue;
                    };
                    if let Err(e) = self.rtc.handle_input(Input::Receive(now, rx)) {
                        report.error = Some(format!("input: {e}"));
                        return connected_at;
                    }
                }
                _ = tokio::time::sleep_until(wake) => {
                    if let Err(e) = self.rtc.handle_input(Input::Timeout(Instant::now())) {
                        report.error = Some(format!("timeout: {e}"));
                        return connected_at;
                    }
                }
                due = tick.tick() => {
                    if !report.connected {
                        continue;
                    }
                    if due.elapsed() > TICK {
                        report.slips += 1;
                    }
                    let (Some(apt), Some(vpt)) = (self.pt(self.audio), self.pt(self.video)) else {
                        continue;
                    };
                    let now = Instant::now();
                    let now_s = secs(now);
                    let sent_ns = (now_s.max(0.0) * 1e9) as u64;
                    Probe { kind: Kind::Audio, session, counter: n, sent_ns }
                        .write(&mut audio_payload);
                    let mut video_payload = vp8_payload(n);
                    Probe { kind: Kind::Video, session, counter: n, sent_ns }
                        .write(&mut video_payload);
                    let frame = n / VIDEO_PACKETS_PER_FRAME;
                    let last_of_frame = n % VIDEO_PACKETS_PER_FRAME == VIDEO_PACKETS_PER_FRAME - 1;
                    let mut api = self.rtc.direct_api();
                    if let Some(tx) = api.stream_tx_by_mid(self.audio, None) {
                        tx.write_rtp(RtpWrite::new(apt, n.into(), (n * 960) as u32, now,
                                                   audio_payload.clone()).marker(n == 0));
                        result.audio.on_sent(window, now_s);
                    }
                    if let Some(tx) = api.stream_tx_by_mid(self.video, None) {
                        tx.write_rtp(RtpWrite::new(vpt, n.into(), (frame * 3600) as u32, now,
                                                   video_payload).marker(last_of_frame));
                        result.video.on_sent(window, now_s);
                    }
                    report.sent += 2;
                    n += 1;
                }
                r = stop.changed() => {
                    if r.is_err() || *stop.borrow() {
                        self.rtc.disconnect();
                        return connected_at;
                    }
                }
            }
        }
    }
}

/// The figures of one run against one gateway, as printed and as written for the table.
#[derive(Debug, Default)]
pub struct Summary {
    /// Gateway name for the table (`Janus 1.1.2`, `Bifrons`).
    pub gateway: String,
    /// Sessions asked for.
    pub sessions: usize,
    /// Sessions whose peer connected.
    pub up: usize,
    /// Sessions that failed, with why.
    pub failures: Vec<String>,
    /// Measuring window, s.
    pub window_s: f64,
    /// Gateway CPU over the window, % of one core.
    pub cpu_pct: Option<f64>,
    /// The load client's own CPU, % of one core.
    pub loadgen_cpu_pct: f64,
    /// The machine's busy time, % of one core.
    pub machine_cpu_pct: f64,
    /// Gateway RSS before the first session, at the end of the window and after the sessions
    /// ended, KiB.
    pub rss_kib: [Option<u64>; 3],
    /// Gateway RSS (KiB) once the first half of the sessions were set up with media flowing,
    /// and how many were set up then: the marginal cost of a session is what the second half
    /// added, without the one-off cost (code paged in, pools) the first sessions pay.
    pub rss_half: Option<(u64, usize)>,
    /// Sessions set up (signalling done) at the end of the ramp, connected or not.
    pub set_up: usize,
    /// Gateway threads at the end of the window.
    pub threads: Option<usize>,
    /// Create→answer per session, ms.
    pub answer_ms: Vec<f64>,
    /// Set-up per session, ms.
    pub setup_ms: Vec<f64>,
    /// Sent and echoed packets, audio and video.
    pub sent: [u64; 2],
    /// Echoed packets, audio and video.
    pub echoed: [u64; 2],
    /// Every round-trip time, ms.
    pub rtt_ms: Vec<f64>,
    /// Ticks of the load client more than a frame late.
    pub slips: u64,
    /// UDP datagrams the kernel dropped in the window, full receive buffers: on the gateway's
    /// sockets, on the load client's.
    pub udp_drops: Option<[u64; 2]>,
}

/// Whether the ramp's batch of sessions `first..last` (of `sessions`) is the one that brings
/// half of them up, when the half-way RSS is read; never the last batch, so at least one
/// session comes after the reading.
pub fn half_way(first: usize, last: usize, sessions: usize) -> bool {
    first * 2 < sessions && last * 2 >= sessions && last < sessions
}

/// The `q` quantile (0..=1) of `v`, nearest rank; `None` when empty.
pub fn quantile(v: &[f64], q: f64) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    Some(v[((v.len() - 1) as f64 * q).round() as usize])
}

impl Summary {
    /// Adds one session's result.
    pub fn add(&mut self, r: SessionResult) {
        self.up += usize::from(r.peer.connected);
        self.answer_ms.push(r.create_to_answer_ms);
        self.setup_ms.extend(r.setup_ms);
        for (i, k) in [r.audio, r.video].into_iter().enumerate() {
            self.sent[i] += k.sent;
            self.echoed[i] += k.echoed;
            self.rtt_ms.extend(k.rtt_ms);
        }
        self.slips += r.peer.slips;
        if let Some(e) = r.peer.error {
            self.failures.push(e);
        }
    }

    /// Lost share of what was sent in the window (both kinds), %.
    pub fn loss_pct(&self) -> Option<f64> {
        let sent: u64 = self.sent.iter().sum();
        let echoed: u64 = self.echoed.iter().sum();
        (sent > 0).then(|| (sent - echoed.min(sent)) as f64 / sent as f64 * 100.0)
    }

    /// RSS (KiB) each session past the first half added: loaded minus the half-way reading,
    /// over the sessions set up since. `None` without both readings or when none was set up
    /// since.
    pub fn rss_marginal_kib(&self) -> Option<f64> {
        let (half, half_set_up) = self.rss_half?;
        let loaded = self.rss_kib[1]?;
        let added = self.set_up.checked_sub(half_set_up).filter(|&n| n > 0)?;
        Some(loaded.saturating_sub(half) as f64 / added as f64)
    }

    /// The figures as one JSON object (what `echo-table` reads).
    pub fn to_json(&self) -> Value {
        let up = self.up.max(1) as f64;
        let q = |v: &[f64], x| quantile(v, x);
        let [idle, loaded, after] = self.rss_kib;
        json!({
            "gateway": self.gateway,
            "sessions": self.sessions,
            "up": self.up,
            "failures": self.failures.len(),
            "window_s": self.window_s,
            "cpu_pct": self.cpu_pct,
            "cpu_per_session_pct": self.cpu_pct.map(|c| c / up),
            "loadgen_cpu_pct": self.loadgen_cpu_pct,
            "machine_cpu_pct": self.machine_cpu_pct,
            "rss_idle_kib": idle,
            "rss_loaded_kib": loaded,
            "rss_after_kib": after,
            "rss_per_session_kib": idle.zip(loaded).map(|(i, l)| l.saturating_sub(i) as f64 / up),
            "rss_half_kib": self.rss_half.map(|(kib, _)| kib),
            "rss_marginal_kib": self.rss_marginal_kib(),
            "threads": self.threads,
            "answer_p50_ms": q(&self.answer_ms, 0.5),
            "answer_p99_ms": q(&self.answer_ms, 0.99),
            "setup_p50_ms": q(&self.setup_ms, 0.5),
            "setup_p99_ms": q(&self.setup_ms, 0.99),
            "rtt_p50_ms": q(&self.rtt_ms, 0.5),
            "rtt_p99_ms": q(&self.rtt_ms, 0.99),
            "loss_pct": self.loss_pct(),
            "audio_sent": self.sent[0], "audio_echoed": self.echoed[0],
            "video_sent": self.sent[1], "video_echoed": self.echoed[1],
            "slips": self.slips,
            "udp_drops_gateway": self.udp_drops.map(|d| d[0]),
            "udp_drops_client": self.udp_drops.map(|d| d[1]),
        })
    }
}

/// One Markdown table of runs side by side (one column per run's JSON from
/// [`Summary::to_json`]).
pub fn table(runs: &[Value]) -> String {
    let rows: Vec<Row> = vec![
        (
            "sessions up",
            Box::new(|v: &Value| format!("{} of {}", v["up"], v["sessions"])),
        ),
        (
            "gateway CPU, % of a core",
            Box::new(move |v: &Value| num(v, "cpu_pct", 1)),
        ),
        (
            "CPU per session, % of a core",
            Box::new(move |v: &Value| num(v, "cpu_per_session_pct", 3)),
        ),
        (
            "RSS per session, KiB",
            Box::new(move |v: &Value| num(v, "rss_per_session_kib", 0)),
        ),
        (
            "RSS per session past the first half, KiB",
            Box::new(move |v: &Value| num(v, "rss_marginal_kib", 0)),
        ),
        (
            "RSS idle → loaded → after, MiB",
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
        ("threads", Box::new(move |v: &Value| num(v, "threads", 0))),
        (
            "create → answer p50 / p99, ms",
            Box::new(move |v: &Value| pair(v, "answer_p50_ms", "answer_p99_ms", 1)),
        ),
        (
            "set-up p50 / p99, ms",
            Box::new(move |v: &Value| pair(v, "setup_p50_ms", "setup_p99_ms", 1)),
        ),
        (
            "RTT p50 / p99, ms",
            Box::new(move |v: &Value| pair(v, "rtt_p50_ms", "rtt_p99_ms", 2)),
        ),
        ("loss, %", Box::new(move |v: &Value| num(v, "loss_pct", 2))),
        (
            "UDP drops by the kernel: gateway / load client",
            Box::new(move |v: &Value| pair(v, "udp_drops_gateway", "udp_drops_client", 0)),
        ),
        (
            "load client CPU, % of a core",
            Box::new(move |v: &Value| num(v, "loadgen_cpu_pct", 0)),
        ),
        (
            "machine busy, % of a core",
            Box::new(move |v: &Value| num(v, "machine_cpu_pct", 0)),
        ),
    ];
    side_by_side("echo test", runs, rows)
}

/// One row of a side-by-side table: its label and how one run's JSON shows in it.
pub type Row = (&'static str, Box<dyn Fn(&Value) -> String>);

/// `v[a]` and `v[b]` with `digits` decimals, as "a / b".
fn pair(v: &Value, a: &str, b: &str, digits: usize) -> String {
    format!("{} / {}", num(v, a, digits), num(v, b, digits))
}

/// `v[key]` with `digits` decimals, `-` when absent.
pub fn num(v: &Value, key: &str, digits: usize) -> String {
    match v[key].as_f64() {
        Some(x) => format!("{x:.digits$}"),
        None => "-".into(),
    }
}

/// One Markdown table headed `title`, one column per run (named by its `gateway`), one line
/// per row.
pub fn side_by_side(title: &str, runs: &[Value], rows: Vec<Row>) -> String {
    let mut out = format!("| {title} |");
    for v in runs {
        out += &format!(" {} |", v["gateway"].as_str().unwrap_or("?"));
    }
    out += "\n|---|";
    out += &"---|".repeat(runs.len());
    for (name, f) in rows {
        out += &format!("\n| {name} |");
        for v in runs {
            out += &format!(" {} |", f(v));
        }
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_round_trips_at_the_end_of_either_payload() {
        for (kind, mut payload) in [(Kind::Audio, opus_payload()), (Kind::Video, vp8_payload(3))] {
            let probe = Probe {
                kind,
                session: 7,
                counter: 123_456,
                sent_ns: 9_876_543_210,
            };
            probe.write(&mut payload);
            assert_eq!(Probe::read(&payload), Some(probe));
            // Truncated or foreign payloads carry none.
            assert_eq!(Probe::read(&payload[..payload.len() - 1]), None);
            assert_eq!(Probe::read(&[0u8; 10]), None);
        }
    }

    #[test]
    fn vp8_frames_start_with_a_descriptor_and_keyframes_with_the_start_code() {
        let key = vp8_payload(0);
        assert_eq!(key[0], 0x10);
        assert_eq!(key[1] & 1, 0);
        assert_eq!(&key[4..7], &[0x9d, 0x01, 0x2a]);
        let cont = vp8_payload(1);
        assert_eq!(cont[0], 0x00);
        let inter = vp8_payload(2);
        assert_eq!(inter[0], 0x10);
        assert_eq!(inter[1] & 1, 1);
        assert_eq!(
            vp8_payload(KEYFRAME_EVERY * VIDEO_PACKETS_PER_FRAME)[1] & 1,
            0
        );
    }

    #[test]
    fn echoes_count_once_and_only_inside_the_window() {
        let window = Window::default();
        window.set(10.0, 20.0);
        let mut k = KindStats::default();
        k.on_sent(&window, 9.0);
        k.on_sent(&window, 10.5);
        k.on_sent(&window, 10.52);
        let probe = |counter, sent_s: f64| Probe {
            kind: Kind::Audio,
            session: 0,
            counter,
            sent_ns: (sent_s * 1e9) as u64,
        };
        k.on_echo(&window, &probe(0, 9.0), 9.001);
        k.on_echo(&window, &probe(1, 10.5), 10.502);
        k.on_echo(&window, &probe(1, 10.5), 10.600);
        assert_eq!((k.sent, k.echoed), (2, 1));
        assert!((k.rtt_ms[0] - 2.0).abs() < 1e-6);
    }

    #[test]
    fn quantiles_and_loss() {
        assert_eq!(quantile(&[], 0.5), None);
        assert_eq!(quantile(&[3.0, 1.0, 2.0], 0.5), Some(2.0));
        assert_eq!(quantile(&[3.0, 1.0, 2.0], 0.99), Some(3.0));
        let s = Summary {
            sent: [100, 100],
            echoed: [100, 50],
            ..Summary::default()
        };
        assert_eq!(s.loss_pct(), Some(25.0));
        let t = table(&[s.to_json()]);
        assert!(t.contains("| loss, % | 25.00 |"), "{t}");
    }

    #[test]
    fn marginal_memory_is_what_the_second_half_added() {
        let mut s = Summary {
            up: 100,
            set_up: 100,
            rss_kib: [Some(30_000), Some(60_000), None],
            rss_half: Some((48_000, 50)),
            ..Summary::default()
        };
        // 12,000 KiB for the last 50, where the mean over all 100 is 300.
        assert_eq!(s.rss_marginal_kib(), Some(240.0));
        let t = table(&[s.to_json()]);
        assert!(
            t.contains("| RSS per session past the first half, KiB | 240 |"),
            "{t}"
        );
        assert!(t.contains("| RSS per session, KiB | 300 |"), "{t}");
        // Sessions set up but never connected still count: they were set up after the reading.
        s.up = 90;
        assert_eq!(s.rss_marginal_kib(), Some(240.0));
        s.set_up = 50;
        assert_eq!(
            s.rss_marginal_kib(),
            None,
            "no session set up after the reading"
        );
        s.rss_half = None;
        assert_eq!(s.rss_marginal_kib(), None);
    }

    #[test]
    fn the_half_way_reading_is_taken_once_and_never_after_the_last_batch() {
        let readings = |sessions: usize, batch: usize| -> Vec<usize> {
            (0..sessions)
                .step_by(batch)
                .map(|first| (first, (first + batch).min(sessions)))
                .filter(|&(first, last)| half_way(first, last, sessions))
                .map(|(_, last)| last)
                .collect()
        };
        assert_eq!(readings(100, 10), [50]);
        assert_eq!(readings(200, 10), [100]);
        assert_eq!(readings(400, 10), [200]);
        assert_eq!(readings(15, 10), [10]);
        assert_eq!(readings(105, 10), [60]);
        assert_eq!(readings(2, 1), [1]);
        // One batch, or one session: nothing comes after a reading, so none is taken.
        assert_eq!(readings(5, 10), Vec::<usize>::new());
        assert_eq!(readings(1, 1), Vec::<usize>::new());
    }
}
