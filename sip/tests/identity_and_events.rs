//! What the gateway's SIP plugin relies on beyond plain calls: a user agent without a
//! registration can still call as a given identity (an extension on a trunk authenticated by
//! IP address), and a call's event stream can be moved out to one task while the `Call` is
//! shared by others, and the application's own headers go out with the INVITE. Against a raw
//! UDP socket peer that answers by hand.

use bifrons_sip::{CallEvent, Codec, Direction, Sdp, Ua, UaConfig};
use std::net::UdpSocket;
use std::time::Duration;

fn header<'a>(msg: &'a str, name: &str) -> Option<&'a str> {
    msg.lines()
        .find(|l| {
            l.to_ascii_lowercase()
                .starts_with(&format!("{}:", name.to_ascii_lowercase()))
        })
        .map(|l| l[name.len() + 1..].trim())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unregistered_ua_calls_as_its_identity_with_custom_headers_and_events_can_be_taken() {
    let (ua, _ev) = Ua::start(UaConfig {
        identity: Some(("frontdesk".into(), "example.org".into())),
        ..UaConfig::default()
    })
    .await
    .unwrap();
    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let target = format!("sip:bob@{}", peer.local_addr().unwrap());
    let offer = Sdp::offer(
        "127.0.0.1:40000".parse().unwrap(),
        &[Codec::Pcmu],
        Direction::SendRecv,
        1,
        1,
    );
    let mut call = ua
        .call_with_headers(
            &target,
            Some(offer),
            vec![("X-Campaign".into(), "42".into())],
        )
        .await
        .unwrap();
    let mut events = call.take_events();
    // The Call itself no longer yields events; the taken stream does.
    assert_eq!(
        tokio::time::timeout(Duration::from_millis(200), call.next_event())
            .await
            .expect("returns at once"),
        None
    );

    let mut buf = [0u8; 8192];
    let (n, from) = peer.recv_from(&mut buf).expect("an INVITE");
    let invite = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(invite.starts_with("INVITE sip:bob@"), "{invite}");
    let from_header = header(&invite, "From").expect("From");
    assert!(
        from_header.contains("<sip:frontdesk@example.org>"),
        "From names the identity: {from_header}"
    );
    assert_eq!(header(&invite, "X-Campaign"), Some("42"), "{invite}");
    let contact = header(&invite, "Contact").expect("Contact");
    assert!(contact.contains("sip:frontdesk@"), "Contact: {contact}");

    // Refuse it: the Failed event arrives on the taken stream.
    let busy = format!(
        "SIP/2.0 486 Busy Here\r\nVia: {}\r\nFrom: {}\r\nTo: {};tag=b1\r\nCall-ID: {}\r\nCSeq: {}\r\nContent-Length: 0\r\n\r\n",
        header(&invite, "Via").unwrap(),
        from_header,
        header(&invite, "To").unwrap(),
        header(&invite, "Call-ID").unwrap(),
        header(&invite, "CSeq").unwrap(),
    );
    peer.send_to(busy.as_bytes(), from).unwrap();
    let failed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match events.next().await {
                Some(CallEvent::Failed { code, .. }) => return code,
                Some(_) => continue,
                None => return 0,
            }
        }
    })
    .await
    .expect("a final answer");
    assert_eq!(failed, 486);
}
