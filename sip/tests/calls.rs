//! Calls through kamailio with baresip as the far end: media both ways checked by FFT,
//! CANCEL, busy, unknown user, hold/unhold, DTMF.

mod common;

use bifrons_sip::media::{play_ulaw, record_ulaw};
use bifrons_sip::wav::Wav;
use bifrons_sip::{Call, CallEvent, EndReason, UaEvent, UaEvents};
use common::{dominant_frequency, registered_ua, Baresip, Kamailio};
use std::sync::atomic::Ordering;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

/// Waits for an event matching `pred`, returning it; panics with the events seen otherwise.
async fn wait_event(call: &mut Call, pred: impl Fn(&CallEvent) -> bool) -> CallEvent {
    let mut seen = vec![];
    loop {
        match tokio::time::timeout(WAIT, call.next_event()).await {
            Ok(Some(e)) if pred(&e) => return e,
            Ok(Some(e)) => seen.push(e),
            other => panic!("event not seen ({other:?}); saw {seen:?}"),
        }
    }
}

async fn incoming_call(ev: &mut UaEvents) -> Call {
    loop {
        match tokio::time::timeout(WAIT, ev.next()).await {
            Ok(Some(UaEvent::IncomingCall(c))) => return c,
            Ok(Some(_)) => continue,
            other => panic!("no incoming call: {other:?}"),
        }
    }
}

/// Plays `tone_hz` into the call and records for `secs`; returns the received samples.
async fn exchange_media(call: &Call, tone_hz: f64, secs: u64) -> Vec<i16> {
    let rtp = call.rtp().expect("UA-managed media").clone();
    let tone = Wav::tone(8000, tone_hz, 1.0, 0.3).samples;
    let player = {
        let rtp = rtp.clone();
        tokio::spawn(async move { play_ulaw(&rtp, &tone, Duration::from_secs(secs)).await })
    };
    let rec = record_ulaw(&rtp, Duration::from_secs(secs)).await;
    player.await.unwrap().expect("played");
    assert!(
        rec.packets > 25 * secs,
        "received only {} packets",
        rec.packets
    );
    rec.samples
}

fn wait_for_baresip_wav(b: &Baresip) -> Wav {
    for _ in 0..100 {
        if let Some(w) = b.received_wav() {
            if w.samples.len() > 8000 {
                return w;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("baresip wrote no received audio; log:\n{}", b.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_call_to_baresip_carries_tones_both_ways_and_hangs_up() {
    let k = Kamailio::start("MD5");
    let bob = Baresip::start(&k, "bob", 1000.0, true);
    let (ua, _ev) = registered_ua(&k, "alice").await;
    let mut call = ua.call(&k.uri("bob"), None).await.expect("INVITE sent");
    wait_event(&mut call, |e| *e == CallEvent::Answered).await;
    let got = exchange_media(&call, 440.0, 3).await;
    let f = dominant_frequency(&got, 8000);
    assert!(
        (f - 1000.0).abs() < 20.0,
        "we received {f} Hz, expected baresip's 1000 Hz"
    );
    call.hangup().await.expect("BYE");
    wait_event(&mut call, |e| *e == CallEvent::Ended(EndReason::Local)).await;
    let heard = wait_for_baresip_wav(&bob);
    let f = dominant_frequency(&heard.samples, heard.rate);
    assert!(
        (f - 440.0).abs() < 20.0,
        "baresip heard {f} Hz, expected our 440 Hz"
    );
    assert!(
        bob.wait_for_log("BYE", Duration::from_secs(5)).is_some() || bob.log().contains("closed"),
        "baresip saw the hangup"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbound_call_from_baresip_is_answered_with_media_and_remote_bye() {
    let k = Kamailio::start("MD5");
    let bob = Baresip::start(&k, "bob", 700.0, true);
    let (_ua, mut ev) = registered_ua(&k, "alice").await;
    let reply = bob.command("dial", &k.uri("alice"));
    assert!(reply.contains("true") || reply.is_empty(), "dial: {reply}");
    let mut call = incoming_call(&mut ev).await;
    assert!(call.remote().contains("bob"), "{}", call.remote());
    call.answer().await.expect("200 OK");
    wait_event(&mut call, |e| *e == CallEvent::Answered).await;
    let got = exchange_media(&call, 1200.0, 3).await;
    let f = dominant_frequency(&got, 8000);
    assert!(
        (f - 700.0).abs() < 20.0,
        "we received {f} Hz, expected 700 Hz"
    );
    bob.command("hangup", "");
    wait_event(&mut call, |e| *e == CallEvent::Ended(EndReason::RemoteBye)).await;
    let heard = wait_for_baresip_wav(&bob);
    let f = dominant_frequency(&heard.samples, heard.rate);
    assert!(
        (f - 1200.0).abs() < 20.0,
        "baresip heard {f} Hz, expected 1200 Hz"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_before_answer_ends_the_call_as_cancelled() {
    let k = Kamailio::start("MD5");
    let bob = Baresip::start(&k, "bob", 1000.0, false);
    let (ua, _ev) = registered_ua(&k, "alice").await;
    let mut call = ua.call(&k.uri("bob"), None).await.unwrap();
    wait_event(&mut call, |e| matches!(e, CallEvent::Ringing { .. })).await;
    call.hangup().await.expect("CANCEL");
    wait_event(&mut call, |e| *e == CallEvent::Ended(EndReason::Cancelled)).await;
    assert!(k.log().contains("REQ CANCEL"), "kamailio saw the CANCEL");
    drop(bob);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_callee_is_reported_as_486() {
    let k = Kamailio::start("MD5");
    let bob = Baresip::start(&k, "bob", 1000.0, false);
    let (ua, _ev) = registered_ua(&k, "alice").await;
    let mut call = ua.call(&k.uri("bob"), None).await.unwrap();
    wait_event(&mut call, |e| matches!(e, CallEvent::Ringing { .. })).await;
    bob.command("hangup", "");
    let e = wait_event(&mut call, |e| matches!(e, CallEvent::Failed { .. })).await;
    assert!(matches!(e, CallEvent::Failed { code: 486, .. }), "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_to_unregistered_user_fails_with_404() {
    let k = Kamailio::start("MD5");
    let (ua, _ev) = registered_ua(&k, "alice").await;
    let mut call = ua.call(&k.uri("dave"), None).await.unwrap();
    let e = wait_event(&mut call, |e| matches!(e, CallEvent::Failed { .. })).await;
    assert!(
        matches!(
            e,
            CallEvent::Failed {
                code: 404 | 480,
                ..
            }
        ),
        "{e:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hold_and_unhold_reinvites_stop_and_restart_remote_media_and_dtmf_reaches_baresip() {
    let k = Kamailio::start("MD5");
    let bob = Baresip::start(&k, "bob", 1000.0, true);
    let (ua, _ev) = registered_ua(&k, "alice").await;
    let mut call = ua.call(&k.uri("bob"), None).await.unwrap();
    wait_event(&mut call, |e| *e == CallEvent::Answered).await;
    let rtp = call.rtp().unwrap().clone();
    let _ = record_ulaw(&rtp, Duration::from_millis(500)).await;

    call.hold().await.expect("hold re-INVITE accepted");
    wait_event(&mut call, |e| *e == CallEvent::LocalHold(true)).await;
    let _ = record_ulaw(&rtp, Duration::from_millis(300)).await; // drain in-flight packets
    let held = record_ulaw(&rtp, Duration::from_secs(1)).await;
    call.unhold().await.expect("unhold re-INVITE accepted");
    wait_event(&mut call, |e| *e == CallEvent::LocalHold(false)).await;
    let resumed = record_ulaw(&rtp, Duration::from_secs(1)).await;
    assert!(
        held.packets < 5,
        "baresip kept sending while on hold: {}",
        held.packets
    );
    assert!(
        resumed.packets > 25,
        "media did not resume: {}",
        resumed.packets
    );
    let invites = k.log().matches("REQ INVITE").count();
    assert!(
        invites >= 4,
        "initial INVITE (+auth retry) and two re-INVITEs expected, kamailio saw {invites}"
    );

    call.send_dtmf('5', 160).await.expect("RFC 4733");
    let code = call
        .send_info(
            "application/dtmf-relay",
            b"Signal=7\r\nDuration=160\r\n".to_vec(),
        )
        .await
        .expect("INFO");
    assert_eq!(code, 200);
    let log = bob
        .wait_for_log("'7'", Duration::from_secs(5))
        .unwrap_or_else(|| bob.log());
    assert!(
        log.contains("'5'"),
        "baresip did not log the RFC 4733 digit:\n{log}"
    );
    assert!(
        log.contains("'7'"),
        "baresip did not log the INFO digit:\n{log}"
    );
    call.hangup().await.unwrap();
    assert_eq!(rtp.stats().foreign.load(Ordering::Relaxed), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn early_media_183_with_sdp_reaches_baresip_before_answer() {
    let k = Kamailio::start("MD5");
    let bob = Baresip::start_mode(&k, "bob", 900.0, "early");
    let (ua, _ev) = registered_ua(&k, "alice").await;
    let mut call = ua.call(&k.uri("bob"), None).await.unwrap();
    wait_event(&mut call, |e| {
        *e == CallEvent::Ringing { early_media: true }
    })
    .await;
    let rtp = call.rtp().unwrap().clone();
    let tone = Wav::tone(8000, 300.0, 1.0, 0.3).samples;
    let player = tokio::spawn(async move { play_ulaw(&rtp, &tone, Duration::from_secs(1)).await });
    // baresip's early mode answers 183 with SDP and receives (but does not send) early media:
    // it must see our RTP before any 200 OK.
    let log = bob.wait_for_log(
        "incoming rtp for 'audio' established",
        Duration::from_secs(5),
    );
    let _ = player.await;
    assert!(
        log.is_some(),
        "baresip got no early media; log:\n{}",
        bob.log()
    );
    assert!(
        !bob.log().contains("call established"),
        "the call must still be early"
    );
    call.hangup().await.unwrap();
    wait_event(&mut call, |e| *e == CallEvent::Ended(EndReason::Cancelled)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirect_302_is_followed_to_the_new_target() {
    let k = Kamailio::start("MD5");
    let _bob = Baresip::start(&k, "bob", 1000.0, true);
    let (ua, _ev) = registered_ua(&k, "alice").await;
    let mut call = ua.call(&k.uri("forward"), None).await.unwrap();
    let e = wait_event(&mut call, |e| matches!(e, CallEvent::Redirected { .. })).await;
    assert!(
        matches!(&e, CallEvent::Redirected { target } if target.contains("bob")),
        "{e:?}"
    );
    wait_event(&mut call, |e| *e == CallEvent::Answered).await;
    call.hangup().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc4733_dtmf_from_baresip_is_received() {
    let k = Kamailio::start("MD5");
    let bob = Baresip::start(&k, "bob", 1000.0, true);
    let (ua, _ev) = registered_ua(&k, "alice").await;
    let mut call = ua.call(&k.uri("bob"), None).await.unwrap();
    wait_event(&mut call, |e| *e == CallEvent::Answered).await;
    let rtp = call.rtp().unwrap().clone();
    let rec = tokio::spawn(async move { record_ulaw(&rtp, Duration::from_secs(3)).await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    bob.command("sndcode", "3");
    let rec = rec.await.unwrap();
    assert_eq!(rec.dtmf, vec!['3'], "baresip log:\n{}", bob.log());
    call.hangup().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn info_dtmf_between_two_uas_is_reported_as_dtmf_event() {
    // baresip 1.0 sends DTMF only as RFC 4733, so the receiving side of INFO is checked
    // between two of our UAs through kamailio.
    let k = Kamailio::start("MD5");
    let (alice, _a) = registered_ua(&k, "alice").await;
    let (_carol, mut carol_ev) = registered_ua(&k, "carol").await;
    let mut call = alice.call(&k.uri("carol"), None).await.unwrap();
    let mut incoming = incoming_call(&mut carol_ev).await;
    incoming.answer().await.unwrap();
    wait_event(&mut call, |e| *e == CallEvent::Answered).await;
    wait_event(&mut incoming, |e| *e == CallEvent::Answered).await;
    let code = call
        .send_info(
            "application/dtmf-relay",
            b"Signal=9\r\nDuration=160\r\n".to_vec(),
        )
        .await
        .unwrap();
    assert_eq!(code, 200);
    let e = wait_event(&mut incoming, |e| matches!(e, CallEvent::Dtmf { .. })).await;
    assert_eq!(
        e,
        CallEvent::Dtmf {
            digit: '9',
            via: bifrons_sip::DtmfVia::Info
        }
    );
    let code = call
        .send_info("application/x-custom", b"hi".to_vec())
        .await
        .unwrap();
    assert_eq!(code, 200);
    let e = wait_event(&mut incoming, |e| matches!(e, CallEvent::Info { .. })).await;
    let CallEvent::Info {
        from,
        content_type,
        body,
        ..
    } = e
    else {
        panic!("{e:?}")
    };
    assert!(from.starts_with("sip:"), "{from}");
    assert_eq!(
        (content_type.as_str(), body.as_slice()),
        ("application/x-custom", &b"hi"[..])
    );
    incoming.hangup().await.unwrap();
    wait_event(&mut call, |e| *e == CallEvent::Ended(EndReason::RemoteBye)).await;
}
