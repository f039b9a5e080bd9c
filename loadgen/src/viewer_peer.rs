//! A receive-only WebRTC peer on str0m for streaming viewers: it answers the gateway's offer
//! (H.264 and Opus), runs in RTP mode (packets as they arrive, no depacketiser or jitter
//! buffer of its own, so what is measured is the gateway's) and hands every RTP packet to a
//! [`RtpSink`]. One UDP socket, one host candidate, one task.

use crate::peer::PeerReport;
use anyhow::{anyhow, Context, Result};
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;
use str0m::change::SdpOffer;
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc, RtcConfig};
use tokio::net::UdpSocket;
use tokio::sync::watch;

/// Receives a viewer's packets.
pub trait RtpSink: Send {
    /// One RTP packet: arrival, payload type, sequence number, timestamp, marker, payload.
    fn packet(&mut self, arrival: Instant, pt: u8, seq: u16, ts: u32, marker: bool, payload: &[u8]);
}

/// A viewer peer whose answer is made.
pub struct ViewerPeer {
    rtc: Rtc,
    socket: UdpSocket,
    local: SocketAddr,
}

impl ViewerPeer {
    /// Binds a UDP socket on `ip` and answers `offer` (the gateway's SDP) receive-only with
    /// H.264 and Opus; returns the peer and the answer's SDP.
    ///
    /// Errors: binding, or an offer str0m cannot parse or answer.
    pub async fn answer(ip: IpAddr, offer: &str) -> Result<(ViewerPeer, String)> {
        let socket = UdpSocket::bind(SocketAddr::new(ip, 0)).await?;
        let local = socket.local_addr()?;
        let mut rtc = RtcConfig::new()
            .clear_codecs()
            .enable_h264(true)
            .enable_opus(true, false)
            .set_rtp_mode(true)
            .build(Instant::now());
        let cand = Candidate::host(local, "udp").map_err(|e| anyhow!("candidate: {e}"))?;
        rtc.add_local_candidate(cand);
        let offer = SdpOffer::from_sdp_string(offer).context("parsing the offer")?;
        let answer = rtc
            .sdp_api()
            .accept_offer(offer)
            .context("answering the offer")?;
        Ok((ViewerPeer { rtc, socket, local }, answer.to_sdp_string()))
    }

    /// Drives the peer until `stop` turns true or the connection fails.
    pub async fn run(
        mut self,
        sink: &mut impl RtpSink,
        mut stop: watch::Receiver<bool>,
    ) -> PeerReport {
        let mut report = PeerReport::default();
        let mut buf = vec![0u8; 2000];
        loop {
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
                        Event::RtpPacket(p) => sink.packet(
                            p.timestamp,
                            *p.header.payload_type,
                            p.header.sequence_number,
                            p.header.timestamp,
                            p.header.marker,
                            &p.payload,
                        ),
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

/// Payload types the SDP maps to H.264 (`a=rtpmap:PT H264/90000`).
pub fn h264_payload_types(sdp: &str) -> Vec<u8> {
    sdp.lines()
        .filter_map(|l| l.trim().strip_prefix("a=rtpmap:"))
        .filter_map(|l| {
            let (pt, codec) = l.split_once(' ')?;
            codec
                .to_ascii_uppercase()
                .starts_with("H264/")
                .then(|| pt.parse().ok())?
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn h264_payload_types_from_the_rtpmap_lines() {
        let sdp = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\n\
                   m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\na=rtpmap:96 H264/90000\r\n\
                   a=rtpmap:97 h264/90000\r\na=rtpmap:x H264/90000\r\n";
        assert_eq!(h264_payload_types(sdp), vec![96, 97]);
        assert!(h264_payload_types("").is_empty());
    }
}
