//! Every path that delivers a new remote SDP moves our RTP to the address it names, even after
//! the endpoint latched onto the far end's earlier port. The far end is a raw UDP peer with one
//! SIP socket and two media sockets (its "port A" and "port B").

use bifrons_sip::message::{self as m, header};
use bifrons_sip::rtp::{RtpEndpoint, RtpEvent};
use bifrons_sip::{Ua, UaConfig, UaEvent};
use rsip::SipMessage;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::UdpSocket;

const WAIT: Duration = Duration::from_secs(5);

fn sdp(port: u16, dir: &str) -> String {
    format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {port} RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\na={dir}\r\n"
    )
}

/// The far end: a SIP socket and two media ports.
struct Peer {
    sip: UdpSocket,
    a: UdpSocket,
    b: UdpSocket,
    ua: SocketAddr,
    tag: String,
    ua_tag: String,
    cseq: u32,
}

impl Peer {
    async fn new(ua: SocketAddr) -> Self {
        let bind = || UdpSocket::bind("127.0.0.1:0");
        Peer {
            sip: bind().await.unwrap(),
            a: bind().await.unwrap(),
            b: bind().await.unwrap(),
            ua,
            tag: "p1".into(),
            ua_tag: String::new(),
            cseq: 1,
        }
    }

    fn addr(&self) -> SocketAddr {
        self.sip.local_addr().unwrap()
    }

    fn port_a(&self) -> u16 {
        self.a.local_addr().unwrap().port()
    }

    fn port_b(&self) -> u16 {
        self.b.local_addr().unwrap().port()
    }

    async fn send(&self, bytes: &[u8]) {
        self.sip.send_to(bytes, self.ua).await.unwrap();
    }

    /// Next SIP message from the UA that matches `pred`; others are skipped.
    async fn next(&self, pred: impl Fn(&SipMessage) -> bool) -> SipMessage {
        let mut buf = vec![0u8; 8192];
        loop {
            let (n, _) = tokio::time::timeout(WAIT, self.sip.recv_from(&mut buf))
                .await
                .expect("SIP message from the UA")
                .unwrap();
            let msg = m::parse(&buf[..n]).expect("parsable");
            if pred(&msg) {
                return msg;
            }
        }
    }

    async fn response(&self, code: u16) -> rsip::Response {
        match self
            .next(|msg| matches!(msg, SipMessage::Response(r) if m::status(r) == code))
            .await
        {
            SipMessage::Response(r) => r,
            _ => unreachable!(),
        }
    }

    async fn request(&self, method: &str) -> rsip::Request {
        match self
            .next(|msg| matches!(msg, SipMessage::Request(r) if r.method.to_string() == method))
            .await
        {
            SipMessage::Request(r) => r,
            _ => unreachable!(),
        }
    }

    /// A request in the peer's dialog (or starting it when `ua_tag` is empty).
    fn request_bytes(&mut self, method: &str, body: Option<String>) -> Vec<u8> {
        self.request_typed(method, body.map(|b| ("application/sdp".to_string(), b)))
    }

    /// Like `request_bytes`, with the body's Content-Type given.
    fn request_typed(&mut self, method: &str, body: Option<(String, String)>) -> Vec<u8> {
        if method != "ACK" {
            self.cseq += 1;
        }
        let local = self.addr();
        let to_tag = if self.ua_tag.is_empty() {
            String::new()
        } else {
            format!(";tag={}", self.ua_tag)
        };
        let (ctype, body) = match body {
            Some((t, b)) => (format!("Content-Type: {t}\r\n"), b),
            None => (String::new(), String::new()),
        };
        format!(
            "{method} sip:ua@{ua} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK{method}{cseq}{rnd};rport\r\nMax-Forwards: 70\r\nFrom: <sip:peer@127.0.0.1>;tag={tag}\r\nTo: <sip:ua@127.0.0.1>{to_tag}\r\nCall-ID: rsdp-{rnd}\r\nCSeq: {cseq} {method}\r\nContact: <sip:peer@{local}>\r\n{ctype}Content-Length: {}\r\n\r\n{body}",
            body.len(),
            ua = self.ua,
            tag = self.tag,
            cseq = self.cseq,
            rnd = self.a.local_addr().unwrap().port(),
        )
        .into_bytes()
    }

    /// A response to the UA's request, with our tag and optionally an SDP.
    fn reply(&self, req: &rsip::Request, code: u16, tag: &str, body: Option<String>) -> Vec<u8> {
        self.reply_typed(req, code, tag, body.map(|b| ("application/sdp".into(), b)))
    }

    /// Like `reply`, with the body's Content-Type given.
    fn reply_typed(
        &self,
        req: &rsip::Request,
        code: u16,
        tag: &str,
        body: Option<(String, String)>,
    ) -> Vec<u8> {
        let mut resp = m::response_to(req, code, Some(tag));
        resp.headers
            .push(header("Contact", format!("<sip:peer@{}>", self.addr())));
        if let Some((t, b)) = body {
            resp.headers.push(header("Content-Type", t));
            resp.body = b.into_bytes();
        }
        m::to_bytes(&SipMessage::Response(resp))
    }
}

/// The To tag of a response.
fn to_tag(resp: &rsip::Response) -> String {
    m::header_value(&resp.headers, "to")
        .and_then(|t| m::param(&t, "tag"))
        .unwrap_or_default()
}

/// Sends one PCMU packet from `from` to the endpoint.
async fn rtp_from(from: &UdpSocket, ep: &RtpEndpoint, seq: u16) {
    let pkt = rtp_rs::RtpPacketBuilder::new()
        .payload_type(0)
        .ssrc(from.local_addr().unwrap().port() as u32)
        .sequence(seq.into())
        .timestamp(seq as u32 * 160)
        .payload(&[0x55; 160])
        .build()
        .unwrap();
    from.send_to(&pkt, ep.local_addr().unwrap()).await.unwrap();
}

async fn hears(ep: &RtpEndpoint) -> bool {
    matches!(
        tokio::time::timeout(Duration::from_millis(500), ep.recv()).await,
        Ok(Some(RtpEvent::Audio { .. }))
    )
}

async fn gets(sock: &UdpSocket) -> bool {
    let mut buf = [0u8; 2048];
    tokio::time::timeout(Duration::from_millis(500), sock.recv_from(&mut buf))
        .await
        .is_ok()
}

/// Media first flows from port A and the endpoint latches onto it.
async fn latch_on_a(peer: &Peer, ep: &RtpEndpoint) {
    rtp_from(&peer.a, ep, 1).await;
    assert!(hears(ep).await, "port A's media is heard first");
}

/// After the SDP that moved the far end to port B: we send there, hear B and ignore A.
async fn media_follows_b(peer: &Peer, ep: &Arc<RtpEndpoint>) {
    assert_eq!(
        ep.remote().map(|a| a.port()),
        Some(peer.port_b()),
        "sending follows the new SDP"
    );
    ep.send_audio(&[0xff; 160], 160).unwrap();
    assert!(gets(&peer.b).await, "our RTP reaches port B");
    rtp_from(&peer.b, ep, 2).await;
    assert!(hears(ep).await, "port B's media is accepted");
    rtp_from(&peer.a, ep, 3).await;
    assert!(!hears(ep).await, "late media from port A is dropped");
}

/// The peer calls the UA with an offer on port A (or no offer); the UA answers.
async fn inbound_call(with_offer: bool) -> (Ua, Peer, bifrons_sip::Call) {
    let (ua, mut ev) = Ua::start(UaConfig::default()).await.unwrap();
    let mut peer = Peer::new(ua.local_addr()).await;
    let offer = with_offer.then(|| sdp(peer.port_a(), "sendrecv"));
    peer.cseq = 0;
    let invite = peer.request_bytes("INVITE", offer);
    peer.send(&invite).await;
    let call = match tokio::time::timeout(WAIT, ev.next()).await {
        Ok(Some(UaEvent::IncomingCall(c))) => c,
        other => panic!("no incoming call: {other:?}"),
    };
    call.answer().await.unwrap();
    let ok = peer.response(200).await;
    peer.ua_tag = to_tag(&ok);
    (ua, peer, call)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reinvite_moves_rtp_to_the_new_port() {
    let (_ua, mut peer, call) = inbound_call(true).await;
    let ack = peer.request_bytes("ACK", None);
    peer.send(&ack).await;
    let ep = call.rtp().unwrap().clone();
    latch_on_a(&peer, &ep).await;
    let reinvite = peer.request_bytes("INVITE", Some(sdp(peer.port_b(), "sendrecv")));
    peer.send(&reinvite).await;
    let ok = peer.response(200).await;
    assert!(!ok.body.is_empty(), "the re-INVITE is answered with SDP");
    let ack = peer.request_bytes("ACK", None);
    peer.send(&ack).await;
    media_follows_b(&peer, &ep).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_with_sdp_moves_rtp_and_is_answered_with_sdp() {
    let (_ua, mut peer, call) = inbound_call(true).await;
    let ack = peer.request_bytes("ACK", None);
    peer.send(&ack).await;
    let ep = call.rtp().unwrap().clone();
    latch_on_a(&peer, &ep).await;
    let update = peer.request_bytes("UPDATE", Some(sdp(peer.port_b(), "sendrecv")));
    peer.send(&update).await;
    let ok = peer.response(200).await;
    let answer = bifrons_sip::Sdp::parse(&ok.body).expect("UPDATE answered with SDP");
    assert_eq!(
        answer.audio_addr().unwrap(),
        ep.local_addr().unwrap(),
        "the answer names our endpoint"
    );
    media_follows_b(&peer, &ep).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdp_answer_in_ack_sets_the_remote_address() {
    // Late offer: INVITE without SDP, our 200 carries the offer, the ACK the answer.
    let (_ua, mut peer, call) = inbound_call(false).await;
    let ack = peer.request_bytes("ACK", Some(sdp(peer.port_b(), "sendrecv")));
    peer.send(&ack).await;
    let ep = call.rtp().unwrap().clone();
    tokio::time::sleep(Duration::from_millis(200)).await;
    media_follows_b(&peer, &ep).await;
}

/// The UA calls the peer; the peer answers early from port A with tag `early_tag`, then
/// with a 200 naming port B from tag `final_tag`.
async fn outbound_call_moved_by_final_answer(early_tag: &str, final_tag: &str) {
    let (ua, _ev) = Ua::start(UaConfig::default()).await.unwrap();
    let peer = Peer::new(ua.local_addr()).await;
    let target = format!("sip:peer@{}", peer.addr());
    let call = ua.call(&target, None).await.unwrap();
    let invite = peer.request("INVITE").await;
    let ep = call.rtp().unwrap().clone();
    let early = peer.reply(
        &invite,
        183,
        early_tag,
        Some(sdp(peer.port_a(), "sendrecv")),
    );
    peer.send(&early).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(ep.remote().map(|a| a.port()), Some(peer.port_a()));
    latch_on_a(&peer, &ep).await;
    let ok = peer.reply(
        &invite,
        200,
        final_tag,
        Some(sdp(peer.port_b(), "sendrecv")),
    );
    peer.send(&ok).await;
    let ack = peer.request("ACK").await;
    let to = m::header_value(&ack.headers, "to").unwrap();
    assert_eq!(m::param(&to, "tag").as_deref(), Some(final_tag));
    media_follows_b(&peer, &ep).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn final_answer_after_early_183_answer_moves_rtp() {
    outbound_call_moved_by_final_answer("t1", "t1").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forked_final_answer_from_another_branch_moves_rtp() {
    outbound_call_moved_by_final_answer("fork1", "fork2").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answer_to_our_reinvite_moves_rtp() {
    let (ua, _ev) = Ua::start(UaConfig::default()).await.unwrap();
    let peer = Peer::new(ua.local_addr()).await;
    let target = format!("sip:peer@{}", peer.addr());
    let call = Arc::new(ua.call(&target, None).await.unwrap());
    let invite = peer.request("INVITE").await;
    let ep = call.rtp().unwrap().clone();
    let ok = peer.reply(&invite, 200, "t1", Some(sdp(peer.port_a(), "sendrecv")));
    peer.send(&ok).await;
    peer.request("ACK").await;
    latch_on_a(&peer, &ep).await;
    let c2 = call.clone();
    let hold = tokio::spawn(async move { c2.hold().await });
    let reinvite = peer.request("INVITE").await;
    let ok = peer.reply(&reinvite, 200, "t1", Some(sdp(peer.port_b(), "recvonly")));
    peer.send(&ok).await;
    peer.request("ACK").await;
    hold.await.unwrap().unwrap();
    media_follows_b(&peer, &ep).await;
}

/// `sdp` wrapped as the first part of a `multipart/mixed` body next to an ISUP part.
fn multipart(sdp: String) -> (String, String) {
    (
        "multipart/mixed;boundary=bnd".into(),
        format!(
            "--bnd\r\nContent-Type: application/sdp\r\n\r\n{sdp}\r\n--bnd\r\nContent-Type: application/isup\r\n\r\nIAM\r\n--bnd--\r\n"
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_reinvite_moves_rtp_and_is_answered_with_plain_sdp() {
    let (_ua, mut peer, call) = inbound_call(true).await;
    let ack = peer.request_bytes("ACK", None);
    peer.send(&ack).await;
    let ep = call.rtp().unwrap().clone();
    latch_on_a(&peer, &ep).await;
    let reinvite = peer.request_typed("INVITE", Some(multipart(sdp(peer.port_b(), "sendrecv"))));
    peer.send(&reinvite).await;
    let ok = peer.response(200).await;
    assert!(bifrons_sip::Sdp::parse(&ok.body).is_ok());
    let ack = peer.request_bytes("ACK", None);
    peer.send(&ack).await;
    media_follows_b(&peer, &ep).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_final_answer_moves_rtp() {
    let (ua, _ev) = Ua::start(UaConfig::default()).await.unwrap();
    let peer = Peer::new(ua.local_addr()).await;
    let call = ua
        .call(&format!("sip:peer@{}", peer.addr()), None)
        .await
        .unwrap();
    let invite = peer.request("INVITE").await;
    let ep = call.rtp().unwrap().clone();
    let early = peer.reply_typed(
        &invite,
        183,
        "t1",
        Some(multipart(sdp(peer.port_a(), "sendrecv"))),
    );
    peer.send(&early).await;
    latch_on_a(&peer, &ep).await;
    let ok = peer.reply_typed(
        &invite,
        200,
        "t1",
        Some(multipart(sdp(peer.port_b(), "sendrecv"))),
    );
    peer.send(&ok).await;
    peer.request("ACK").await;
    media_follows_b(&peer, &ep).await;
}
