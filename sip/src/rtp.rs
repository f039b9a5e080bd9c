//! Plain RTP/RTCP endpoint: sockets from a port range, packetisation with continuous sequence
//! numbers and timestamps, symmetric RTP (latching to where the peer really sends from),
//! RTCP sender/receiver reports and RFC 4733 DTMF in both directions.

use crate::dtmf::{digit_to_event, event_to_digit, TelephoneEvent};
use rtp_rs::{RtpPacketBuilder, RtpReader, Seq};
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// RTP endpoint failures.
#[derive(Debug, thiserror::Error)]
pub enum RtpError {
    /// No even/odd port pair in the range could be bound.
    #[error("no free RTP port pair in {0:?}")]
    NoPort(RangeInclusive<u16>),
    /// Socket error.
    #[error("socket: {0}")]
    Io(#[from] std::io::Error),
    /// No remote address known yet.
    #[error("no remote address")]
    NoRemote,
    /// Not a DTMF digit, or no telephone-event negotiated.
    #[error("cannot send DTMF {0:?}")]
    Dtmf(char),
}

/// Something the endpoint received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RtpEvent {
    /// An audio packet.
    Audio {
        /// Payload type.
        pt: u8,
        /// Sequence number.
        seq: u16,
        /// RTP timestamp.
        timestamp: u32,
        /// Codec payload.
        payload: Vec<u8>,
    },
    /// A complete RFC 4733 event (reported once, at its end bit).
    Dtmf(char),
}

/// Send parameters settled by SDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpParams {
    /// Audio payload type.
    pub pt: u8,
    /// telephone-event payload type.
    pub dtmf_pt: Option<u8>,
    /// RTP clock rate of the audio codec.
    pub clock_rate: u32,
    /// Packet time in ms.
    pub ptime: u32,
}

/// Packet counters.
#[derive(Debug, Default)]
pub struct RtpStats {
    /// RTP packets sent.
    pub sent: AtomicU64,
    /// RTP packets received (any source accepted after latching).
    pub received: AtomicU64,
    /// RTCP packets sent.
    pub rtcp_sent: AtomicU64,
    /// RTCP packets received.
    pub rtcp_received: AtomicU64,
    /// Packets dropped because they came from an address other than the latched one.
    pub foreign: AtomicU64,
    /// Sequence gaps seen in received RTP.
    pub lost: AtomicU64,
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
    latched: Option<SocketAddr>,
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
}

/// An RTP/RTCP socket pair and its tasks; dropped tasks stop with it.
pub struct RtpEndpoint {
    shared: Arc<Shared>,
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
    /// Binds an even RTP port and the next odd one for RTCP, from `ports`.
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
                    ptime: 20,
                },
            }),
            recv: Mutex::new(RecvState::default()),
            sending: AtomicBool::new(true),
            stats: RtpStats::default(),
        });
        let (tx, rx) = mpsc::channel(512);
        let tasks = vec![
            tokio::spawn(recv_rtp(shared.clone(), tx)),
            tokio::spawn(recv_rtcp(shared.clone())),
            tokio::spawn(send_rtcp(shared.clone())),
        ];
        Ok(Self {
            shared,
            events: tokio::sync::Mutex::new(rx),
            tasks,
        })
    }

    /// Local RTP address.
    pub fn local_addr(&self) -> Result<SocketAddr, RtpError> {
        Ok(self.shared.rtp.local_addr()?)
    }

    /// Sets where to send (from SDP) and with which payload types. Latching may override it.
    pub fn configure(&self, remote: SocketAddr, params: RtpParams) {
        let latched = lock(&self.shared.recv).latched;
        *lock(&self.shared.remote) = Some(latched.unwrap_or(remote));
        lock(&self.shared.send).params = params;
    }

    /// Enables or mutes sending (hold).
    pub fn set_sending(&self, on: bool) {
        self.shared.sending.store(on, Ordering::Relaxed);
    }

    /// Counters.
    pub fn stats(&self) -> &RtpStats {
        &self.shared.stats
    }

    /// Where packets currently go.
    pub fn remote(&self) -> Option<SocketAddr> {
        *lock(&self.shared.remote)
    }

    /// Sends one audio frame of `samples` samples; the timestamp advances even while muted or
    /// while a DTMF event is being sent, so the far end sees continuous media time.
    pub async fn send_audio(&self, payload: &[u8], samples: u32) -> Result<(), RtpError> {
        let remote = self.remote().ok_or(RtpError::NoRemote)?;
        let pkt = {
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
            let seq = s.seq;
            s.seq = s.seq.wrapping_add(1);
            s.octets += payload.len() as u64;
            let marked = std::mem::replace(&mut s.first, false);
            build(s.params.pt, self.shared.ssrc, seq, ts, marked, payload)
        };
        self.shared.rtp.send_to(&pkt, remote).await?;
        self.shared.stats.sent.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Sends an RFC 4733 event lasting `duration_ms`, one packet per ptime, and the final
    /// packet three times (§2.5.1.4) so a single loss does not lose the digit.
    pub async fn send_dtmf(&self, digit: char, duration_ms: u32) -> Result<(), RtpError> {
        let event = digit_to_event(digit).ok_or(RtpError::Dtmf(digit))?;
        let remote = self.remote().ok_or(RtpError::NoRemote)?;
        let (pt, start_ts, rate, ptime) = {
            let mut s = lock(&self.shared.send);
            let pt = s.params.dtmf_pt.ok_or(RtpError::Dtmf(digit))?;
            let start = s.ts;
            let total = s.params.clock_rate / 1000 * duration_ms;
            s.dtmf_until = Some(start.wrapping_add(total));
            (pt, start, s.params.clock_rate, s.params.ptime)
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
                let pkt = {
                    let mut s = lock(&self.shared.send);
                    let seq = s.seq;
                    s.seq = s.seq.wrapping_add(1);
                    build(pt, self.shared.ssrc, seq, start_ts, first, &ev.to_bytes())
                };
                first = false;
                self.shared.rtp.send_to(&pkt, remote).await?;
                self.shared.stats.sent.fetch_add(1, Ordering::Relaxed);
            }
            if end {
                break;
            }
        }
        let mut s = lock(&self.shared.send);
        let after = start_ts.wrapping_add(total);
        if (after.wrapping_sub(s.ts) as i32) > 0 {
            s.ts = after;
        }
        s.dtmf_until = None;
        Ok(())
    }

    /// Next received event; `None` once the endpoint is closed.
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

async fn recv_rtp(shared: Arc<Shared>, tx: mpsc::Sender<RtpEvent>) {
    let mut buf = vec![0u8; 2048];
    loop {
        let Ok((n, src)) = shared.rtp.recv_from(&mut buf).await else {
            continue;
        };
        let Ok(pkt) = RtpReader::new(&buf[..n]) else {
            tracing::debug!(%src, "dropping non-RTP datagram");
            continue;
        };
        let event = {
            let mut r = lock(&shared.recv);
            match r.latched {
                None => {
                    // Symmetric RTP: the peer may sit behind NAT, so reply where it sends from.
                    r.latched = Some(src);
                    *lock(&shared.remote) = Some(src);
                    tracing::debug!(%src, "rtp latched");
                }
                Some(l) if l != src => {
                    shared.stats.foreign.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                _ => {}
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

async fn recv_rtcp(shared: Arc<Shared>) {
    let mut buf = vec![0u8; 1500];
    loop {
        let Ok((n, src)) = shared.rtcp.recv_from(&mut buf).await else {
            continue;
        };
        if n < 8 || buf[0] >> 6 != 2 {
            continue;
        }
        shared.stats.rtcp_received.fetch_add(1, Ordering::Relaxed);
        let mut r = lock(&shared.recv);
        r.rtcp_latched.get_or_insert(src);
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

async fn send_rtcp(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    tick.tick().await;
    loop {
        tick.tick().await;
        let dest = {
            let r = lock(&shared.recv);
            r.rtcp_latched.or_else(|| {
                lock(&shared.remote).map(|a| SocketAddr::new(a.ip(), a.port().wrapping_add(1)))
            })
        };
        let Some(dest) = dest else { continue };
        let pkt = rtcp_report(&shared);
        if shared.rtcp.send_to(&pkt, dest).await.is_ok() {
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
            a.send_audio(&[i; 160], 160).await.unwrap();
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
        b.send_audio(&[9; 160], 160).await.unwrap();
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
}
