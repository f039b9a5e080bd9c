//! INVITEs whose SDP comes inside a multipart body (RFC 5621), as PSTN gateways send it with
//! an ISUP part next to it; and bodies without SDP, refused with 415 and `Accept`.

use bifrons_sip::message as m;
use bifrons_sip::{Ua, UaConfig, UaEvent};
use rsip::SipMessage;
use std::time::Duration;
use tokio::net::UdpSocket;

const WAIT: Duration = Duration::from_secs(5);

fn sdp(port: u16) -> String {
    format!("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {port} RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n")
}

fn invite(local: std::net::SocketAddr, call_id: &str, ctype: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "INVITE sip:ua@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK{call_id};rport\r\nMax-Forwards: 70\r\nFrom: <sip:gw@127.0.0.1>;tag=g1\r\nTo: <sip:ua@127.0.0.1>\r\nCall-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContact: <sip:gw@{local}>\r\nMIME-Version: 1.0\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

/// Sends the INVITE and returns the UA's first final response, answering the call (with the
/// UA's own media) if it is offered to the application.
async fn final_response(ctype: &str, body: &[u8], call_id: &str) -> (rsip::Response, u16) {
    let (ua, mut ev) = Ua::start(UaConfig::default()).await.unwrap();
    let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let local = peer.local_addr().unwrap();
    peer.send_to(&invite(local, call_id, ctype, body), ua.local_addr())
        .await
        .unwrap();
    let mut call = None;
    let mut buf = vec![0u8; 8192];
    loop {
        tokio::select! {
            e = ev.next(), if call.is_none() => {
                if let Some(UaEvent::IncomingCall(c)) = e {
                    c.answer().await.unwrap();
                    call = Some(c);
                }
            }
            r = tokio::time::timeout(WAIT, peer.recv_from(&mut buf)) => {
                let (n, _) = r.expect("a response").unwrap();
                if let Ok(SipMessage::Response(resp)) = m::parse(&buf[..n]) {
                    let code = m::status(&resp);
                    if code >= 200 {
                        let remote_port = call
                            .as_ref()
                            .and_then(|c| c.rtp())
                            .and_then(|ep| ep.remote())
                            .map(|a| a.port())
                            .unwrap_or(0);
                        return (resp, remote_port);
                    }
                }
            }
        }
    }
}

/// RFC 5621 §3.1 / RFC 3204: SDP and an ISUP IAM in one `multipart/mixed` INVITE.
fn sdp_and_isup(boundary: &str, sdp_port: u16) -> Vec<u8> {
    let mut b = format!(
        "--{boundary}\r\nContent-Type: application/sdp\r\n\r\n{}\r\n--{boundary}\r\nContent-Type: application/isup;version=itu-t92+\r\nContent-Disposition: signal;handling=optional\r\n\r\n",
        sdp(sdp_port)
    )
    .into_bytes();
    b.extend_from_slice(&[0x01, 0x00, 0x49, 0x00, 0x00, 0x03, 0x02, 0x00, 0x07]);
    b.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    b
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invite_with_sdp_and_isup_parts_is_answered_from_the_sdp_part() {
    let (resp, remote_port) = final_response(
        "multipart/mixed;boundary=unique-boundary-1",
        &sdp_and_isup("unique-boundary-1", 40010),
        "mp1",
    )
    .await;
    assert_eq!(m::status(&resp), 200);
    assert_eq!(
        m::header_value(&resp.headers, "content-type").as_deref(),
        Some("application/sdp")
    );
    let answer = bifrons_sip::Sdp::parse(&resp.body).expect("SDP answer");
    assert!(answer.audio().is_some());
    assert_eq!(remote_port, 40010, "media goes where the SDP part says");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_alternative_invite_with_quoted_boundary_is_answered() {
    let body = format!(
        "preamble\r\n--a b\r\nContent-Type: text/plain\r\n\r\ncall me\r\n--a b\r\ncontent-type: Application/SDP\r\n\r\n{}\r\n--a b--\r\nepilogue",
        sdp(40020)
    );
    let (resp, remote_port) = final_response(
        "multipart/alternative; boundary=\"a b\"",
        body.as_bytes(),
        "mp2",
    )
    .await;
    assert_eq!(m::status(&resp), 200);
    assert_eq!(remote_port, 40020);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_invite_with_lf_line_breaks_is_answered() {
    let body = String::from_utf8_lossy(&sdp_and_isup("lf", 40030)).replace("\r\n", "\n");
    let (resp, remote_port) =
        final_response("multipart/mixed;boundary=lf", body.as_bytes(), "mp3").await;
    assert_eq!(m::status(&resp), 200);
    assert_eq!(remote_port, 40030);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invite_without_an_sdp_part_gets_415_with_accept() {
    let body = b"--b\r\nContent-Type: application/isup\r\n\r\n\x01\x00\x49\r\n--b--\r\n";
    let (resp, _) = final_response("multipart/mixed;boundary=b", body, "mp4").await;
    assert_eq!(m::status(&resp), 415);
    assert_eq!(
        m::header_value(&resp.headers, "accept").as_deref(),
        Some("application/sdp")
    );
    let (resp, _) = final_response("application/isup", b"\x01\x00\x49", "mp5").await;
    assert_eq!(m::status(&resp), 415);
    assert_eq!(
        m::header_value(&resp.headers, "accept").as_deref(),
        Some("application/sdp")
    );
}
