//! UAS behaviour against a raw socket peer that misbehaves on purpose: the 2xx to an INVITE is
//! retransmitted (T1 doubling, capped at T2) until an ACK arrives, and without ACK the call is
//! ended with a BYE after 64*T1. Short timers keep the test quick.

use bifrons_sip::transaction::Timers;
use bifrons_sip::{CallEvent, EndReason, Ua, UaConfig, UaEvent};
use std::net::UdpSocket;
use std::time::{Duration, Instant};

fn invite(local: std::net::SocketAddr, call_id: &str) -> Vec<u8> {
    let sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n";
    format!(
        "INVITE sip:ua@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK{call_id};rport\r\nMax-Forwards: 70\r\nFrom: <sip:peer@127.0.0.1>;tag=p1\r\nTo: <sip:ua@127.0.0.1>\r\nCall-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContact: <sip:peer@{local}>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    )
    .into_bytes()
}

fn first_line(b: &[u8]) -> String {
    String::from_utf8_lossy(b)
        .lines()
        .next()
        .unwrap_or("")
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unacknowledged_2xx_is_retransmitted_then_the_call_is_ended_with_bye() {
    let t1 = Duration::from_millis(40);
    let timers = Timers {
        t1,
        t2: Duration::from_millis(160),
        t4: Duration::from_millis(200),
    };
    let (ua, mut ev) = Ua::start(UaConfig {
        timers,
        ..UaConfig::default()
    })
    .await
    .unwrap();
    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    peer.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    peer.send_to(
        &invite(peer.local_addr().unwrap(), "retx1"),
        ua.local_addr(),
    )
    .unwrap();
    let mut call = match tokio::time::timeout(Duration::from_secs(5), ev.next()).await {
        Ok(Some(UaEvent::IncomingCall(c))) => c,
        other => panic!("no incoming call: {other:?}"),
    };
    call.answer().await.unwrap();
    let start = Instant::now();
    let (mut oks, mut bye_at) = (Vec::new(), None);
    let mut buf = [0u8; 4096];
    while start.elapsed() < Duration::from_secs(6) && bye_at.is_none() {
        let Ok((n, _)) = peer.recv_from(&mut buf) else {
            continue;
        };
        let line = first_line(&buf[..n]);
        if line.starts_with("SIP/2.0 200") {
            oks.push(start.elapsed());
        } else if line.starts_with("BYE ") {
            bye_at = Some(start.elapsed());
        }
    }
    // First 200 plus retransmissions at T1, 2T1, 4T1, then every T2 until 64*T1 = 2.56 s.
    assert!(
        oks.len() >= 8,
        "only {} 2xx transmissions: {oks:?}",
        oks.len()
    );
    let gaps: Vec<u128> = oks.windows(2).map(|w| (w[1] - w[0]).as_millis()).collect();
    assert!(
        gaps[0] >= 30 && gaps[1] >= 60 && gaps[2] >= 120,
        "T1 doubling: {gaps:?}"
    );
    // Uncapped doubling would reach 640 ms; allow scheduling slack above T2 = 160 ms.
    assert!(gaps.iter().all(|&g| g <= 450), "capped at T2: {gaps:?}");
    let bye = bye_at.expect("BYE after giving up on the ACK");
    assert!(
        bye >= Duration::from_millis(2400),
        "gave up too early: {bye:?}"
    );
    loop {
        match tokio::time::timeout(Duration::from_secs(5), call.next_event()).await {
            Ok(Some(CallEvent::Ended(r))) => {
                assert_eq!(r, EndReason::AckTimeout);
                break;
            }
            Ok(Some(_)) => continue,
            other => panic!("call not ended: {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ack_stops_2xx_retransmissions_and_retransmitted_invite_gets_the_same_response() {
    let (ua, mut ev) = Ua::start(UaConfig::default()).await.unwrap();
    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    peer.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let local = peer.local_addr().unwrap();
    let inv = invite(local, "retx2");
    peer.send_to(&inv, ua.local_addr()).unwrap();
    let mut buf = [0u8; 4096];
    let (n, _) = peer.recv_from(&mut buf).unwrap();
    let ringing = buf[..n].to_vec();
    assert!(
        first_line(&ringing).starts_with("SIP/2.0 180"),
        "{}",
        first_line(&ringing)
    );
    // A retransmitted INVITE is absorbed by the server transaction: the same 180 comes back.
    peer.send_to(&inv, ua.local_addr()).unwrap();
    let (n, _) = peer.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], &ringing[..]);
    let mut call = match tokio::time::timeout(Duration::from_secs(5), ev.next()).await {
        Ok(Some(UaEvent::IncomingCall(c))) => c,
        other => panic!("no incoming call: {other:?}"),
    };
    call.answer().await.unwrap();
    let (n, _) = peer.recv_from(&mut buf).unwrap();
    let ok = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(ok.starts_with("SIP/2.0 200"), "{ok}");
    assert!(ok.contains("m=audio "), "2xx carries the SDP answer");
    let to = ok
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("to:"))
        .unwrap()
        .to_string();
    let ack = format!(
        "ACK sip:ua@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKack2\r\nMax-Forwards: 70\r\nFrom: <sip:peer@127.0.0.1>;tag=p1\r\n{to}\r\nCall-ID: retx2\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"
    );
    peer.send_to(ack.as_bytes(), ua.local_addr()).unwrap();
    loop {
        match tokio::time::timeout(Duration::from_secs(5), call.next_event()).await {
            Ok(Some(CallEvent::Answered)) => break,
            Ok(Some(_)) => continue,
            other => panic!("no Answered after ACK: {other:?}"),
        }
    }
    // Drain anything sent before the ACK was processed, then expect silence for > 2*T1.
    std::thread::sleep(Duration::from_millis(200));
    peer.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    while peer.recv_from(&mut buf).is_ok() {}
    peer.set_read_timeout(Some(Duration::from_millis(1500)))
        .unwrap();
    let more = peer
        .recv_from(&mut buf)
        .ok()
        .map(|(n, _)| first_line(&buf[..n]));
    assert!(
        !more.as_deref().unwrap_or("").starts_with("SIP/2.0 200"),
        "2xx still retransmitted after ACK"
    );
}
