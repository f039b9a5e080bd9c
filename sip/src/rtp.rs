//! RTP/RTCP endpoint, plain or SDES-SRTP (RFC 3711, [`RtpEndpoint::set_srtp`]): sockets from
//! a port range, packetisation with continuous sequence numbers and timestamps, symmetric RTP
//! (latching to where the peer really sends from), RTCP sender/receiver reports and RFC 4733
//! DTMF in both directions.
//!
//! Sending is split like the WebRTC side of the gateway: [`RtpEndpoint::send_audio`] is a
//! plain function that builds the packet and queues it on a bounded channel, and the
//! endpoint's own task writes the socket. A media worker thread can therefore feed many legs
//! without a runtime or a pump task per leg; when the socket falls behind, packets are dropped
//! and counted instead of blocking the worker.
//!
//! With SRTP on, the socket task protects each packet just before writing it and the receive
//! tasks unprotect before anything else looks at the packet: a packet that fails
//! authentication (plain RTP, another key, a replay) is dropped and counted
//! ([`RtpStats::srtp_refused`]) and never moves the latch.

use crate::dtmf::{digit_to_event, event_to_digit, TelephoneEvent};
use crate::srtp::{SrtpError, SrtpKeys, SrtpTransform};
use rtp_rs::{RtpPacketBuilder, RtpReader, Seq};
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::net::UdpSocket;
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio::task::JoinHandle;

/// Why an RTP endpoint operation failed.
#[derive(Debug, thiserror::Error)]
pub enum RtpError {
    /// No even/odd port pair in the range could be bound.
    #[error("no free RTP port pair in {0:?}")]
    NoPort(RangeInclusive<u16>),
    /// Socket error while binding or reading the local address.
    #[error("socket: {0}")]
    Io(#[from] std::io::Error),
    /// No remote address known yet: neither [`RtpEndpoint::configure`] nor latching set one.
    #[error("no remote address")]
    NoRemote,
    /// Not a DTMF digit, or no telephone-event negotiated.
    #[error("cannot send DTMF {0:?}")]
    Dtmf(char),
    /// The endpoint's socket task has stopped (the runtime is shutting down).
    #[error("rtp endpoint closed")]
    Closed,
}

/// RTP packets [`RtpEndpoint::send_audio`] queues for the socket task before it drops:
/// 1.28 s of 20 ms audio, far more than a healthy loopback or LAN socket ever holds back.
pub const SEND_QUEUE: usize = 64;

/// Something the endpoint received from the latched peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RtpEvent {
    /// An audio packet.
    Audio {
        /// RTP payload type (0 = PCMU, 8 = PCMA, or a dynamic type from the SDP).
        pt: u8,
        /// RTP sequence number (wraps at 2^16).
        seq: u16,
        /// RTP timestamp, in the codec's clock units (8 kHz for G.711; wraps at 2^32).
        timestamp: u32,
        /// The codec payload, without RTP header.
        payload: Vec<u8>,
    },
    /// A complete RFC 4733 event (reported once, at its end bit, §2.5.1.4), as its digit
    /// (`0`-`9`, `*`, `#`, `A`-`D`).
    Dtmf(char),
}

/// Send parameters settled by the SDP offer/answer (RFC 3264).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpParams {
    /// Payload type of outgoing audio.
    pub pt: u8,
    /// Payload type of RFC 4733 `telephone-event`; `None` when not negotiated (no RTP DTMF).
    pub dtmf_pt: Option<u8>,
    /// RTP clock rate of the audio codec in Hz (8000 for G.711).
    pub clock_rate: u32,
    /// Clock rate of the negotiated telephone-event in Hz: its events' `duration` counts in
    /// it (RFC 4733 §2.5.1.3); usually `clock_rate`, 8000 beside Opus for many phones.
    pub dtmf_rate: u32,
    /// Packet time in ms (`a=ptime`, usually 20): the DTMF packet interval.
    pub ptime: u32,
}

/// Packet counters of one endpoint, updated by its tasks; read them with `load(Relaxed)`.
#[derive(Debug, Default)]
pub struct RtpStats {
    /// RTP packets written to the socket (audio and DTMF).
    pub sent: AtomicU64,
    /// RTP packets received (any source accepted after latching).
    pub received: AtomicU64,
    /// RTCP packets sent.
    pub rtcp_sent: AtomicU64,
    /// RTCP packets received.
    pub rtcp_received: AtomicU64,
    /// Packets dropped because they came from an address other than the latched or signalled
    /// one, or from where the peer sent before the last SDP change.
    pub foreign: AtomicU64,
    /// Packets missing from received RTP, from sequence-number gaps.
    pub lost: AtomicU64,
    /// Outgoing RTP packets dropped because the send queue ([`SEND_QUEUE`]) was full.
    pub dropped: AtomicU64,
    /// With SRTP on: RTP packets dropped because they failed SRTP authentication or the
    /// replay check (plain packets, another key, replays).
    pub srtp_refused: AtomicU64,
    /// With SRTP on: RTCP packets dropped because they failed SRTCP authentication, the
    /// replay check, or were too short to be SRTCP.
    pub srtcp_refused: AtomicU64,
    /// With SRTP on: RTP packets protected and sent.
    pub srtp_sent: AtomicU64,
}

struct SendState {
    seq: u16,
    ts: u32,
    octets: u64,
    first: bool,
    dtmf_until: Option<u32>,
    params: RtpParams,
}

#[derive(Default)]
struct RecvState {
    /// The source media is taken from and sent to; `None` while the latch is armed.
    latched: Option<SocketAddr>,
    /// The address of the latest remote SDP ([`RtpEndpoint::configure`]).
    signalled: Option<SocketAddr>,
    /// Where the peer's media (RTP and RTCP) came from before the SDP moved it: packets
    /// still in flight from there must not take the re-armed latches.
    stale: Vec<SocketAddr>,
    rtcp_latched: Option<SocketAddr>,
    ssrc: Option<u32>,
    highest: Option<u16>,
    cycles: u32,
    last_dtmf_ts: Option<u32>,
    last_sr: u32,
}

struct Shared {
    rtp: UdpSocket,
    rtcp: UdpSocket,
    ssrc: u32,
    remote: Mutex<Option<SocketAddr>>,
    send: Mutex<SendState>,
    recv: Mutex<RecvState>,
    sending: AtomicBool,
    stats: RtpStats,
    /// SRTP transform of what we send (RTP and RTCP), when SDES-SRTP is on.
    srtp_tx: Mutex<Option<SrtpTransform>>,
    /// SRTP transform of what we receive.
    srtp_rx: Mutex<Option<SrtpTransform>>,
}

/// A packet on its way from a sender to the socket task.
struct Outgoing {
    packet: Vec<u8>,
    to: SocketAddr,
}

/// An RTP/RTCP socket pair and its tasks; the tasks stop when it is dropped.
///
/// `Send + Sync`: share it as `Arc<RtpEndpoint>` (what [`crate::Call::rtp`] returns) between
/// the task that reads events and a worker thread that sends.
pub struct RtpEndpoint {
    shared: Arc<Shared>,
    out: mpsc::Sender<Outgoing>,
    events: tokio::sync::Mutex<mpsc::Receiver<RtpEvent>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for RtpEndpoint {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic elsewhere must not take media down with it: recover the data.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl RtpEndpoint {
    /// Binds an even RTP port and the next odd one for RTCP (RFC 3550 §11), from `ports`,
    /// and starts the endpoint's receive, send and RTCP tasks on the current runtime.
    ///
    /// Errors: [`RtpError::NoPort`] when no pair in the range is free.
    pub async fn bind(ip: IpAddr, ports: RangeInclusive<u16>) -> Result<Self, RtpError> {
        let start = *ports.start() + (*ports.start() % 2);
        let mut found = None;
        let mut p = start;
        // Start at a random even offset so concurrent endpoints rarely collide.
        let span = (*ports.end()).saturating_sub(start) / 2;
        let offset = if span > 0 {
            (rand::random::<u16>() % span) * 2
        } else {
            0
        };
        for i in 0..=span {
            p = start + (offset + i * 2) % ((span + 1) * 2);
            if !matches!(p.checked_add(1), Some(q) if q <= *ports.end()) {
                continue;
            }
            let Ok(a) = UdpSocket::bind(SocketAddr::new(ip, p)).await else {
                continue;
            };
            let Ok(b) = UdpSocket::bind(SocketAddr::new(ip, p + 1)).await else {
                continue;
            };
            found = Some((a, b));
            break;
        }
        let (rtp, rtcp) = found.ok_or_else(|| RtpError::NoPort(ports.clone()))?;
        tracing::debug!(port = p, "rtp endpoint bound");
        let shared = Arc::new(Shared {
            rtp,
            rtcp,
            ssrc: rand::random(),
            remote: Mutex::new(None),
            send: Mutex::new(SendState {
                seq: rand::random(),
                ts: rand::random(),
                octets: 0,
                first: true,
                dtmf_until: None,
                params: RtpParams {
                    pt: 0,
                    dtmf_pt: None,
                    clock_rate: 8000,
                    dtmf_rate: 8000,
                    ptime: 20,
                },
            }),
            recv: Mutex::new(RecvState::default()),
            sending: AtomicBool::new(true),
            stats: RtpStats::default(),
            srtp_tx: Mutex::new(None),
            srtp_rx: Mutex::new(None),
        });
        let (tx, rx) = mpsc::channel(512);
        let (out, queued) = mpsc::channel(SEND_QUEUE);
        let tasks = vec![
            tokio::spawn(recv_rtp(shared.clone(), tx)),
            tokio::spawn(send_rtp(shared.clone(), queued)),
            tokio::spawn(recv_rtcp(shared.clone())),
            tokio::spawn(send_rtcp(shared.clone())),
        ];
        Ok(Self {
            shared,
            out,
            events: tokio::sync::Mutex::new(rx),
            tasks,
        })
    }

    /// Local RTP address (the RTCP port is the next one up).
    ///
    /// Errors: [`RtpError::Io`] if the socket cannot report it.
    pub fn local_addr(&self) -> Result<SocketAddr, RtpError> {
        Ok(self.shared.rtp.local_addr()?)
    }

    /// Applies a remote SDP (RFC 3264): where to send (its `c=`/`m=` address) and with which
    /// payload types. Call it for every remote description (answer, re-offer, UPDATE, a 2xx
    /// after an early answer): the signalled address replaces the current one at once.
    ///
    /// Symmetric RTP (RFC 4961) is kept only as a NAT fallback and is re-armed here: a packet
    /// from the signalled address is always accepted and pins sending to it; until one arrives,
    /// the first other source is latched (a peer behind NAT whose SDP names a private
    /// address). When the address changed, packets from the previous one are dropped as
    /// stale; when it did not (hold, unhold), a NATed source stays acceptable.
    pub fn configure(&self, remote: SocketAddr, params: RtpParams) {
        {
            let mut r = lock(&self.shared.recv);
            if r.signalled != Some(remote) {
                let previous: Vec<SocketAddr> = r
                    .signalled
                    .into_iter()
                    .chain(r.latched)
                    .chain(r.rtcp_latched)
                    .filter(|a| *a != remote)
                    .collect();
                r.stale = previous;
                if r.latched.is_some() || r.signalled.is_some() {
                    tracing::debug!(%remote, "remote media moved by SDP; latch re-armed");
                }
                r.rtcp_latched = None;
            }
            r.signalled = Some(remote);
            r.latched = None;
        }
        *lock(&self.shared.remote) = Some(remote);
        lock(&self.shared.send).params = params;
    }

    /// The send parameters settled by the offer/answer (payload type, clock rate...): what a
    /// player must encode for, e.g. PCMA when the peer chose payload type 8.
    pub fn params(&self) -> RtpParams {
        lock(&self.shared.send).params
    }

    /// Turns SDES-SRTP on with the keys an offer/answer settled (RFC 4568), or off with
    /// `None`. Call it before the first packet goes out and again on every new remote
    /// description: a direction whose suite and key did not change keeps its rollover
    /// counter and replay window; a new key starts a fresh context.
    ///
    /// Errors: the transform could not be created (never for the suites of
    /// [`crate::srtp::CryptoSuite`]).
    pub fn set_srtp(&self, keys: Option<&SrtpKeys>) -> Result<(), SrtpError> {
        let Some(keys) = keys else {
            *lock(&self.shared.srtp_tx) = None;
            *lock(&self.shared.srtp_rx) = None;
            return Ok(());
        };
        for (slot, key) in [
            (&self.shared.srtp_tx, &keys.local),
            (&self.shared.srtp_rx, &keys.remote),
        ] {
            let mut slot = lock(slot);
            if !slot.as_ref().is_some_and(|t| t.uses(keys.suite, key)) {
                *slot = Some(SrtpTransform::new(keys.suite, key)?);
            }
        }
        Ok(())
    }

    /// The SRTP suite in use, `None` for plain RTP (see [`set_srtp`](Self::set_srtp)).
    pub fn srtp_suite(&self) -> Option<crate::srtp::CryptoSuite> {
        lock(&self.shared.srtp_tx)
            .as_ref()
            .map(SrtpTransform::suite)
    }

    /// Points the endpoint at what an offer/answer settled ([`crate::sdp::negotiate`]): sends
    /// to `negotiated.remote` with its payload types, clock rate (Hz) and packet time (ms)
    /// ([`configure`](Self::configure)), and sends only when its direction allows it
    /// (`sendonly`/`sendrecv`; off on hold).
    pub fn apply(&self, negotiated: &crate::sdp::Negotiated) {
        self.configure(
            negotiated.remote,
            RtpParams {
                pt: negotiated.pt,
                dtmf_pt: negotiated.dtmf_pt,
                clock_rate: negotiated.codec.clock_rate(),
                dtmf_rate: negotiated.dtmf_rate,
                ptime: negotiated.ptime,
            },
        );
        self.set_sending(negotiated.direction.flags().0);
    }

    /// Enables or mutes sending (hold): while off, [`send_audio`](Self::send_audio) queues
    /// nothing but the timestamp keeps advancing.
    pub fn set_sending(&self, on: bool) {
        self.shared.sending.store(on, Ordering::Relaxed);
    }

    /// The endpoint's packet counters.
    pub fn stats(&self) -> &RtpStats {
        &self.shared.stats
    }

    /// Where packets currently go: the latched source, or the configured address.
    pub fn remote(&self) -> Option<SocketAddr> {
        *lock(&self.shared.remote)
    }

    /// Queues one audio frame for the socket task and returns at once: it never waits, so a
    /// media worker thread (no runtime) can call it. `samples` is the frame's length in RTP
    /// clock units (160 for 20 ms of PCMU at 8 kHz).
    ///
    /// The timestamp advances even while muted ([`set_sending`](Self::set_sending)), during a
    /// DTMF event or when the packet is dropped, so the far end sees continuous media time.
    /// When [`SEND_QUEUE`] packets are already waiting, the packet is dropped and counted in
    /// [`RtpStats::dropped`]; it does not use up a sequence number, so the far end sees a
    /// timestamp jump (as after silence suppression), not a loss.
    ///
    /// Errors: [`RtpError::NoRemote`] before [`configure`](Self::configure) or latching;
    /// [`RtpError::Closed`] once the socket task has stopped. Socket errors are logged by the
    /// task, not returned.
    pub fn send_audio(&self, payload: &[u8], samples: u32) -> Result<(), RtpError> {
        let remote = self.remote().ok_or(RtpError::NoRemote)?;
        // The lock is held across the enqueue so that packets from concurrent callers enter
        // the queue in sequence-number order.
        let mut s = lock(&self.shared.send);
        let ts = s.ts;
        s.ts = s.ts.wrapping_add(samples);
        if let Some(until) = s.dtmf_until {
            if (until.wrapping_sub(ts) as i32) > 0 {
                return Ok(());
            }
            s.dtmf_until = None;
        }
        if !self.shared.sending.load(Ordering::Relaxed) {
            return Ok(());
        }
        let packet = build(s.params.pt, self.shared.ssrc, s.seq, ts, s.first, payload);
        if self.enqueue(packet, remote)? {
            s.seq = s.seq.wrapping_add(1);
            s.octets += payload.len() as u64;
            s.first = false;
        }
        Ok(())
    }

    /// Hands a packet to the socket task: `Ok(false)` when the queue was full and the packet
    /// was dropped (and counted).
    fn enqueue(&self, packet: Vec<u8>, to: SocketAddr) -> Result<bool, RtpError> {
        match self.out.try_send(Outgoing { packet, to }) {
            Ok(()) => Ok(true),
            Err(TrySendError::Full(_)) => {
                self.shared.stats.dropped.fetch_add(1, Ordering::Relaxed);
                Ok(false)
            }
            Err(TrySendError::Closed(_)) => Err(RtpError::Closed),
        }
    }

    /// Sends an RFC 4733 event lasting `duration_ms`, one packet per ptime, and the final
    /// packet three times (§2.5.1.4) so a single loss does not lose the digit. Audio sent
    /// meanwhile is suppressed (its timestamps still advance). Returns after the last packet,
    /// about `duration_ms` later; the packets go through the same queue as audio.
    ///
    /// Errors: [`RtpError::Dtmf`] for a character that is not a DTMF digit or when no
    /// telephone-event payload type was negotiated; [`RtpError::NoRemote`];
    /// [`RtpError::Closed`].
    pub async fn send_dtmf(&self, digit: char, duration_ms: u32) -> Result<(), RtpError> {
        let event = digit_to_event(digit).ok_or(RtpError::Dtmf(digit))?;
        let remote = self.remote().ok_or(RtpError::NoRemote)?;
        let (pt, start_ts, audio_total, rate, ptime) = {
            let mut s = lock(&self.shared.send);
            let pt = s.params.dtmf_pt.ok_or(RtpError::Dtmf(digit))?;
            let start = s.ts;
            // The event's timestamp is the audio stream's (RFC 4733 §2.3.1), its duration
            // counts in the telephone-event clock.
            let audio_total = s.params.clock_rate / 1000 * duration_ms;
            s.dtmf_until = Some(start.wrapping_add(audio_total));
            (pt, start, audio_total, s.params.dtmf_rate, s.params.ptime)
        };
        let step = rate / 1000 * ptime;
        let total = rate / 1000 * duration_ms;
        let mut elapsed = 0u32;
        let mut first = true;
        let mut tick = tokio::time::interval(Duration::from_millis(ptime as u64));
        loop {
            tick.tick().await;
            elapsed = (elapsed + step).min(total);
            let end = elapsed >= total;
            let ev = TelephoneEvent {
                event,
                end,
                volume: 10,
                duration: elapsed.min(u16::MAX as u32) as u16,
            };
            let repeats = if end { 3 } else { 1 };
            for _ in 0..repeats {
                let mut s = lock(&self.shared.send);
                let packet = build(pt, self.shared.ssrc, s.seq, start_ts, first, &ev.to_bytes());
                if self.enqueue(packet, remote)? {
                    s.seq = s.seq.wrapping_add(1);
                    first = false;
                }
            }
            if end {
                break;
            }
        }
        let mut s = lock(&self.shared.send);
        let after = start_ts.wrapping_add(audio_total);
        if (after.wrapping_sub(s.ts) as i32) > 0 {
            s.ts = after;
        }
        s.dtmf_until = None;
        Ok(())
    }

    /// Next received event; `None` once the endpoint is closed. Events are dropped (not
    /// queued without bound) when the caller falls more than 512 behind.
    pub async fn recv(&self) -> Option<RtpEvent> {
        self.events.lock().await.recv().await
    }
}

fn build(pt: u8, ssrc: u32, seq: u16, ts: u32, marked: bool, payload: &[u8]) -> Vec<u8> {
    RtpPacketBuilder::new()
        .payload_type(pt)
        .ssrc(ssrc)
        .sequence(Seq::from(seq))
        .timestamp(ts)
        .marked(marked)
        .payload(payload)
        .build()
        .unwrap_or_default()
}

/// Unprotects a received SRTP or SRTCP packet into `plain` (reused between packets); `false`
/// when it fails (counted). Without SRTP the packet is copied as is.
fn unprotect(shared: &Shared, packet: &[u8], rtcp: bool, plain: &mut Vec<u8>) -> bool {
    plain.clear();
    let mut rx = lock(&shared.srtp_rx);
    let Some(t) = rx.as_mut() else {
        plain.extend_from_slice(packet);
        return true;
    };
    let result = if rtcp {
        t.unprotect_rtcp(packet)
            .map(|p| plain.extend_from_slice(p.as_ref()))
    } else {
        t.unprotect_rtp(packet)
            .map(|p| plain.extend_from_slice(p.as_ref()))
    };
    match result {
        Ok(()) => true,
        Err(e) => {
            let counter = match rtcp {
                true => &shared.stats.srtcp_refused,
                false => &shared.stats.srtp_refused,
            };
            let n = counter.fetch_add(1, Ordering::Relaxed);
            if n.is_power_of_two() || n == 0 {
                tracing::debug!(error = %e, refused = n + 1, rtcp, "srtp packet refused");
            }
            false
        }
    }
}

async fn recv_rtp(shared: Arc<Shared>, tx: mpsc::Sender<RtpEvent>) {
    let mut wire = vec![0u8; 2048];
    let mut buf = Vec::with_capacity(2048);
    loop {
        let Ok((n, src)) = shared.rtp.recv_from(&mut wire).await else {
            continue;
        };
        if !unprotect(&shared, &wire[..n], false, &mut buf) {
            continue;
        }
        let n = buf.len();
        let Ok(pkt) = RtpReader::new(&buf[..n]) else {
            tracing::debug!(%src, "dropping non-RTP datagram");
            continue;
        };
        let event = {
            let mut r = lock(&shared.recv);
            if !accept_source(&mut r, src) {
                shared.stats.foreign.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            if r.latched != Some(src) {
                r.latched = Some(src);
                *lock(&shared.remote) = Some(src);
                tracing::debug!(%src, "rtp latched");
            }
            let seq: u16 = pkt.sequence_number().into();
            if r.ssrc != Some(pkt.ssrc()) {
                r.ssrc = Some(pkt.ssrc());
                r.highest = None;
            }
            match r.highest {
                None => r.highest = Some(seq),
                Some(h) => {
                    let delta = seq.wrapping_sub(h);
                    if delta != 0 && delta < 0x8000 {
                        if delta > 1 {
                            shared
                                .stats
                                .lost
                                .fetch_add((delta - 1) as u64, Ordering::Relaxed);
                        }
                        if seq < h {
                            r.cycles += 1;
                        }
                        r.highest = Some(seq);
                    }
                }
            }
            shared.stats.received.fetch_add(1, Ordering::Relaxed);
            let dtmf_pt = lock(&shared.send).params.dtmf_pt;
            if Some(pkt.payload_type()) == dtmf_pt {
                match TelephoneEvent::parse(pkt.payload()) {
                    Some(ev) if ev.end && r.last_dtmf_ts != Some(pkt.timestamp()) => {
                        r.last_dtmf_ts = Some(pkt.timestamp());
                        event_to_digit(ev.event).map(RtpEvent::Dtmf)
                    }
                    _ => None,
                }
            } else {
                Some(RtpEvent::Audio {
                    pt: pkt.payload_type(),
                    seq,
                    timestamp: pkt.timestamp(),
                    payload: pkt.payload().to_vec(),
                })
            }
        };
        if let Some(e) = event {
            // A slow consumer loses media rather than stalling the socket.
            let _ = tx.try_send(e);
        }
    }
}

/// Whether a packet from `src` is media of the current remote description (see
/// [`RtpEndpoint::configure`]). The signalled address always wins; stale sources never do;
/// otherwise the armed latch takes the first source (NAT fallback) and keeps it.
fn accept_source(r: &mut RecvState, src: SocketAddr) -> bool {
    if r.signalled == Some(src) || r.latched == Some(src) {
        return true;
    }
    if r.stale.contains(&src) {
        return false;
    }
    // Armed: nothing latched yet, or only a fallback source that is not the signalled one
    // (a latch on the signalled address is final until the next SDP).
    r.latched.is_none()
}

/// The socket side of sending: writes what `send_audio` and `send_dtmf` queued, in order.
async fn send_rtp(shared: Arc<Shared>, mut queued: mpsc::Receiver<Outgoing>) {
    let mut wire = Vec::with_capacity(2048);
    while let Some(Outgoing { packet, to }) = queued.recv().await {
        let packet = match protect(&shared, &packet, false, &mut wire) {
            Some(true) => &wire,
            Some(false) => &packet,
            None => continue,
        };
        match shared.rtp.send_to(packet, to).await {
            Ok(_) => {
                shared.stats.sent.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => tracing::debug!(%to, error = %e, "rtp send failed"),
        }
    }
}

/// Protects an outgoing packet into `wire` (reused between packets): `Some(true)` when it
/// did, `Some(false)` without SRTP (send the packet as is), `None` when it failed (logged).
fn protect(shared: &Shared, packet: &[u8], rtcp: bool, wire: &mut Vec<u8>) -> Option<bool> {
    let mut tx = lock(&shared.srtp_tx);
    let Some(t) = tx.as_mut() else {
        return Some(false);
    };
    wire.clear();
    let result = if rtcp {
        t.protect_rtcp(packet)
            .map(|p| wire.extend_from_slice(p.as_ref()))
    } else {
        t.protect_rtp(packet)
            .map(|p| wire.extend_from_slice(p.as_ref()))
    };
    match result {
        Ok(()) => {
            if !rtcp {
                shared.stats.srtp_sent.fetch_add(1, Ordering::Relaxed);
            }
            Some(true)
        }
        Err(e) => {
            tracing::debug!(error = %e, rtcp, "srtp protect failed");
            None
        }
    }
}

async fn recv_rtcp(shared: Arc<Shared>) {
    let mut wire = vec![0u8; 1500];
    let mut buf = Vec::with_capacity(1500);
    loop {
        let Ok((n, src)) = shared.rtcp.recv_from(&mut wire).await else {
            continue;
        };
        if n < 8 || !unprotect(&shared, &wire[..n], true, &mut buf) {
            continue;
        }
        let n = buf.len();
        if n < 8 || buf[0] >> 6 != 2 {
            continue;
        }
        shared.stats.rtcp_received.fetch_add(1, Ordering::Relaxed);
        let mut r = lock(&shared.recv);
        // RTCP from next to a stale RTP port belongs to media the SDP already moved away.
        let stale = r
            .stale
            .iter()
            .any(|a| *a == src || (a.ip() == src.ip() && a.port().wrapping_add(1) == src.port()));
        if !stale {
            r.rtcp_latched.get_or_insert(src);
        }
        if buf[1] == 200 && n >= 20 {
            // Middle 32 bits of the SR's NTP timestamp, echoed as LSR in our reports.
            r.last_sr = u32::from_be_bytes([buf[10], buf[11], buf[12], buf[13]]);
        }
    }
}

fn ntp_now() -> (u32, u32) {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = d.as_secs() + 2_208_988_800;
    let frac = ((d.subsec_nanos() as u64) << 32) / 1_000_000_000;
    (secs as u32, frac as u32)
}

/// Builds an SR (if we sent anything) or RR with one report block about the latched source.
fn rtcp_report(shared: &Shared) -> Vec<u8> {
    let (sent_packets, octets, ts) = {
        let s = lock(&shared.send);
        (shared.stats.sent.load(Ordering::Relaxed), s.octets, s.ts)
    };
    let r = lock(&shared.recv);
    let block = r.ssrc.map(|src| {
        let lost = shared.stats.lost.load(Ordering::Relaxed).min(0x7f_ffff) as u32;
        let ext = (r.cycles << 16) | r.highest.unwrap_or(0) as u32;
        let mut b = Vec::with_capacity(24);
        b.extend_from_slice(&src.to_be_bytes());
        b.extend_from_slice(&lost.to_be_bytes()); // fraction lost 0, cumulative in low 24 bits
        b.extend_from_slice(&ext.to_be_bytes());
        b.extend_from_slice(&0u32.to_be_bytes()); // jitter not estimated
        b.extend_from_slice(&r.last_sr.to_be_bytes());
        b.extend_from_slice(&0u32.to_be_bytes());
        b
    });
    let rc = block.is_some() as u8;
    let mut out = Vec::with_capacity(52);
    if sent_packets > 0 {
        let (sec, frac) = ntp_now();
        out.extend_from_slice(&[0x80 | rc, 200, 0, 0]);
        out.extend_from_slice(&shared.ssrc.to_be_bytes());
        out.extend_from_slice(&sec.to_be_bytes());
        out.extend_from_slice(&frac.to_be_bytes());
        out.extend_from_slice(&ts.to_be_bytes());
        out.extend_from_slice(&(sent_packets as u32).to_be_bytes());
        out.extend_from_slice(&(octets as u32).to_be_bytes());
    } else {
        out.extend_from_slice(&[0x80 | rc, 201, 0, 0]);
        out.extend_from_slice(&shared.ssrc.to_be_bytes());
    }
    if let Some(b) = block {
        out.extend_from_slice(&b);
    }
    let words = (out.len() / 4 - 1) as u16;
    out[2..4].copy_from_slice(&words.to_be_bytes());
    out
}

/// Where RTCP goes: the source RTCP came from since the last SDP change, else the port
/// above the RTP destination (RFC 3550 §11).
fn rtcp_dest(shared: &Shared) -> Option<SocketAddr> {
    let r = lock(&shared.recv);
    r.rtcp_latched
        .or_else(|| lock(&shared.remote).map(|a| SocketAddr::new(a.ip(), a.port().wrapping_add(1))))
}

async fn send_rtcp(shared: Arc<Shared>) {
    let mut wire = Vec::with_capacity(128);
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    tick.tick().await;
    loop {
        tick.tick().await;
        let Some(dest) = rtcp_dest(&shared) else {
            continue;
        };
        let pkt = rtcp_report(&shared);
        let pkt = match protect(&shared, &pkt, true, &mut wire) {
            Some(true) => &wire,
            Some(false) => &pkt,
            None => continue,
        };
        if shared.rtcp.send_to(pkt, dest).await.is_ok() {
            shared.stats.rtcp_sent.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> RtpParams {
        RtpParams {
            pt: 0,
            dtmf_pt: Some(101),
            clock_rate: 8000,
            dtmf_rate: 8000,
            ptime: 20,
        }
    }

    #[tokio::test]
    async fn two_endpoints_exchange_audio_latch_and_dtmf() {
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let a = RtpEndpoint::bind(lo, 30000..=30999).await.unwrap();
        let b = RtpEndpoint::bind(lo, 31000..=31999).await.unwrap();
        assert_eq!(a.local_addr().unwrap().port() % 2, 0);
        a.configure(b.local_addr().unwrap(), params());
        // b is told a wrong address; latching must fix it once a's first packet arrives.
        b.configure("127.0.0.1:9".parse().unwrap(), params());
        let mut seqs = vec![];
        for i in 0..5u8 {
            a.send_audio(&[i; 160], 160).unwrap();
            match b.recv().await.unwrap() {
                RtpEvent::Audio { seq, payload, .. } => {
                    assert_eq!(payload, vec![i; 160]);
                    seqs.push(seq);
                }
                e => panic!("unexpected {e:?}"),
            }
        }
        assert!(seqs.windows(2).all(|w| w[1] == w[0].wrapping_add(1)));
        assert_eq!(b.remote(), Some(a.local_addr().unwrap()));
        b.send_audio(&[9; 160], 160).unwrap();
        assert!(matches!(a.recv().await, Some(RtpEvent::Audio { .. })));
        a.send_dtmf('7', 100).await.unwrap();
        let got = tokio::time::timeout(Duration::from_secs(5), b.recv())
            .await
            .unwrap();
        assert_eq!(got, Some(RtpEvent::Dtmf('7')));
        // 4 interim packets + 3 end packets; the 3 end copies are reported once only
        assert_eq!(b.stats().received.load(Ordering::Relaxed), 5 + 4 + 3);
        let sr = rtcp_report(&a.shared);
        assert_eq!(sr[1], 200);
        assert_eq!(sr.len(), 28 + 24);
    }

    /// Two endpoints with crossed SDES keys exchange audio, DTMF and RTCP; on the wire the
    /// payload is not the plain one; a plain packet and one under another key are refused
    /// without stealing the latch.
    #[tokio::test]
    async fn srtp_endpoints_exchange_protected_media_and_refuse_plain_packets() {
        use crate::srtp::{CryptoSuite, MasterKey, SrtpKeys};
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let a = RtpEndpoint::bind(lo, 42000..=42999).await.unwrap();
        let b = RtpEndpoint::bind(lo, 43000..=43999).await.unwrap();
        let (ka, kb) = (MasterKey::generate(), MasterKey::generate());
        for suite in CryptoSuite::ALL {
            a.set_srtp(Some(&SrtpKeys {
                suite,
                local: ka.clone(),
                remote: kb.clone(),
            }))
            .unwrap();
            b.set_srtp(Some(&SrtpKeys {
                suite,
                local: kb.clone(),
                remote: ka.clone(),
            }))
            .unwrap();
            assert_eq!(a.srtp_suite(), Some(suite));
            a.configure(b.local_addr().unwrap(), params());
            b.configure(a.local_addr().unwrap(), params());
            for i in 0..3u8 {
                a.send_audio(&[i; 160], 160).unwrap();
                match tokio::time::timeout(Duration::from_secs(5), b.recv()).await {
                    Ok(Some(RtpEvent::Audio { payload, .. })) => assert_eq!(payload, vec![i; 160]),
                    other => panic!("expected audio, got {other:?}"),
                }
            }
            b.send_dtmf('5', 60).await.unwrap();
            let got = tokio::time::timeout(Duration::from_secs(5), a.recv())
                .await
                .unwrap();
            assert_eq!(got, Some(RtpEvent::Dtmf('5')));
        }
        assert!(a.stats().srtp_sent.load(Ordering::Relaxed) >= 6);

        // What goes on the wire: a sniffer in b's place sees ciphertext with a tag.
        let sniffer = peer().await;
        a.configure(addr(&sniffer), params());
        a.send_audio(&[0x55; 160], 160).unwrap();
        let mut wire = [0u8; 2048];
        let (n, _) = tokio::time::timeout(Duration::from_secs(5), sniffer.recv_from(&mut wire))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(n, 12 + 160 + 4, "RTP header, payload, 32-bit tag");
        assert_ne!(&wire[12..172], &[0x55; 160][..], "the payload is encrypted");

        // Plain RTP from a stranger, and SRTP under another key: refused, latch unmoved.
        let before = b.stats().srtp_refused.load(Ordering::Relaxed);
        let stranger = peer().await;
        send_from(&stranger, &b, 9, 1).await;
        assert!(!hears(&b).await);
        let other = RtpEndpoint::bind(lo, 44000..=44999).await.unwrap();
        other
            .set_srtp(Some(&SrtpKeys {
                suite: CryptoSuite::AesCm128HmacSha1_32,
                local: MasterKey::generate(),
                remote: MasterKey::generate(),
            }))
            .unwrap();
        other.configure(b.local_addr().unwrap(), params());
        other.send_audio(&[1; 160], 160).unwrap();
        assert!(!hears(&b).await);
        assert_eq!(b.stats().srtp_refused.load(Ordering::Relaxed), before + 2);
        assert_eq!(b.remote(), Some(a.local_addr().unwrap()));
        // Turned off: plain RTP again.
        b.set_srtp(None).unwrap();
        b.configure(addr(&stranger), params());
        send_from(&stranger, &b, 9, 2).await;
        assert!(hears(&b).await);
    }

    /// Reads the next audio packet's sequence number and timestamp.
    async fn next_audio(ep: &RtpEndpoint) -> (u16, u32) {
        match tokio::time::timeout(Duration::from_secs(5), ep.recv()).await {
            Ok(Some(RtpEvent::Audio { seq, timestamp, .. })) => (seq, timestamp),
            other => panic!("expected audio, got {other:?}"),
        }
    }

    // A current-thread runtime that is blocked in `join` cannot run the socket task, so the
    // plain thread below fills the queue deterministically.
    #[tokio::test]
    async fn send_audio_from_a_plain_thread_queues_and_drops_when_full() {
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let a = Arc::new(RtpEndpoint::bind(lo, 32000..=32999).await.unwrap());
        let b = RtpEndpoint::bind(lo, 33000..=33999).await.unwrap();
        a.configure(b.local_addr().unwrap(), params());
        const EXTRA: usize = 10;
        let sender = a.clone();
        std::thread::spawn(move || {
            for _ in 0..SEND_QUEUE + EXTRA {
                sender.send_audio(&[0xff; 160], 160).unwrap();
            }
        })
        .join()
        .unwrap();
        assert_eq!(a.stats().dropped.load(Ordering::Relaxed), EXTRA as u64);

        let (first_seq, first_ts) = next_audio(&b).await;
        let mut last = (first_seq, first_ts);
        for _ in 1..SEND_QUEUE {
            let (seq, ts) = next_audio(&b).await;
            assert_eq!(
                seq,
                last.0.wrapping_add(1),
                "queued packets keep their order"
            );
            assert_eq!(ts, last.1.wrapping_add(160));
            last = (seq, ts);
        }
        assert_eq!(a.stats().sent.load(Ordering::Relaxed), SEND_QUEUE as u64);

        // Once the task has drained the queue, sending works again. The dropped packets used
        // no sequence numbers but their media time passed.
        let sender = a.clone();
        std::thread::spawn(move || sender.send_audio(&[0xff; 160], 160).unwrap())
            .join()
            .unwrap();
        let (seq, ts) = next_audio(&b).await;
        assert_eq!(seq, last.0.wrapping_add(1));
        assert_eq!(ts, last.1.wrapping_add(160 * (EXTRA as u32 + 1)));
        assert_eq!(a.stats().dropped.load(Ordering::Relaxed), EXTRA as u64);
    }

    /// A plain UDP socket standing in for one media port of the far end.
    async fn peer() -> UdpSocket {
        UdpSocket::bind("127.0.0.1:0").await.unwrap()
    }

    /// Sends one PCMU packet with the given SSRC and sequence number from `from` to `ep`.
    async fn send_from(from: &UdpSocket, ep: &RtpEndpoint, ssrc: u32, seq: u16) {
        let pkt = build(0, ssrc, seq, seq as u32 * 160, false, &[0x55; 160]);
        from.send_to(&pkt, ep.local_addr().unwrap()).await.unwrap();
    }

    /// Whether `ep` reports an audio packet within 300 ms.
    async fn hears(ep: &RtpEndpoint) -> bool {
        matches!(
            tokio::time::timeout(Duration::from_millis(300), ep.recv()).await,
            Ok(Some(RtpEvent::Audio { .. }))
        )
    }

    /// Whether `sock` receives a datagram within 300 ms.
    async fn gets(sock: &UdpSocket) -> bool {
        let mut buf = [0u8; 2048];
        tokio::time::timeout(Duration::from_millis(300), sock.recv_from(&mut buf))
            .await
            .is_ok()
    }

    fn addr(s: &UdpSocket) -> SocketAddr {
        s.local_addr().unwrap()
    }

    #[tokio::test]
    async fn new_remote_sdp_moves_media_to_the_new_port_after_latching() {
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let ep = RtpEndpoint::bind(lo, 34000..=34999).await.unwrap();
        let (a, b) = (peer().await, peer().await);
        ep.configure(addr(&a), params());
        send_from(&a, &ep, 1, 1).await;
        assert!(hears(&ep).await);
        // The far end's re-INVITE moves its media from A to B.
        ep.configure(addr(&b), params());
        assert_eq!(ep.remote(), Some(addr(&b)), "sends follow the SDP at once");
        ep.send_audio(&[0; 160], 160).unwrap();
        assert!(gets(&b).await, "our RTP reaches the new port");
        assert!(!gets(&a).await, "nothing goes to the old port");
        send_from(&b, &ep, 2, 1).await;
        assert!(hears(&ep).await, "the new port's packets are accepted");
        // A packet still in flight from the old port must not steal the latch back.
        send_from(&a, &ep, 1, 2).await;
        assert!(!hears(&ep).await);
        assert_eq!(ep.remote(), Some(addr(&b)));
    }

    #[tokio::test]
    async fn latching_is_a_nat_fallback_rearmed_by_each_sdp_change() {
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let ep = RtpEndpoint::bind(lo, 35000..=35999).await.unwrap();
        // The SDP names an address nobody sends from (a private address behind NAT).
        let (nat1, nat2) = (peer().await, peer().await);
        ep.configure("127.0.0.1:9".parse().unwrap(), params());
        send_from(&nat1, &ep, 1, 1).await;
        assert!(hears(&ep).await);
        assert_eq!(ep.remote(), Some(addr(&nat1)), "latched to the real source");
        // A new SDP with a new address: the latch is reset and armed again.
        ep.configure("127.0.0.1:11".parse().unwrap(), params());
        assert_eq!(ep.remote(), Some("127.0.0.1:11".parse().unwrap()));
        send_from(&nat2, &ep, 2, 1).await;
        assert!(
            hears(&ep).await,
            "the re-armed latch accepts the new source"
        );
        assert_eq!(ep.remote(), Some(addr(&nat2)));
    }

    #[tokio::test]
    async fn the_signalled_address_wins_over_a_fallback_latch() {
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let ep = RtpEndpoint::bind(lo, 36000..=36999).await.unwrap();
        let (other, signalled) = (peer().await, peer().await);
        ep.configure(addr(&signalled), params());
        // Something else speaks first (a relay, a late fork): the fallback takes it...
        send_from(&other, &ep, 1, 1).await;
        assert!(hears(&ep).await);
        // ...but once the address from the SDP is heard, media goes there.
        send_from(&signalled, &ep, 2, 1).await;
        assert!(hears(&ep).await);
        assert_eq!(ep.remote(), Some(addr(&signalled)));
    }

    #[tokio::test]
    async fn an_sdp_with_the_same_address_keeps_the_nat_latch_working() {
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let ep = RtpEndpoint::bind(lo, 37000..=37999).await.unwrap();
        let nat = peer().await;
        let private: SocketAddr = "127.0.0.1:9".parse().unwrap();
        ep.configure(private, params());
        send_from(&nat, &ep, 1, 1).await;
        assert!(hears(&ep).await);
        // Hold/unhold re-offers repeat the same address: the NATed source stays usable.
        ep.configure(private, params());
        send_from(&nat, &ep, 1, 2).await;
        assert!(hears(&ep).await);
        assert_eq!(ep.remote(), Some(addr(&nat)));
    }

    /// Waits until `ep` has received `n` RTCP packets.
    async fn rtcp_received(ep: &RtpEndpoint, n: u64) {
        for _ in 0..100 {
            if ep.stats().rtcp_received.load(Ordering::Relaxed) >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("RTCP not received");
    }

    #[tokio::test]
    async fn rtcp_follows_the_sdp_change_and_ignores_the_old_source() {
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let ep = RtpEndpoint::bind(lo, 38000..=38999).await.unwrap();
        let (a_rtp, a_rtcp, b_rtp) = (peer().await, peer().await, peer().await);
        let ep_rtcp = SocketAddr::new(lo, ep.local_addr().unwrap().port() + 1);
        // An empty receiver report (RFC 3550 §6.4.2).
        let rr = [0x80, 201, 0, 1, 0, 0, 0, 7];
        ep.configure(addr(&a_rtp), params());
        a_rtcp.send_to(&rr, ep_rtcp).await.unwrap();
        rtcp_received(&ep, 1).await;
        assert_eq!(rtcp_dest(&ep.shared), Some(addr(&a_rtcp)));
        ep.configure(addr(&b_rtp), params());
        let b_rtcp = SocketAddr::new(lo, addr(&b_rtp).port() + 1);
        assert_eq!(rtcp_dest(&ep.shared), Some(b_rtcp));
        a_rtcp.send_to(&rr, ep_rtcp).await.unwrap();
        rtcp_received(&ep, 2).await;
        assert_eq!(
            rtcp_dest(&ep.shared),
            Some(b_rtcp),
            "the old RTCP source is stale"
        );
    }
}
