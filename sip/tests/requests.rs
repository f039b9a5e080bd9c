//! MESSAGE, OPTIONS and REFER through kamailio.

mod common;

use bifrons_sip::{CallEvent, UaEvent};
use common::{registered_ua, Baresip, Kamailio};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_is_delivered_between_two_uas_and_options_reach_baresip() {
    let k = Kamailio::start("MD5");
    let _bob = Baresip::start(&k, "bob", 1000.0, true);
    let (alice, _a) = registered_ua(&k, "alice").await;
    let (_carol, mut carol_ev) = registered_ua(&k, "carol").await;
    // alice's MESSAGE is proxy-challenged (407) by kamailio, then delivered.
    let code = alice
        .message(&k.uri("carol"), "text/plain", b"hello carol".to_vec())
        .await
        .expect("MESSAGE");
    assert_eq!(code, 200);
    let got = loop {
        match tokio::time::timeout(Duration::from_secs(10), carol_ev.next()).await {
            Ok(Some(UaEvent::Message {
                from,
                content_type,
                body,
                ..
            })) => break (from, content_type, body),
            Ok(Some(_)) => continue,
            other => panic!("no MESSAGE event: {other:?}"),
        }
    };
    assert!(got.0.contains("alice"), "{got:?}");
    assert_eq!(got.1, "text/plain");
    assert_eq!(got.2, b"hello carol");
    assert_eq!(alice.options(&k.uri("bob")).await.expect("OPTIONS"), 200);
    assert!(k.log().contains("REQ MESSAGE"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refer_from_baresip_is_accepted_and_reported() {
    let k = Kamailio::start("MD5");
    let bob = Baresip::start(&k, "bob", 1000.0, true);
    let (ua, _ev) = registered_ua(&k, "alice").await;
    let mut call = ua.call(&k.uri("bob"), None).await.unwrap();
    loop {
        match tokio::time::timeout(Duration::from_secs(20), call.next_event()).await {
            Ok(Some(CallEvent::Answered)) => break,
            Ok(Some(_)) => continue,
            other => panic!("not answered: {other:?}"),
        }
    }
    bob.command("transfer", &k.uri("dave"));
    let target = loop {
        match tokio::time::timeout(Duration::from_secs(10), call.next_event()).await {
            Ok(Some(CallEvent::Refer { target })) => break target,
            Ok(Some(_)) => continue,
            other => panic!("no REFER: {other:?}\n{}", bob.log()),
        }
    };
    assert!(target.contains("dave"), "{target}");
    call.hangup().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn application_managed_sdp_is_carried_both_ways() {
    use bifrons_sip::{Codec, Direction, Sdp};
    let k = Kamailio::start("MD5");
    let (alice, _a) = registered_ua(&k, "alice").await;
    let (_carol, mut carol_ev) = registered_ua(&k, "carol").await;
    let offer = Sdp::offer(
        "127.0.0.1:41000".parse().unwrap(),
        &[Codec::Opus, Codec::Pcmu],
        Direction::SendRecv,
        11,
        1,
    );
    let mut call = alice.call(&k.uri("carol"), Some(offer)).await.unwrap();
    assert!(
        call.rtp().is_none(),
        "no UA-managed media when the application gives the SDP"
    );
    let incoming = loop {
        match tokio::time::timeout(Duration::from_secs(10), carol_ev.next()).await {
            Ok(Some(UaEvent::IncomingCall(c))) => break c,
            Ok(Some(_)) => continue,
            other => panic!("no call: {other:?}"),
        }
    };
    let got = incoming.remote_offer().expect("offer").clone();
    assert_eq!(
        got.audio_addr().unwrap(),
        "127.0.0.1:41000".parse().unwrap()
    );
    let (answer, neg) = Sdp::answer(
        &got,
        &[Codec::Opus],
        "127.0.0.1:42000".parse().unwrap(),
        Direction::SendRecv,
        22,
    )
    .unwrap();
    assert_eq!(neg.codec, Codec::Opus);
    incoming.answer_with_sdp(answer).await.unwrap();
    let mut remote = None;
    loop {
        match tokio::time::timeout(Duration::from_secs(10), call.next_event()).await {
            Ok(Some(CallEvent::RemoteSdp(s))) => remote = Some(s),
            Ok(Some(CallEvent::Answered)) => break,
            Ok(Some(_)) => continue,
            other => panic!("not answered: {other:?}"),
        }
    }
    let remote = remote.expect("RemoteSdp before Answered");
    assert_eq!(
        remote.audio_addr().unwrap(),
        "127.0.0.1:42000".parse().unwrap()
    );
    assert_eq!(remote.audio().unwrap().formats[0], 111);
    call.hangup().await.unwrap();
}
