//! The loop engine against real `rtc` clients over loopback: ICE, DTLS-SRTP and RTP both ways
//! through the loop's one shared socket.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

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

use super::*;
use crate::media::{MediaKind, RtpPacket, StreamInfo};

/// Sends every packet back on the same kind: the echo test's media path.
struct Echo {
    connected: Arc<AtomicBool>,
    echoed: Arc<AtomicU64>,
}

impl PeerHandler for Echo {
    fn on_connected(&mut self) {
        self.connected.store(true, Ordering::Release);
    }

    fn on_rtp(&mut self, stream: &StreamInfo, packet: RtpPacket, out: &mut Outbox<'_>) {
        let kind = stream.kind;
        if out.send_rtp(kind, &packet) {
            self.echoed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// A browser stand-in: an offering `rtc` PeerConnection with Opus and VP8 on its own socket.
struct Client {
    pc: RTCPeerConnection,
    socket: UdpSocket,
    local_addr: SocketAddr,
    senders: Vec<(MediaKind, RTCRtpSenderId, u8)>,
    received: [u64; 2],
    /// SSRC of the gateway's video, from its packets.
    video_ssrc: Option<u32>,
}

fn codec(kind: MediaKind) -> RTCRtpCodec {
    match kind {
        MediaKind::Audio => RTCRtpCodec {
            mime_type: MIME_TYPE_OPUS.to_owned(),
            clock_rate: 48_000,
            channels: 2,
            sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
            rtcp_feedback: vec![],
        },
        MediaKind::Video => RTCRtpCodec {
            mime_type: MIME_TYPE_VP8.to_owned(),
            clock_rate: 90_000,
            channels: 0,
            sdp_fmtp_line: String::new(),
            rtcp_feedback: vec![],
        },
    }
}

impl Client {
    fn offer() -> (Self, String) {
        let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(2)))
            .unwrap();
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
        for (kind, codec_kind) in [
            (MediaKind::Audio, RtpCodecKind::Audio),
            (MediaKind::Video, RtpCodecKind::Video),
        ] {
            let track = MediaStreamTrack::new(
                format!("client-{}", kind.as_str()),
                format!("client-{}-track", kind.as_str()),
                format!("client-{}", kind.as_str()),
                codec_kind,
                vec![RTCRtpEncodingParameters {
                    rtp_coding_parameters: RTCRtpCodingParameters {
                        ssrc: Some(rand::random::<u32>()),
                        ..Default::default()
                    },
                    codec: codec(kind),
                    ..Default::default()
                }],
            );
            senders.push((kind, pc.add_track(track).unwrap(), 0));
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
            received: [0, 0],
            video_ssrc: None,
        };
        (client, sdp)
    }

    fn accept(&mut self, answer: String) {
        let answer = RTCSessionDescription::answer(answer).unwrap();
        self.pc
            .set_remote_description(Instant::now(), answer)
            .unwrap();
        for (_, sender, pt) in &mut self.senders {
            let mut s = self.pc.rtp_sender(*sender).unwrap();
            *pt = s.get_parameters().rtp_parameters.codecs[0].payload_type;
        }
    }

    /// Asks the gateway's video sender for a keyframe (RFC 4585 §6.3.1), once its video came.
    fn send_pli(&mut self) -> bool {
        let Some(media_ssrc) = self.video_ssrc else {
            return false;
        };
        let receivers: Vec<_> = self.pc.get_receivers().collect();
        for id in receivers {
            let mut receiver = self.pc.rtp_receiver(id).unwrap();
            if receiver.track().kind() == RtpCodecKind::Video {
                let pli =
                    rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication {
                        sender_ssrc: 0,
                        media_ssrc,
                    };
                return receiver
                    .write_rtcp(Instant::now(), vec![Box::new(pli)])
                    .is_ok();
            }
        }
        false
    }

    /// One round: a packet of each kind (sequence `seq`), then a few ms of I/O and timers.
    fn step(&mut self, seq: u16, send: bool) {
        if send {
            for &(_, sender, pt) in &self.senders {
                let mut packet = rtc::rtp::Packet {
                    header: Default::default(),
                    payload: Bytes::from_static(&[0xAB; 160]),
                };
                packet.header.version = 2;
                packet.header.payload_type = pt;
                packet.header.sequence_number = seq;
                packet.header.timestamp = u32::from(seq) * 960;
                let mut sender = self.pc.rtp_sender(sender).unwrap();
                packet.header.ssrc = sender.track().ssrcs().last().unwrap();
                let _ = sender.write_rtp(Instant::now(), packet);
            }
        }
        let mut buf = [0u8; 2048];
        let until = Instant::now() + Duration::from_millis(10);
        while Instant::now() < until {
            while let Some(out) = self.pc.poll_write() {
                let _ = self.socket.send_to(&out.message, out.transport.peer_addr);
            }
            while self.pc.poll_event().is_some() {}
            while let Some(TaggedRTCMessage { message, .. }) = self.pc.poll_read() {
                if let RTCMessage::RtpPacket(_, packet) = message {
                    let kind = if packet.header.payload_type == self.senders[0].2 {
                        MediaKind::Audio
                    } else {
                        self.video_ssrc = Some(packet.header.ssrc);
                        MediaKind::Video
                    };
                    self.received[kind.index()] += 1;
                }
            }
            if let Ok((n, from)) = self.socket.recv_from(&mut buf) {
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
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

#[test]
fn two_clients_on_one_loop_socket_get_their_own_audio_and_video_echoed() {
    let template = PeerTemplate::generate().unwrap();
    let event_loop =
        EventLoop::start("media-test".into(), Ipv4Addr::LOCALHOST.into(), 0, template).unwrap();
    let rt = runtime();
    let mut clients = Vec::new();
    let mut echoes = Vec::new();
    for _ in 0..2 {
        let (mut client, offer) = Client::offer();
        let connected = Arc::new(AtomicBool::new(false));
        let echoed = Arc::new(AtomicU64::new(0));
        let handler = Echo {
            connected: connected.clone(),
            echoed: echoed.clone(),
        };
        let (_key, answer) = rt
            .block_on(event_loop.answer(offer, Box::new(handler)))
            .unwrap();
        assert!(answer.contains(&format!("{}", event_loop.local_addr().port())));
        client.accept(answer);
        clients.push(client);
        echoes.push((connected, echoed));
    }
    assert_eq!(event_loop.load(), 2);

    // Generous bound: a loaded machine slows the handshake, never the outcome.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seq = 0u16;
    while Instant::now() < deadline && !clients.iter().all(|c| c.received.iter().all(|&n| n >= 20))
    {
        seq = seq.wrapping_add(1);
        for (client, (connected, _)) in clients.iter_mut().zip(&echoes) {
            client.step(seq, connected.load(Ordering::Acquire));
        }
    }
    for (client, (connected, echoed)) in clients.iter().zip(&echoes) {
        assert!(
            connected.load(Ordering::Acquire),
            "loop side never connected"
        );
        assert!(echoed.load(Ordering::Relaxed) >= 40);
        assert!(
            client.received.iter().all(|&n| n >= 20),
            "echo received per kind: {:?}",
            client.received
        );
    }
}

#[test]
fn with_a_1_to_1_nat_mapping_the_loop_offers_the_mapped_address_and_connects_through_it() {
    let mut template = PeerTemplate::generate().unwrap();
    // The mapping names the socket's own address: on loopback that is the only public
    // address a check can reach, so ICE can only succeed through the mapped candidate.
    template.nat_1_1 = vec![Ipv4Addr::LOCALHOST.into(), "2001:db8::1".parse().unwrap()];
    let event_loop =
        EventLoop::start("media-test".into(), Ipv4Addr::LOCALHOST.into(), 0, template).unwrap();
    let port = event_loop.local_addr().port();
    let rt = runtime();
    let (mut client, offer) = Client::offer();
    let connected = Arc::new(AtomicBool::new(false));
    let handler = Echo {
        connected: connected.clone(),
        echoed: Default::default(),
    };
    let (_key, answer) = rt
        .block_on(event_loop.answer(offer, Box::new(handler)))
        .unwrap();
    let candidates: Vec<&str> = answer
        .lines()
        .filter(|l| l.starts_with("a=candidate:"))
        .collect();
    assert!(!candidates.is_empty(), "{answer}");
    for candidate in &candidates {
        assert!(
            candidate.ends_with(&format!(
                "127.0.0.1 {port} typ srflx raddr 127.0.0.1 rport {port}"
            )),
            "{candidate}"
        );
    }
    client.accept(answer);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seq = 0u16;
    while Instant::now() < deadline && client.received.iter().any(|&n| n < 5) {
        seq = seq.wrapping_add(1);
        client.step(seq, connected.load(Ordering::Acquire));
    }
    assert!(
        connected.load(Ordering::Acquire),
        "loop side never connected"
    );
    assert!(
        client.received.iter().all(|&n| n >= 5),
        "{:?}",
        client.received
    );
}

#[test]
fn an_offer_the_engine_cannot_parse_is_refused_and_the_loop_keeps_serving() {
    let template = PeerTemplate::generate().unwrap();
    let event_loop =
        EventLoop::start("media-test".into(), Ipv4Addr::LOCALHOST.into(), 0, template).unwrap();
    let rt = runtime();
    let handler = Echo {
        connected: Default::default(),
        echoed: Default::default(),
    };
    let refused = rt.block_on(event_loop.answer("v=0\r\nnot sdp".into(), Box::new(handler)));
    assert!(refused.is_err());
    let (_client, offer) = Client::offer();
    let handler = Echo {
        connected: Default::default(),
        echoed: Default::default(),
    };
    let started = Instant::now();
    let answered = rt.block_on(event_loop.answer(offer, Box::new(handler)));
    eprintln!("create→answer on the loop: {:?}", started.elapsed());
    assert!(answered.is_ok());
    assert_eq!(event_loop.load(), 1);
}

/// What the contract test's handle sees: its listener echoes through the `Peer`'s
/// `MediaSender`, as the echo test plugin does (a queue hop and a loop wake per packet).
#[derive(Default)]
struct ContractListener {
    sender: std::sync::OnceLock<crate::media::MediaSender>,
    connected: AtomicBool,
    receiving: AtomicU64,
    echoed: AtomicU64,
    keyframe_requests: AtomicU64,
}

impl crate::media::PeerListener for ContractListener {
    fn on_connected(&self) {
        self.connected.store(true, Ordering::Release);
    }
    fn on_media(&self, _: MediaKind, _: &crate::ids::Mid, receiving: bool) {
        if receiving {
            self.receiving.fetch_add(1, Ordering::Relaxed);
        }
    }
    fn on_rtp(&self, stream: &StreamInfo, packet: RtpPacket) {
        assert!(
            stream.codec.is_some(),
            "the stream's codec comes from the answer"
        );
        if let Some(sender) = self.sender.get() {
            if sender.send_rtp(stream.kind, packet) {
                self.echoed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    fn on_rtcp(&self, kind: MediaKind, feedback: crate::media::RtcpFeedback) {
        if kind == MediaKind::Video && feedback == crate::media::RtcpFeedback::KeyframeRequest {
            self.keyframe_requests.fetch_add(1, Ordering::Relaxed);
        }
    }
    fn on_data(&self, _: &str, _: crate::media::DataMessage) {}
    fn on_local_candidate(&self, _: crate::media::LocalCandidate) {}
    fn on_slowlink(&self, _: MediaKind, _: &crate::ids::Mid, _: bool, _: u64) {}
    fn on_failed(&self, _: &'static str) {}
}

#[test]
fn a_peer_on_the_loop_engine_answers_and_echoes_through_its_media_sender() {
    let rt = runtime();
    let _guard = rt.enter();
    let ice = crate::config::IceConfig {
        loopback: crate::config::LoopbackMode::Always,
        bind_addresses: vec![Ipv4Addr::LOCALHOST.into()],
        ..Default::default()
    };
    let media = crate::config::MediaConfig {
        engine: crate::config::EngineKind::Loop,
        loops: 2,
        ..Default::default()
    };
    let engine = crate::media::MediaEngine::new(
        &ice,
        &Default::default(),
        &media,
        Duration::from_secs(1),
        0,
    )
    .unwrap();
    let listener = Arc::new(ContractListener::default());
    let peer = rt.block_on(engine.create_peer(listener.clone())).unwrap();
    listener.sender.set(peer.sender()).ok().unwrap();
    let (mut client, offer) = Client::offer();
    let (answer, negotiated) = rt
        .block_on(peer.answer(
            &crate::media::Jsep::offer(offer),
            &crate::media::AnswerPlan::echo(),
        ))
        .unwrap();
    assert_eq!(negotiated.streams.len(), 2, "{negotiated:?}");
    assert!(
        answer.sdp.contains("127.0.0.1"),
        "host candidate: {}",
        answer.sdp
    );
    client.accept(answer.sdp);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seq = 0u16;
    while Instant::now() < deadline && !client.received.iter().all(|&n| n >= 20) {
        seq = seq.wrapping_add(1);
        client.step(seq, listener.connected.load(Ordering::Acquire));
    }
    assert!(
        listener.connected.load(Ordering::Acquire),
        "never connected"
    );
    assert_eq!(
        listener.receiving.load(Ordering::Relaxed),
        2,
        "one media event per kind"
    );
    assert!(peer.receiving(MediaKind::Audio) && peer.receiving(MediaKind::Video));
    assert!(
        client.received.iter().all(|&n| n >= 20),
        "echo received per kind: {:?}",
        client.received
    );
    // A viewer's keyframe request about what the gateway sends reaches the plugin.
    assert!(client.send_pli(), "the gateway's video arrived");
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline && listener.keyframe_requests.load(Ordering::Relaxed) == 0 {
        seq = seq.wrapping_add(1);
        client.step(seq, true);
    }
    assert!(
        listener.keyframe_requests.load(Ordering::Relaxed) > 0,
        "PLI reached the listener"
    );
    let stats = rt.block_on(peer.stats());
    assert_eq!(stats.dtls_state, crate::media::DtlsState::Connected);
    assert!(stats.selected_pair.is_some(), "{stats:?}");
    assert_eq!(peer.state_summary().1, "connected");
    assert_eq!(engine.capacity().live(), 1);
    drop(peer);
    assert_eq!(engine.capacity().live(), 0);
}

/// Datagrams in flight between a [`Client`] and a [`LoopPeer`] driven by hand: nothing goes
/// through a socket, and time only moves when the test says so.
#[derive(Default)]
struct Wire {
    to_gateway: Vec<Vec<u8>>,
    to_client: Vec<Vec<u8>>,
}

impl Wire {
    fn collect_client(&mut self, client: &mut Client) {
        while let Some(out) = client.pc.poll_write() {
            self.to_gateway.push(out.message.to_vec());
        }
    }

    fn collect_gateway(&mut self, peer: &mut LoopPeer, now: Instant) {
        let to_client = &mut self.to_client;
        peer.drain(now, |_, bytes| to_client.push(bytes.to_vec()));
    }

    /// Hands the client what the gateway sent that `pick` selects, keeping the rest in order.
    fn deliver_to_client(
        &mut self,
        client: &mut Client,
        now: Instant,
        pick: impl Fn(&[u8]) -> bool,
    ) {
        let (picked, kept) = std::mem::take(&mut self.to_client)
            .into_iter()
            .partition::<Vec<_>, _>(|d| pick(d));
        self.to_client = kept;
        for datagram in picked {
            let _ = client
                .pc
                .handle_read(udp_datagram(now, client.local_addr, GATEWAY, &datagram));
        }
        while client.pc.poll_event().is_some() {}
        while client.pc.poll_read().is_some() {}
    }

    fn deliver_to_gateway(&mut self, peer: &mut LoopPeer, from: SocketAddr, now: Instant) {
        for datagram in std::mem::take(&mut self.to_gateway) {
            peer.handle_datagram(now, from, &datagram);
        }
    }
}

/// The gateway's address in [`Wire`] tests: in the answer's candidate, never bound.
const GATEWAY: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 9);

#[test]
fn a_nomination_before_our_check_succeeded_connects_without_a_retransmission_or_a_timer() {
    // The race of a fast controlling peer: its USE-CANDIDATE request arrives before the
    // answer to our own check of the pair. RFC 8445 §7.3.1.5: the pair is nominated once that
    // check succeeds. Nothing here advances the gateway's clock or calls its timeout, and the
    // client's clock stops once it nominated: only the fixes (a kept nomination fed again, the
    // DTLS ClientHello sent when ICE connects) can bring DTLS up.
    let (mut client, offer) = Client::offer();
    let t0 = Instant::now();
    let template = PeerTemplate::generate().unwrap();
    let connected = Arc::new(AtomicBool::new(false));
    let handler = Echo {
        connected: connected.clone(),
        echoed: Arc::default(),
    };
    let mut peer = LoopPeer::new(
        t0,
        &template,
        GATEWAY,
        Box::new(handler),
        None,
        Arc::default(),
    )
    .unwrap();
    let (answer, _) = peer
        .answer(t0, &offer, &crate::media::AnswerPlan::echo())
        .unwrap();
    client.accept(answer);
    let from = client.local_addr;
    let mut wire = Wire::default();
    wire.collect_gateway(&mut peer, t0);

    // The client's first check; the gateway answers it and sends its own check.
    let t1 = t0 + Duration::from_millis(1);
    client.pc.handle_timeout(t1).unwrap();
    wire.collect_client(&mut client);
    assert!(!wire.to_gateway.is_empty(), "the client checks the pair");
    wire.deliver_to_gateway(&mut peer, from, t1);
    wire.collect_gateway(&mut peer, t1);

    // Only the answer reaches the client, which then nominates; the gateway's own check is
    // still on its way.
    let mut t = t1;
    let mut nominated = false;
    for _ in 0..20 {
        wire.deliver_to_client(&mut client, t, stun::is_binding_success);
        t += Duration::from_millis(25);
        if client.pc.poll_timeout().is_some_and(|at| at <= t) {
            client.pc.handle_timeout(t).unwrap();
        }
        wire.collect_client(&mut client);
        if wire.to_gateway.iter().any(|d| stun::is_nomination(d)) {
            nominated = true;
            break;
        }
        wire.to_gateway.clear();
    }
    assert!(nominated, "the client nominates the pair");
    wire.deliver_to_gateway(&mut peer, from, t);
    wire.collect_gateway(&mut peer, t);

    // Everything else now flows both ways, with both clocks stopped.
    for _ in 0..10 {
        wire.deliver_to_client(&mut client, t, |_| true);
        wire.collect_client(&mut client);
        wire.deliver_to_gateway(&mut peer, from, t);
        wire.collect_gateway(&mut peer, t);
    }
    assert!(
        connected.load(Ordering::Acquire),
        "DTLS is up without a retransmission"
    );
}
