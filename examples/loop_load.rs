//! Echo load on the loop media engine: N `rtc` client PeerConnections, driven from this
//! process' one thread, each sending Opus at 50 packets/s (160 B) and VP8 at ~500 kbit/s
//! (1,200 B packets at 52/s) to `loop_echo` (a separate process: the engine alone), which
//! echoes them. Prints the engine process' CPU per session, RSS per session, create → answer
//! and echo counts, read from `/proc/<pid>`. Not a test: figures only.
//!
//!   cargo build --example loop_echo --example loop_load
//!   target/debug/examples/loop_load 100 20      # sessions, measured seconds

use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bifrons::media::rtc::{host_candidate, udp_datagram};
use bytes::Bytes;
use rtc::interceptor::Registry;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors;
use rtc::peer_connection::configuration::media_engine::{
    MediaEngine, MIME_TYPE_OPUS, MIME_TYPE_VP8,
};
use rtc::peer_connection::message::{RTCMessage, TaggedRTCMessage};
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::{RTCPeerConnection, RTCPeerConnectionBuilder};
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use rtc::rtp_transceiver::RTCRtpSenderId;
use rtc::sansio::Protocol;
use serde_json::{json, Value};

struct Client {
    pc: RTCPeerConnection,
    socket: UdpSocket,
    local_addr: SocketAddr,
    /// (sender, ssrc, payload type, payload bytes, packets per second)
    senders: Vec<(RTCRtpSenderId, u32, u8, usize, u32)>,
    received: u64,
    sent: u64,
}

impl Client {
    fn offer() -> (Self, String) {
        let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        socket.set_nonblocking(true).unwrap();
        let local_addr = socket.local_addr().unwrap();
        let mut media = MediaEngine::default();
        media.register_default_codecs().unwrap();
        let registry = register_default_interceptors(Registry::new(), &mut media).unwrap();
        let mut pc = RTCPeerConnectionBuilder::new()
            .with_media_engine(media)
            .with_interceptor_registry(registry)
            .build(Instant::now())
            .unwrap();
        let mut senders = Vec::new();
        for (kind, mime, clock_rate, channels, size, rate) in [
            (RtpCodecKind::Audio, MIME_TYPE_OPUS, 48_000, 2, 160, 50),
            (RtpCodecKind::Video, MIME_TYPE_VP8, 90_000, 0, 1_200, 52),
        ] {
            let ssrc = rand::random();
            let track = MediaStreamTrack::new(
                format!("s-{kind}"),
                format!("t-{kind}"),
                format!("l-{kind}"),
                kind,
                vec![RTCRtpEncodingParameters {
                    rtp_coding_parameters: RTCRtpCodingParameters {
                        ssrc: Some(ssrc),
                        ..Default::default()
                    },
                    codec: RTCRtpCodec {
                        mime_type: mime.to_owned(),
                        clock_rate,
                        channels,
                        sdp_fmtp_line: String::new(),
                        rtcp_feedback: vec![],
                    },
                    ..Default::default()
                }],
            );
            senders.push((pc.add_track(track).unwrap(), ssrc, 0, size, rate));
        }
        pc.add_local_candidate(host_candidate(local_addr).unwrap())
            .unwrap();
        let offer = pc.create_offer(None).unwrap();
        pc.set_local_description(Instant::now(), offer).unwrap();
        let sdp = pc.local_description().unwrap().sdp;
        let client = Self {
            pc,
            socket,
            local_addr,
            senders,
            received: 0,
            sent: 0,
        };
        (client, sdp)
    }

    fn accept(&mut self, answer: String) {
        let answer = RTCSessionDescription::answer(answer).unwrap();
        self.pc
            .set_remote_description(Instant::now(), answer)
            .unwrap();
        for (sender, _, pt, _, _) in &mut self.senders {
            let mut s = self.pc.rtp_sender(*sender).unwrap();
            *pt = s.get_parameters().rtp_parameters.codecs[0].payload_type;
        }
    }

    /// Sends the packets due by `tick` (ms since start), then does all pending I/O.
    fn poll(&mut self, tick: u64, last_tick: u64, buf: &mut [u8]) {
        for &(sender, ssrc, pt, size, rate) in &self.senders {
            let due = tick * u64::from(rate) / 1000 - last_tick * u64::from(rate) / 1000;
            for i in 0..due {
                let seq = (tick * u64::from(rate) / 1000 + i) as u16;
                let mut packet = rtc::rtp::Packet {
                    header: Default::default(),
                    payload: Bytes::from(vec![0xAB; size]),
                };
                packet.header.version = 2;
                packet.header.payload_type = pt;
                packet.header.sequence_number = seq;
                packet.header.timestamp = tick as u32 * 90;
                packet.header.ssrc = ssrc;
                if let Some(mut s) = self.pc.rtp_sender(sender) {
                    if s.write_rtp(Instant::now(), packet).is_ok() {
                        self.sent += 1;
                    }
                }
            }
        }
        while let Ok((n, from)) = self.socket.recv_from(buf) {
            let _ = self.pc.handle_read(udp_datagram(
                Instant::now(),
                self.local_addr,
                from,
                &buf[..n],
            ));
        }
        let now = Instant::now();
        if self.pc.poll_timeout().is_some_and(|t| t <= now) {
            let _ = self.pc.handle_timeout(now);
        }
        while self.pc.poll_event().is_some() {}
        while let Some(TaggedRTCMessage { message, .. }) = self.pc.poll_read() {
            if let RTCMessage::RtpPacket(..) = message {
                self.received += 1;
            }
        }
        while let Some(out) = self.pc.poll_write() {
            let _ = self.socket.send_to(&out.message, out.transport.peer_addr);
        }
    }
}

/// (utime + stime in clock ticks, RSS in KiB) of process `pid`.
fn usage(pid: u32) -> (u64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = fields
        .get(11)
        .and_then(|f| f.parse::<u64>().ok())
        .unwrap_or(0)
        + fields
            .get(12)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    (ticks, rss)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100);
    let seconds: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(20);
    let echo_bin = std::env::current_exe().unwrap().with_file_name("loop_echo");
    let mut child = Command::new(echo_bin)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("loop_echo (cargo build --example loop_echo)");
    let pid = child.id();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    std::thread::sleep(Duration::from_millis(500));
    let (_, idle_rss) = usage(pid);

    let mut clients = Vec::with_capacity(n);
    let mut answer_ms = Vec::with_capacity(n);
    let mut line = String::new();
    for _ in 0..n {
        let (mut client, offer) = Client::offer();
        let started = Instant::now();
        writeln!(stdin, "{}", json!({ "offer": offer })).unwrap();
        let answer = loop {
            line.clear();
            stdout.read_line(&mut line).unwrap();
            let value: Value = serde_json::from_str(&line).unwrap_or_default();
            if let Some(answer) = value["answer"].as_str() {
                break answer.to_owned();
            }
            assert!(value.get("error").is_none(), "refused: {line}");
        };
        answer_ms.push(started.elapsed().as_secs_f64() * 1000.0);
        client.accept(answer);
        clients.push(client);
    }
    // Keep draining the child's reports so its stdout never blocks.
    // Keep reading the child's reports (its stdout must never block); the last one says how
    // many packets reached the engine and went back.
    let reports = std::thread::spawn(move || {
        let mut last = String::new();
        let mut next = String::new();
        while stdout.read_line(&mut next).is_ok_and(|n| n > 0) {
            std::mem::swap(&mut last, &mut next);
            next.clear();
        }
        last
    });

    let start = Instant::now();
    let warmup = Duration::from_secs(5);
    let mut buf = vec![0u8; 2048];
    let mut last_tick = 0;
    let mut measured: Option<(Instant, u64, u64, u64)> = None;
    let total = warmup + Duration::from_secs(seconds);
    while start.elapsed() < total {
        let tick = start.elapsed().as_millis() as u64;
        for client in &mut clients {
            client.poll(tick, last_tick, &mut buf);
        }
        last_tick = tick;
        if measured.is_none() && start.elapsed() >= warmup {
            let (ticks, _) = usage(pid);
            let received: u64 = clients.iter().map(|c| c.received).sum();
            let sent: u64 = clients.iter().map(|c| c.sent).sum();
            measured = Some((Instant::now(), ticks, received, sent));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let (ticks, loaded_rss) = usage(pid);
    let (t0, ticks0, received0, sent0) = measured.unwrap();
    let sent: u64 = clients.iter().map(|c| c.sent).sum::<u64>() - sent0;
    let elapsed = t0.elapsed().as_secs_f64();
    let received: u64 = clients.iter().map(|c| c.received).sum::<u64>() - received0;
    let clock_ticks = 100.0; // USER_HZ on Linux
    let cpu_percent = (ticks - ticks0) as f64 / clock_ticks / elapsed * 100.0;
    answer_ms.sort_by(f64::total_cmp);
    let sent_per_s = n as f64 * 102.0;
    println!(
        "loop engine, {n} sessions, {seconds} s: CPU {cpu_percent:.1} % of a core ({:.3} % per session), RSS {} → {} KiB ({} KiB per session), create→answer p50 {:.2} ms p99 {:.2} ms, echoed back {:.0} packets/s of {:.0} sent (target {:.0})",
        cpu_percent / n as f64,
        idle_rss,
        loaded_rss,
        loaded_rss.saturating_sub(idle_rss) / n as u64,
        answer_ms[answer_ms.len() / 2],
        answer_ms[(answer_ms.len() * 99 / 100).min(answer_ms.len() - 1)],
        received as f64 / elapsed,
        sent as f64 / elapsed,
        sent_per_s,
    );
    let sent_total: u64 = clients.iter().map(|c| c.sent).sum();
    let received_total: u64 = clients.iter().map(|c| c.received).sum();
    drop(clients);
    drop(stdin);
    let _ = child.wait();
    let last = reports.join().unwrap_or_default();
    println!(
        "whole run: clients sent {sent_total}, got back {received_total}; engine's last report: {}",
        last.trim()
    );
}
