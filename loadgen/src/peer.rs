//! A WebRTC audio peer on str0m (sans-I/O): one UDP socket on loopback, one host candidate,
//! one Opus audio m-line. [`AudioPeer::run`] drives it on a task: it feeds socket input and
//! timeouts to the `Rtc`, writes one frame per 20 ms tick from a [`FrameSource`] once ICE
//! and DTLS are up, and hands every received audio frame to a [`MediaSink`].
//!
//! What to send and what to do with received audio belong to the scenario, so the same peer
//! serves the SIP, echo and streaming benchmarks.

use crate::audio::FRAME_MS;
use anyhow::{anyhow, Context, Result};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use str0m::change::{SdpAnswer, SdpPendingOffer};
use str0m::media::{Direction, Frequency, MediaData, MediaKind, MediaTime, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc, RtcConfig};
use tokio::net::UdpSocket;
use tokio::sync::watch;
use tokio::time::MissedTickBehavior;

/// Produces the frames a peer sends, one per 20 ms tick.
pub trait FrameSource: Send {
    /// The payload of frame number `index` (0, 1, ...), sent at `at`: shared, so a
    /// pre-encoded loop is sent without a copy.
    fn frame(&mut self, index: u64, at: Instant) -> Arc<[u8]>;
}

/// Pre-encoded frames of a loop, handed out by index (a reference count each, no copy); when
/// it carries the pulse, records the send time of each loop start in `pulse`.
pub struct LoopSource {
    /// The loop, one payload per 20 ms frame.
    pub frames: Arc<[Arc<[u8]>]>,
    /// Where the loop's starts (its pulse) are recorded, if it has one.
    pub pulse: Option<Arc<crate::clock::PulseClock>>,
}

impl FrameSource for LoopSource {
    fn frame(&mut self, index: u64, at: Instant) -> Arc<[u8]> {
        let i = (index % self.frames.len() as u64) as usize;
        if i == 0 {
            if let Some(p) = &self.pulse {
                p.sent(at);
            }
        }
        self.frames[i].clone()
    }
}

/// Receives what a peer hears.
pub trait MediaSink: Send {
    /// One audio frame: arrival of its packet, RTP sequence number and timestamp (48 kHz for
    /// Opus), payload.
    fn audio(&mut self, arrival: Instant, seq: u16, ts: u32, payload: &[u8]);
}

/// A borrowed sink: the caller keeps what it accumulated once the peer is done.
impl<S: MediaSink + ?Sized> MediaSink for &mut S {
    fn audio(&mut self, arrival: Instant, seq: u16, ts: u32, payload: &[u8]) {
        (**self).audio(arrival, seq, ts, payload);
    }
}

/// What a finished peer reports.
#[derive(Debug, Default, Clone)]
pub struct PeerReport {
    /// ICE and DTLS came up.
    pub connected: bool,
    /// Frames written.
    pub sent: u64,
    /// Ticks that fired more than one frame late (the load client itself fell behind).
    pub slips: u64,
    /// Why the peer stopped early, if it did.
    pub error: Option<String>,
}

/// A peer with its offer made, waiting for the answer.
pub struct AudioPeer {
    rtc: Rtc,
    socket: UdpSocket,
    local: SocketAddr,
    mid: Mid,
    pending: Option<SdpPendingOffer>,
}

impl AudioPeer {
    /// Binds a UDP socket on `ip` and makes an offer with one send-receive Opus audio
    /// m-line; returns the peer and the offer's SDP.
    ///
    /// Errors: binding the socket.
    pub async fn offer(ip: IpAddr) -> Result<(AudioPeer, String)> {
        let socket = UdpSocket::bind(SocketAddr::new(ip, 0)).await?;
        let local = socket.local_addr()?;
        let mut rtc = RtcConfig::new()
            .clear_codecs()
            .enable_opus(true, false)
            .build(Instant::now());
        let cand = Candidate::host(local, "udp").map_err(|e| anyhow!("candidate: {e}"))?;
        rtc.add_local_candidate(cand);
        let mut api = rtc.sdp_api();
        let mid = api.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
        let (offer, pending) = api.apply().ok_or_else(|| anyhow!("no offer"))?;
        let sdp = offer.to_sdp_string();
        Ok((
            AudioPeer {
                rtc,
                socket,
                local,
                mid,
                pending: Some(pending),
            },
            sdp,
        ))
    }

    /// Applies the answer's SDP (with its candidates).
    ///
    /// Errors: an SDP str0m cannot parse or accept.
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

    /// Drives the peer until `stop` turns true or the connection fails. Frames go out every
    /// 20 ms from `first_tick` on, once connected.
    pub async fn run(
        mut self,
        mut source: impl FrameSource,
        mut sink: impl MediaSink,
        first_tick: tokio::time::Instant,
        mut stop: watch::Receiver<bool>,
    ) -> PeerReport {
        let mut report = PeerReport::default();
        let mut buf = vec![0u8; 2000];
        let frame = Duration::from_millis(FRAME_MS as u64);
        let mut tick = tokio::time::interval_at(first_tick, frame);
        tick.set_missed_tick_behavior(MissedTickBehavior::Burst);
        let mut pt: Option<Pt> = None;
        let mut index = 0u64;
        loop {
            // Everything str0m wants to send or say, until it asks to be woken later.
            let deadline = loop {
                match self.rtc.poll_output() {
                    Ok(Output::Transmit(t)) => {
                        let _ = self.socket.send_to(&t.contents, t.destination).await;
                    }
                    Ok(Output::Timeout(t)) => break t,
                    Ok(Output::Event(e)) => match e {
                        Event::Connected => report.connected = true,
                        Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                            report.error = Some("ICE disconnected".into());
                            return report;
                        }
                        Event::MediaData(d) => deliver(&mut sink, &d),
                        _ => {}
                    },
                    Err(e) => {
                        report.error = Some(format!("rtc: {e}"));
                        return report;
                    }
                }
            };
            let wake = tokio::time::Instant::from_std(deadline);
            tokio::select! {
                r = self.socket.recv_from(&mut buf) => {
                    let Ok((n, source)) = r else { continue };
                    let now = Instant::now();
                    let Ok(rx) = Receive::new(Protocol::Udp, source, self.local, &buf[..n]) else {
                        continue;
                    };
                    if let Err(e) = self.rtc.handle_input(Input::Receive(now, rx)) {
                        report.error = Some(format!("input: {e}"));
                        return report;
                    }
                }
                _ = tokio::time::sleep_until(wake) => {
                    if let Err(e) = self.rtc.handle_input(Input::Timeout(Instant::now())) {
                        report.error = Some(format!("timeout: {e}"));
                        return report;
                    }
                }
                // A late tick still sends its frame (Burst), so the far end sees no gap the
                // client caused; ticks more than a frame late are counted as slips.
                due = tick.tick() => {
                    if !report.connected {
                        continue;
                    }
                    if due.elapsed() > frame {
                        report.slips += 1;
                    }
                    pt = pt.or_else(|| self.send_pt());
                    let Some(pt) = pt else { continue };
                    let now = Instant::now();
                    let data = source.frame(index, now);
                    let rtp_time = MediaTime::new(index * 960, Frequency::FORTY_EIGHT_KHZ);
                    if let Some(w) = self.rtc.writer(self.mid) {
                        if w.write(pt, now, rtp_time, data).is_ok() {
                            report.sent += 1;
                        }
                    }
                    index += 1;
                }
                r = stop.changed() => {
                    if r.is_err() || *stop.borrow() {
                        self.rtc.disconnect();
                        return report;
                    }
                }
            }
        }
    }
}

impl AudioPeer {
    /// The payload type negotiated for what we send (the answer's Opus), once known.
    fn send_pt(&mut self) -> Option<Pt> {
        let writer = self.rtc.writer(self.mid)?;
        let pt = writer.payload_params().next()?.pt();
        Some(pt)
    }
}

fn deliver(sink: &mut impl MediaSink, d: &MediaData) {
    let seq = **d.seq_range.start() as u16;
    sink.audio(d.network_time, seq, d.time.numer() as u32, &d.data);
}
