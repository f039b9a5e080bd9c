//! Requests inside a call's dialog, through kamailio: MESSAGE and INFO both ways between two
//! user agents, a re-INVITE with a new offer, and a blind transfer (REFER) that baresip
//! carries out, reporting its progress in NOTIFYs.

mod common;

use bifrons_sip::{Call, CallEvent, Codec, Direction, Sdp, UaEvent};
use common::{registered_ua, Baresip, Kamailio};
use std::time::Duration;

async fn until<T>(call: &mut Call, what: &str, mut pick: impl FnMut(CallEvent) -> Option<T>) -> T {
    loop {
        match tokio::time::timeout(Duration::from_secs(20), call.next_event()).await {
            Ok(Some(e)) => {
                if let Some(t) = pick(e) {
                    return t;
                }
            }
            other => panic!("no {what}: {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_info_and_reoffer_inside_a_call() {
    let k = Kamailio::start("MD5");
    let (alice, _a) = registered_ua(&k, "alice").await;
    let (_carol, mut carol_ev) = registered_ua(&k, "carol").await;
    let mut call = alice.call(&k.uri("carol"), None).await.unwrap();
    let mut incoming = loop {
        match tokio::time::timeout(Duration::from_secs(10), carol_ev.next()).await {
            Ok(Some(UaEvent::IncomingCall(c))) => break c,
            Ok(Some(_)) => continue,
            other => panic!("no call: {other:?}"),
        }
    };
    incoming.answer().await.unwrap();
    until(&mut call, "answer", |e| {
        (e == CallEvent::Answered).then_some(())
    })
    .await;

    // MESSAGE in the dialog: carol's call gets it, not carol's user agent.
    let (code, reason) = call
        .send_message(
            "text/plain",
            b"hi in dialog".to_vec(),
            vec![("X-Tag".into(), "7".into())],
        )
        .await
        .unwrap();
    assert_eq!((code, reason.as_str()), (200, "OK"));
    let (from, body) = until(&mut incoming, "MESSAGE", |e| match e {
        CallEvent::Message {
            from,
            body,
            content_type,
            ..
        } => {
            assert_eq!(content_type, "text/plain");
            Some((from, body))
        }
        _ => None,
    })
    .await;
    assert!(from.contains("alice"), "{from}");
    assert_eq!(body, b"hi in dialog");

    // INFO of a type other than DTMF, the other way.
    let (code, _) = incoming
        .request(
            rsip::Method::Info,
            Some("application/x-note"),
            b"n=1".to_vec(),
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(code, 200);
    let (ct, body) = until(&mut call, "INFO", |e| match e {
        CallEvent::Info {
            content_type,
            body,
            from,
            ..
        } => {
            assert!(from.contains("carol"), "{from}");
            Some((content_type, body))
        }
        _ => None,
    })
    .await;
    assert_eq!(
        (ct.as_str(), body.as_slice()),
        ("application/x-note", &b"n=1"[..])
    );

    // A re-INVITE with the current offer: carol answers, the session goes on.
    let answer = call.reoffer(None).await.unwrap().expect("SDP answer");
    assert!(answer.audio().is_some(), "{answer:?}");
    until(&mut incoming, "Reinvited", |e| {
        matches!(e, CallEvent::Reinvited { .. }).then_some(())
    })
    .await;
    // A new offer (PCMU only, sendonly): carol's answer follows it, and carol sees the offer.
    let local = call.rtp().expect("UA-managed media").local_addr().unwrap();
    let offer = Sdp::offer(local, &[Codec::Pcmu], Direction::SendOnly, 5, 1);
    let answer = call
        .reoffer(Some(offer))
        .await
        .unwrap()
        .expect("SDP answer");
    let media = answer.audio().expect("audio");
    assert_eq!(media.direction, Direction::RecvOnly, "{answer:?}");
    assert_eq!(media.formats[0], 0, "PCMU: {answer:?}");
    let seen = until(&mut incoming, "Reinvited with the new offer", |e| match e {
        CallEvent::Reinvited { sdp } => Some(sdp),
        _ => None,
    })
    .await;
    assert_eq!(seen.audio().unwrap().direction, Direction::SendOnly);
    assert_eq!(seen.version, 3, "origin version: 1, then 2, then 3");
    assert!(k.log().contains("REQ MESSAGE"));
    call.hangup().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blind_transfer_to_baresip_reports_notify_progress() {
    let k = Kamailio::start("MD5");
    let bob = Baresip::start(&k, "bob", 1000.0, true);
    let dave = Baresip::start(&k, "dave", 700.0, true);
    let (ua, _ev) = registered_ua(&k, "alice").await;
    let mut call = ua.call(&k.uri("bob"), None).await.unwrap();
    until(&mut call, "answer", |e| {
        (e == CallEvent::Answered).then_some(())
    })
    .await;
    assert!(matches!(
        call.refer("bad uri").await,
        Err(bifrons_sip::SipError::InvalidUri(_))
    ));
    let (code, _) = call.refer(&k.uri("dave")).await.unwrap();
    assert_eq!(code, 202, "bob accepts the transfer:\n{}", bob.log());
    // bob calls dave and tells us how it goes, ending with a 2xx sipfrag.
    let mut seen = Vec::new();
    until(&mut call, "final NOTIFY", |e| match e {
        CallEvent::Notify {
            event,
            substate,
            content_type,
            body,
        } => {
            assert_eq!(event, "refer");
            assert_eq!(content_type, "message/sipfrag");
            let frag = String::from_utf8_lossy(&body).to_string();
            seen.push((substate, frag.clone()));
            frag.starts_with("SIP/2.0 200").then_some(())
        }
        CallEvent::Ended(_) => panic!("call ended before a final NOTIFY: {seen:?}"),
        _ => None,
    })
    .await;
    assert!(
        dave.wait_for_log("Call established", Duration::from_secs(10))
            .is_some()
            || dave.log().contains("answer"),
        "dave got the call:\n{}",
        dave.log()
    );
    let _ = call.hangup().await;
}
