//! The SIP scenario (issue 10's benchmark): N browser⇄SIP calls through `janus.plugin.sip`,
//! transcoded Opus⇄PCMU by the gateway.
//!
//! Per call: a `bifrons-sip` user agent on loopback that answers with PCMU only (so the
//! gateway must transcode), and a Janus session whose handle registers as a guest and calls
//! `sip:bench-N@127.0.0.1:PORT` with an Opus offer from an [`AudioPeer`]. Once `accepted`,
//! each end sends a 20 ms frame per tick (pre-encoded Opus from the browser side, PCMU from
//! the SIP side), both carrying a pulse once a second, and each end's [`LegReceiver`]
//! accounts what the other sent.

use crate::audio::{opus_loop, ulaw_loop};
use crate::clock::{PulseClock, Window};
use crate::janus::{Handle, Janus};
use crate::metrics::LegStats;
use crate::peer::{AudioPeer, FrameSource, LoopSource, PeerReport};
use crate::receiver::{LegReceiver, Opus, Ulaw};
use anyhow::{anyhow, bail, Context, Result};
use bifrons_sip::{Codec, Ua, UaConfig, UaEvent};
use serde_json::json;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What the scenario shares between calls: the loops, made once.
pub struct Media {
    opus: Arc<[Arc<[u8]>]>,
    opus_delay: f64,
    ulaw: Arc<[Arc<[u8]>]>,
}

impl Media {
    /// Encodes both loops. Errors: the Opus library.
    pub fn new() -> Result<Media> {
        let (opus, opus_delay) = opus_loop()?;
        let shared = |frames: Vec<Vec<u8>>| frames.into_iter().map(Arc::from).collect();
        Ok(Media {
            opus: shared(opus),
            opus_delay,
            ulaw: shared(ulaw_loop()),
        })
    }
}

/// The SIP end's report.
#[derive(Debug, Clone)]
pub struct SipEnd {
    /// Browser→SIP leg, as the SIP end received it.
    pub rx: LegStats,
    /// Frames sent.
    pub sent: u64,
    /// Ticks more than a frame late.
    pub slips: u64,
}

/// The browser end's report.
#[derive(Debug, Clone)]
pub struct BrowserEnd {
    /// SIP→browser leg, as the browser end received it.
    pub rx: LegStats,
    /// The peer's own report.
    pub peer: PeerReport,
}

/// A call up and running.
pub struct LiveCall {
    janus: Arc<Janus>,
    handle: Handle,
    keepalive: JoinHandle<()>,
    browser: JoinHandle<BrowserEnd>,
    sip: JoinHandle<Result<SipEnd>>,
}

/// Both ends of a finished call.
pub struct CallResult {
    /// Browser end.
    pub browser: BrowserEnd,
    /// SIP end.
    pub sip: SipEnd,
}

/// Settings of one call.
pub struct CallSpec {
    /// Call number (the SIP user is `bench-N`).
    pub n: usize,
    /// Janus WebSocket URL.
    pub janus_url: String,
    /// Loopback address for every socket.
    pub ip: IpAddr,
    /// Offset of this call's 20 ms ticks, so calls do not all send at once.
    pub phase: Duration,
}

/// Sets up one call: SIP end listening, Janus session, guest registration, call, answer.
/// Returns once `accepted` arrived and media is flowing.
///
/// Errors: any step failing or timing out (the plugin's `hangup` instead of `accepted`
/// included).
pub async fn start_call(
    spec: &CallSpec,
    media: &Media,
    window: Arc<Window>,
    stop: watch::Receiver<bool>,
) -> Result<LiveCall> {
    let browser_pulse = Arc::new(PulseClock::default());
    let sip_pulse = Arc::new(PulseClock::default());
    let (ua, mut ua_events) = Ua::start(UaConfig {
        bind: std::net::SocketAddr::new(spec.ip, 0),
        rtp_ip: spec.ip,
        rtp_ports: 42000..=62999,
        codecs: vec![Codec::Pcmu],
        user_agent: "bifrons-loadgen".into(),
        ..UaConfig::default()
    })
    .await
    .context("starting the SIP end")?;
    let uri = format!("sip:bench-{}@{}", spec.n, ua.local_addr());
    let sip_first_tick = tokio::time::Instant::now() + spec.phase + Duration::from_millis(10);
    let sip = {
        let (frames, pulse_out, pulse_in, window, mut stop) = (
            media.ulaw.clone(),
            sip_pulse.clone(),
            browser_pulse.clone(),
            window.clone(),
            stop.clone(),
        );
        let calibration = media.opus_delay;
        tokio::spawn(async move {
            let _ua = ua;
            let mut call = loop {
                match ua_events.next().await {
                    Some(UaEvent::IncomingCall(c)) => break c,
                    Some(_) => continue,
                    None => bail!("SIP end stopped before a call came"),
                }
            };
            call.answer().await.context("answering")?;
            let rtp = call
                .rtp()
                .cloned()
                .ok_or_else(|| anyhow!("no RTP endpoint"))?;
            let mut events = call.take_events();
            let mut rx = LegReceiver::new(8000, Ulaw, pulse_in, window, calibration);
            let mut source = LoopSource {
                frames,
                pulse: Some(pulse_out),
            };
            let frame = Duration::from_millis(20);
            let mut tick = tokio::time::interval_at(sip_first_tick, frame);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let (mut sent, mut slips, mut index) = (0u64, 0u64, 0u64);
            let mut ended = false;
            loop {
                tokio::select! {
                    ev = rtp.recv() => match ev {
                        Some(bifrons_sip::rtp::RtpEvent::Audio { seq, timestamp, payload, .. }) => {
                            rx.packet(Instant::now(), seq, timestamp, &payload);
                        }
                        Some(_) => {}
                        None => break,
                    },
                    due = tick.tick() => {
                        if due.elapsed() > frame {
                            slips += 1;
                        }
                        let payload = source.frame(index, Instant::now());
                        if rtp.send_audio(&payload, 160).is_ok() {
                            sent += 1;
                        }
                        index += 1;
                    }
                    ev = events.next() => {
                        if matches!(ev, None | Some(bifrons_sip::CallEvent::Ended(_))) {
                            ended = true;
                            break;
                        }
                    }
                    r = stop.changed() => if r.is_err() || *stop.borrow() { break },
                }
            }
            let report = SipEnd {
                rx: rx.stats,
                sent,
                slips,
            };
            if ended {
                return Ok(report);
            }
            // The browser side hangs up through the gateway; its BYE should follow.
            let bye = async {
                while let Some(ev) = events.next().await {
                    if matches!(ev, bifrons_sip::CallEvent::Ended(_)) {
                        return;
                    }
                }
            };
            if tokio::time::timeout(Duration::from_secs(5), bye)
                .await
                .is_err()
            {
                let _ = call.hangup().await;
            }
            Ok(report)
        })
    };

    let result = async {
        let janus = Janus::connect(&spec.janus_url).await?;
        let session = janus.create_session().await?;
        let mut handle = janus.attach(session, "janus.plugin.sip").await?;
        janus
            .message(
                &handle,
                json!({"request": "register", "type": "guest",
                       "username": format!("sip:bench-{}@{}", spec.n, spec.ip)}),
                None,
            )
            .await?;
        handle
            .wait_event(Duration::from_secs(30), |d| {
                d["result"]["event"] == "registered"
            })
            .await
            .context("waiting for registered")?;
        let (mut peer, offer) = AudioPeer::offer(spec.ip).await?;
        janus
            .message(
                &handle,
                json!({"request": "call", "uri": uri}),
                Some(json!({"type": "offer", "sdp": offer})),
            )
            .await?;
        let (data, jsep) = handle
            .wait_event(Duration::from_secs(60), |d| {
                matches!(d["result"]["event"].as_str(), Some("accepted" | "hangup"))
            })
            .await
            .context("waiting for accepted")?;
        if data["result"]["event"] != "accepted" {
            bail!("call refused: {data}");
        }
        let sdp = jsep
            .as_ref()
            .and_then(|j| j["sdp"].as_str())
            .ok_or_else(|| anyhow!("accepted without an SDP answer"))?;
        peer.accept_answer(sdp)?;
        Ok::<_, anyhow::Error>((janus, session, handle, peer))
    }
    .await;
    let (janus, session, handle, peer) = match result {
        Ok(v) => v,
        Err(e) => {
            sip.abort();
            return Err(e);
        }
    };
    let keepalive = janus.spawn_keepalive(session);
    let rx = LegReceiver::new(48_000, Opus::new()?, sip_pulse, window, 0.0);
    let source = LoopSource {
        frames: media.opus.clone(),
        pulse: Some(browser_pulse),
    };
    let first_tick = tokio::time::Instant::now() + spec.phase;
    let browser = tokio::spawn(async move {
        let mut rx = rx;
        let peer = peer.run(source, &mut rx, first_tick, stop).await;
        BrowserEnd { rx: rx.stats, peer }
    });
    Ok(LiveCall {
        janus,
        handle,
        keepalive,
        browser,
        sip,
    })
}

impl LiveCall {
    /// Hangs the call up (the media tasks were told to stop through the watch channel) and
    /// collects both ends' reports.
    ///
    /// Errors: a task that failed or panicked.
    pub async fn finish(mut self) -> Result<CallResult> {
        let _ = self
            .janus
            .message(&self.handle, json!({"request": "hangup"}), None)
            .await;
        let _ = self
            .handle
            .wait_event(Duration::from_secs(5), |d| d["result"]["event"] == "hangup")
            .await;
        let _ = self.janus.destroy(self.handle.session).await;
        self.keepalive.abort();
        let browser = self.browser.await.context("browser end")?;
        let sip = match tokio::time::timeout(Duration::from_secs(10), self.sip).await {
            Ok(r) => r.context("SIP end")??,
            Err(_) => bail!("SIP end did not stop"),
        };
        Ok(CallResult { browser, sip })
    }
}
