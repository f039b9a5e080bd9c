//! The RTCP port of an `rtp` mountpoint's stream (Janus' `audiortcpport`/`videortcpport`,
//! `rtcpport` in `media`): sender reports from the source are received and counted, and the
//! address they come from is where viewers' keyframe requests go, as an RTCP PLI (RFC 4585
//! §6.3.1) for the SSRC the source reported.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

/// RTCP packet type of a sender report (RFC 3550 §6.4.1).
const PT_SR: u8 = 200;
/// Least time between two PLIs sent to the source.
const PLI_GAP: Duration = Duration::from_millis(500);

/// The RTCP link with one stream's source.
pub struct RtcpLink {
    socket: UdpSocket,
    /// Where the source's RTCP comes from (where PLIs go), once it sent some.
    source: Mutex<Option<SocketAddr>>,
    /// The source's SSRC, from its sender reports.
    source_ssrc: AtomicU32,
    /// Our SSRC as the sender of feedback.
    own_ssrc: u32,
    /// Sender reports received.
    pub sender_reports: AtomicU64,
    /// PLIs sent to the source.
    pub plis_sent: AtomicU64,
    last_pli: Mutex<Option<Instant>>,
}

impl RtcpLink {
    /// A link over `socket` (bound on the RTCP port).
    pub fn new(socket: UdpSocket) -> Arc<Self> {
        Arc::new(Self {
            socket,
            source: Mutex::new(None),
            source_ssrc: AtomicU32::new(0),
            own_ssrc: rand::random(),
            sender_reports: AtomicU64::new(0),
            plis_sent: AtomicU64::new(0),
            last_pli: Mutex::new(None),
        })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.socket.local_addr().map_or(0, |a| a.port())
    }

    /// Reads the source's RTCP until `cancel`.
    pub async fn run(self: Arc<Self>, mountpoint: u64, cancel: CancellationToken) {
        let mut buf = vec![0u8; 1500];
        loop {
            let (n, from) = tokio::select! {
                _ = cancel.cancelled() => return,
                r = self.socket.recv_from(&mut buf) => match r {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::debug!(mountpoint, error = %e, "RTCP receive");
                        continue;
                    }
                },
            };
            let reports = sender_reports(&buf[..n]);
            if reports.is_empty() {
                continue;
            }
            let first = self
                .sender_reports
                .fetch_add(reports.len() as u64, Ordering::Relaxed)
                == 0;
            if let Some(ssrc) = reports.last() {
                self.source_ssrc.store(*ssrc, Ordering::Relaxed);
            }
            let changed = self
                .source
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .replace(from)
                != Some(from);
            if first || changed {
                tracing::info!(mountpoint, source = %from, "RTCP sender reports from the source");
            }
        }
    }

    /// Sends a PLI to the source (at most one per [`PLI_GAP`]); `false` when no source is
    /// known yet or it was too soon.
    pub async fn request_keyframe(&self) -> bool {
        let Some(to) = *self.source.lock().unwrap_or_else(|e| e.into_inner()) else {
            return false;
        };
        {
            let mut last = self.last_pli.lock().unwrap_or_else(|e| e.into_inner());
            if last.is_some_and(|t| t.elapsed() < PLI_GAP) {
                return false;
            }
            *last = Some(Instant::now());
        }
        let packet = pli(self.own_ssrc, self.source_ssrc.load(Ordering::Relaxed));
        match self.socket.send_to(&packet, to).await {
            Ok(_) => {
                self.plis_sent.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(e) => {
                tracing::debug!(error = %e, "PLI to the source not sent");
                false
            }
        }
    }

    /// What `info` shows.
    pub fn info(&self) -> Value {
        json!({
            "rtcp_port": self.port(),
            "sender_reports": self.sender_reports.load(Ordering::Relaxed),
            "plis_sent": self.plis_sent.load(Ordering::Relaxed),
        })
    }
}

/// The sender SSRCs of the sender reports in an RTCP compound packet (RFC 3550 §6.1); empty
/// for anything else (or anything malformed).
pub fn sender_reports(datagram: &[u8]) -> Vec<u32> {
    let mut out = Vec::new();
    let mut rest = datagram;
    while rest.len() >= 8 {
        if rest[0] >> 6 != 2 {
            return Vec::new();
        }
        let len = (usize::from(u16::from_be_bytes([rest[2], rest[3]])) + 1) * 4;
        if len > rest.len() {
            return Vec::new();
        }
        if rest[1] == PT_SR && len >= 28 {
            out.push(u32::from_be_bytes([rest[4], rest[5], rest[6], rest[7]]));
        }
        rest = &rest[len..];
    }
    out
}

/// A Picture Loss Indication (RFC 4585 §6.3.1): PT 206, FMT 1, 12 bytes.
pub fn pli(sender_ssrc: u32, media_ssrc: u32) -> [u8; 12] {
    let mut p = [0u8; 12];
    p[0] = 0x81;
    p[1] = 206;
    p[3] = 2;
    p[4..8].copy_from_slice(&sender_ssrc.to_be_bytes());
    p[8..12].copy_from_slice(&media_ssrc.to_be_bytes());
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sr(ssrc: u32) -> Vec<u8> {
        let mut p = vec![0x80, PT_SR, 0, 6];
        p.extend(ssrc.to_be_bytes());
        p.extend([0u8; 20]);
        p
    }

    #[test]
    fn reports_in_compound_packets() {
        let mut compound = sr(0xdead_beef);
        // An SDES after it.
        compound.extend([0x81, 202, 0, 1, 0, 0, 0, 1]);
        assert_eq!(sender_reports(&compound), vec![0xdead_beef]);
        assert!(sender_reports(&compound[..20]).is_empty());
        assert!(sender_reports(&[0x80, 201, 0, 1, 0, 0, 0, 1]).is_empty());
        let p = pli(1, 0xdead_beef);
        assert_eq!(&p[..4], &[0x81, 206, 0, 2]);
        assert_eq!(&p[8..], &0xdead_beefu32.to_be_bytes());
    }

    proptest! {
        #[test]
        fn never_panics(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = sender_reports(&data);
        }
    }
}
