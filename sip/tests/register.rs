//! Registration against a real kamailio with digest authentication.

mod common;

use bifrons_sip::{
    Account, AuthFailure, RegistrationEvent, SipError, Transport, Ua, UaConfig, UaEvent,
};
use common::Kamailio;
use std::time::Duration;

fn account(k: &Kamailio, user: &str, password: &str, expires: u32) -> Account {
    Account {
        registrar: k.registrar(),
        user: user.into(),
        outbound_proxy: None,
        auth_user: None,
        secret: bifrons_sip::DigestSecret::Password(password.into()),
        domain: None,
        expires,
    }
}

async fn next_registration_event(ev: &mut bifrons_sip::UaEvents) -> RegistrationEvent {
    loop {
        match tokio::time::timeout(Duration::from_secs(30), ev.next()).await {
            Ok(Some(UaEvent::Registration(r))) => return r,
            Ok(Some(_)) => continue,
            other => panic!("no registration event: {other:?}"),
        }
    }
}

#[tokio::test]
async fn register_retries_with_digest_after_401_then_refreshes_and_unregisters() {
    let k = Kamailio::start("MD5");
    let (ua, mut ev) = Ua::start(UaConfig::default()).await.unwrap();
    let granted = ua
        .register(account(&k, "alice", "alicepw", 4))
        .await
        .expect("registered");
    assert_eq!(granted, 4);
    assert_eq!(
        next_registration_event(&mut ev).await,
        RegistrationEvent::Registered { expires: 4 }
    );
    let log = k.log();
    assert!(
        log.matches("REQ REGISTER").count() >= 2,
        "challenged first, then authenticated:\n{log}"
    );
    // Refresh happens before the 4 s lifetime runs out.
    assert_eq!(
        next_registration_event(&mut ev).await,
        RegistrationEvent::Refreshed { expires: 4 }
    );
    ua.unregister().await.expect("unregistered");
    assert_eq!(
        next_registration_event(&mut ev).await,
        RegistrationEvent::Unregistered
    );
}

#[tokio::test]
async fn wrong_password_is_a_typed_auth_failure() {
    let k = Kamailio::start("MD5");
    let (ua, _ev) = Ua::start(UaConfig::default()).await.unwrap();
    let err = ua
        .register(account(&k, "alice", "nope", 60))
        .await
        .expect_err("must fail");
    assert!(
        matches!(
            err,
            SipError::Auth(AuthFailure::WrongCredentials { code: 401 })
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn register_with_sha256_digest() {
    let k = Kamailio::start("SHA-256");
    // The challenge really asks for SHA-256.
    let probe = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    probe
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let req = format!(
        "REGISTER sip:127.0.0.1:{p} SIP/2.0\r\nVia: SIP/2.0/UDP {l};branch=z9hG4bKsha\r\nFrom: <sip:bob@127.0.0.1>;tag=1\r\nTo: <sip:bob@127.0.0.1>\r\nCall-ID: sha\r\nCSeq: 1 REGISTER\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        p = k.port,
        l = probe.local_addr().unwrap()
    );
    probe
        .send_to(req.as_bytes(), ("127.0.0.1", k.port))
        .unwrap();
    let mut buf = [0u8; 4096];
    let (n, _) = probe.recv_from(&mut buf).unwrap();
    let challenge = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(
        challenge.starts_with("SIP/2.0 401") && challenge.contains("algorithm=SHA-256"),
        "{challenge}"
    );
    let (ua, _ev) = Ua::start(UaConfig::default()).await.unwrap();
    assert_eq!(
        ua.register(account(&k, "bob", "bobpw", 60))
            .await
            .expect("registered"),
        60
    );
}

#[tokio::test]
async fn register_over_tcp() {
    let k = Kamailio::start("MD5");
    let cfg = UaConfig {
        transport: Transport::Tcp,
        ..UaConfig::default()
    };
    let (ua, _ev) = Ua::start(cfg).await.unwrap();
    assert_eq!(
        ua.register(account(&k, "carol", "carolpw", 60))
            .await
            .expect("registered over TCP"),
        60
    );
}

#[tokio::test]
async fn registrar_timeout_is_reported() {
    // Nothing listens on this port: timer F fires (with short timers to keep the test fast).
    let port = common::free_port();
    let timers = bifrons_sip::transaction::Timers {
        t1: Duration::from_millis(20),
        ..Default::default()
    };
    let (ua, _ev) = Ua::start(UaConfig {
        timers,
        ..UaConfig::default()
    })
    .await
    .unwrap();
    let acct = Account {
        registrar: format!("sip:127.0.0.1:{port}"),
        user: "x".into(),
        outbound_proxy: None,
        auth_user: None,
        secret: bifrons_sip::DigestSecret::Password("y".into()),
        domain: None,
        expires: 60,
    };
    let err = ua.register(acct).await.expect_err("must time out");
    assert!(matches!(err, SipError::Timeout), "{err:?}");
}

#[tokio::test]
async fn forbidden_account_is_a_typed_failure() {
    let k = Kamailio::start("MD5");
    let (ua, _ev) = Ua::start(UaConfig::default()).await.unwrap();
    let err = ua
        .register(account(&k, "mallory", "x", 60))
        .await
        .expect_err("403");
    assert!(
        matches!(err, SipError::Auth(AuthFailure::Forbidden)),
        "{err:?}"
    );
}

#[tokio::test]
async fn udp_keepalive_sends_options_to_the_registrar() {
    let k = Kamailio::start("MD5");
    let cfg = UaConfig {
        keepalive: Some(Duration::from_millis(300)),
        ..UaConfig::default()
    };
    let (ua, _ev) = Ua::start(cfg).await.unwrap();
    ua.register(account(&k, "alice", "alicepw", 60))
        .await
        .expect("registered");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let n = k.log().matches("REQ OPTIONS").count();
    // One probe came from the test harness's readiness check.
    assert!(n >= 3, "expected keep-alive OPTIONS, kamailio saw {n}");
}

/// `key="value"` or `key=value` from a digest header value.
fn digest_param(v: &str, key: &str) -> Option<String> {
    v.trim_start_matches("Digest").split(',').find_map(|p| {
        let (k, val) = p.split_once('=')?;
        (k.trim() == key).then(|| val.trim().trim_matches('"').to_string())
    })
}

/// The next request on a raw registrar socket, and its source.
async fn recv_request(sock: &tokio::net::UdpSocket) -> (rsip::Request, std::net::SocketAddr) {
    let mut buf = vec![0u8; 8192];
    let (n, from) = tokio::time::timeout(Duration::from_secs(5), sock.recv_from(&mut buf))
        .await
        .expect("REGISTER from the UA")
        .unwrap();
    match bifrons_sip::message::parse(&buf[..n]).expect("parsable REGISTER") {
        rsip::SipMessage::Request(r) => (r, from),
        other => panic!("expected a request: {other}"),
    }
}

// RFC 3261 §7.3.1: a registrar may fold its challenge over several lines. The UA must join
// them, answer the challenge and register.
#[tokio::test]
async fn register_answers_a_401_whose_challenge_is_folded_over_lines() {
    use bifrons_sip::digest::{authorization, Challenge};
    use bifrons_sip::message::{self as m, header};
    let registrar = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = registrar.local_addr().unwrap();
    let (ua, _ev) = Ua::start(UaConfig::default()).await.unwrap();
    let account = Account {
        registrar: format!("sip:{addr}"),
        user: "alice".into(),
        outbound_proxy: None,
        auth_user: None,
        secret: bifrons_sip::DigestSecret::Password("alicepw".into()),
        domain: Some("example.com".into()),
        expires: 60,
    };
    let register = tokio::spawn(async move {
        let r = ua.register(account).await;
        (ua, r)
    });
    let (first, from) = recv_request(&registrar).await;
    assert!(m::header_value(&first.headers, "authorization").is_none());
    let mut challenge = String::from_utf8(m::to_bytes(&rsip::SipMessage::Response(
        m::response_to(&first, 401, Some("reg")),
    )))
    .unwrap();
    // Folded with a space, a tab and both, as RFC 3261 §7.3.1 allows.
    challenge = challenge.replacen(
        "\r\n\r\n",
        "\r\nWWW-Authenticate: Digest realm=\"example.com\",\r\n  nonce=\"f0ld3d\",\r\n\topaque=\"op\",\r\n \talgorithm=MD5, qop=\"auth\"\r\n\r\n",
        1,
    );
    registrar.send_to(challenge.as_bytes(), from).await.unwrap();
    let (second, from) = recv_request(&registrar).await;
    let auth = m::header_value(&second.headers, "authorization").expect("challenge answered");
    let ch = Challenge::parse(
        "Digest realm=\"example.com\", nonce=\"f0ld3d\", opaque=\"op\", algorithm=MD5, qop=\"auth\"",
    )
    .unwrap();
    let uri = digest_param(&auth, "uri").unwrap();
    let cnonce = digest_param(&auth, "cnonce").unwrap();
    assert_eq!(
        auth,
        authorization(
            &ch,
            "alice",
            &bifrons_sip::DigestSecret::Password("alicepw".into()),
            "REGISTER",
            &uri,
            &cnonce,
            1
        ),
        "the digest answers the joined challenge"
    );
    let mut ok = m::response_to(&second, 200, Some("reg"));
    for c in m::header_values(&second.headers, "contact") {
        ok.headers
            .push(header("Contact", format!("{c};expires=60")));
    }
    registrar
        .send_to(&m::to_bytes(&rsip::SipMessage::Response(ok)), from)
        .await
        .unwrap();
    let (_ua, result) = register.await.unwrap();
    assert_eq!(result.expect("registered"), 60);
}
