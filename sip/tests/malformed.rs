//! A corpus of malformed SIP messages sent to a running user agent: each is answered with 400
//! where a response can be built, or dropped, and the UA keeps answering valid requests.

use bifrons_sip::{Ua, UaConfig};
use std::net::UdpSocket;
use std::time::Duration;

fn request(first_line: &str, headers: &[&str], body: &str) -> Vec<u8> {
    let mut s = format!("{first_line}\r\n");
    for h in headers {
        s.push_str(h);
        s.push_str("\r\n");
    }
    s.push_str("\r\n");
    s.push_str(body);
    s.into_bytes()
}

const VIA: &str = "Via: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bKmal";
const FROM: &str = "From: <sip:x@127.0.0.1>;tag=1";
const TO: &str = "To: <sip:y@127.0.0.1>";
const CID: &str = "Call-ID: malformed-1";
const CSEQ: &str = "CSeq: 1 OPTIONS";

/// (name, bytes, expect a 400?)
fn corpus() -> Vec<(&'static str, Vec<u8>, bool)> {
    let ok = |extra: &[&'static str]| {
        let mut h = vec![VIA, FROM, TO, CID, CSEQ];
        h.extend_from_slice(extra);
        h
    };
    let huge = format!("X-Huge: {}", "a".repeat(20_000));
    let huge: &'static str = Box::leak(huge.into_boxed_str());
    vec![
        (
            "content-length beyond body",
            request(
                "OPTIONS sip:y@127.0.0.1 SIP/2.0",
                &ok(&["Content-Length: 500"]),
                "short",
            ),
            true,
        ),
        (
            "content-length not a number",
            request(
                "OPTIONS sip:y@127.0.0.1 SIP/2.0",
                &ok(&["Content-Length: ten"]),
                "",
            ),
            true,
        ),
        (
            "negative content-length",
            request(
                "OPTIONS sip:y@127.0.0.1 SIP/2.0",
                &ok(&["Content-Length: -5"]),
                "",
            ),
            true,
        ),
        (
            "invalid request uri",
            request("OPTIONS not a uri SIP/2.0", &ok(&[]), ""),
            true,
        ),
        (
            "invalid uri scheme garbage",
            request("OPTIONS sip:@@:: SIP/2.0", &ok(&[]), ""),
            true,
        ),
        (
            "huge header",
            request("OPTIONS sip:y@127.0.0.1 SIP/2.0", &ok(&[huge]), ""),
            true,
        ),
        (
            "cseq method mismatch",
            request(
                "OPTIONS sip:y@127.0.0.1 SIP/2.0",
                &[VIA, FROM, TO, CID, "CSeq: 1 INVITE"],
                "",
            ),
            true,
        ),
        (
            "cseq not a number",
            request(
                "OPTIONS sip:y@127.0.0.1 SIP/2.0",
                &[VIA, FROM, TO, CID, "CSeq: abc OPTIONS"],
                "",
            ),
            true,
        ),
        (
            "missing call-id",
            request(
                "OPTIONS sip:y@127.0.0.1 SIP/2.0",
                &[VIA, FROM, TO, CSEQ],
                "",
            ),
            false,
        ),
        (
            "missing via",
            request(
                "OPTIONS sip:y@127.0.0.1 SIP/2.0",
                &[FROM, TO, CID, CSEQ],
                "",
            ),
            false,
        ),
        (
            "missing from",
            request("OPTIONS sip:y@127.0.0.1 SIP/2.0", &[VIA, TO, CID, CSEQ], ""),
            false,
        ),
        (
            "no end of headers",
            b"OPTIONS sip:y@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 1.2.3.4\r\n".to_vec(),
            false,
        ),
        (
            "binary garbage",
            (0u8..=255).cycle().take(3000).collect(),
            false,
        ),
        (
            "nul in header",
            request("OPTIONS sip:y@127.0.0.1 SIP/2.0", &ok(&["X-Bad: a\0b"]), ""),
            true,
        ),
        (
            "invalid utf-8 in header",
            {
                let mut r = request("OPTIONS sip:y@127.0.0.1 SIP/2.0", &ok(&["X-Bad: zz"]), "");
                let i = r.windows(2).position(|w| w == b"zz").unwrap_or(0);
                r[i] = 0xff;
                r
            },
            true,
        ),
        (
            "malformed response is never answered",
            request("SIP/2.0 200 OK", &[VIA, CID], ""),
            false,
        ),
        (
            "version garbage",
            request("OPTIONS sip:y@127.0.0.1 SIP/9.9", &ok(&[]), ""),
            true,
        ),
        (
            "only a request line",
            b"INVITE sip:a@b SIP/2.0\r\n\r\n".to_vec(),
            false,
        ),
    ]
}

fn status_of(resp: &[u8]) -> Option<u16> {
    let s = std::str::from_utf8(resp).ok()?;
    s.strip_prefix("SIP/2.0 ")?.get(..3)?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_corpus_gets_400_or_is_dropped_and_the_ua_keeps_serving() {
    let (ua, _ev) = Ua::start(UaConfig::default()).await.unwrap();
    let target = ua.local_addr();
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(700)))
        .unwrap();
    let mut buf = vec![0u8; 65536];
    for (i, (name, bytes, want_400)) in corpus().into_iter().enumerate() {
        sock.send_to(&bytes, target).unwrap();
        let got = sock
            .recv_from(&mut buf)
            .ok()
            .and_then(|(n, _)| status_of(&buf[..n]));
        if want_400 {
            assert_eq!(got, Some(400), "case {i} '{name}' should get 400");
        } else {
            assert_eq!(got, None, "case {i} '{name}' should be dropped");
        }
    }
    // An extension we do not support is refused with 420 naming it.
    let ext = request(
        "OPTIONS sip:y@127.0.0.1 SIP/2.0",
        &[
            "Via: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bKext",
            FROM,
            TO,
            "Call-ID: ext-1",
            CSEQ,
            "Require: 100rel, foo",
            "Content-Length: 0",
        ],
        "",
    );
    sock.send_to(&ext, target).unwrap();
    let (n, _) = sock.recv_from(&mut buf).expect("answer to Require");
    let text = String::from_utf8_lossy(&buf[..n]).to_string();
    assert_eq!(status_of(&buf[..n]), Some(420), "{text}");
    assert!(text.contains("Unsupported: 100rel, foo"), "{text}");
    // Still serving: a valid OPTIONS is answered with 200.
    let valid = request(
        "OPTIONS sip:y@127.0.0.1 SIP/2.0",
        &[
            "Via: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bKvalid",
            FROM,
            TO,
            "Call-ID: valid-1",
            CSEQ,
            "Content-Length: 0",
        ],
        "",
    );
    sock.send_to(&valid, target).unwrap();
    let (n, _) = sock.recv_from(&mut buf).expect("answer to valid OPTIONS");
    assert_eq!(
        status_of(&buf[..n]),
        Some(200),
        "{}",
        String::from_utf8_lossy(&buf[..n])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_framing_error_closes_only_that_connection() {
    use std::io::{Read, Write};
    let (ua, _ev) = Ua::start(UaConfig::default()).await.unwrap();
    let target = ua.local_addr();
    let mut bad = std::net::TcpStream::connect(target).unwrap();
    bad.write_all(b"OPTIONS sip:y@127.0.0.1 SIP/2.0\r\nContent-Length: banana\r\n\r\n")
        .unwrap();
    bad.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut b = [0u8; 16];
    assert_eq!(bad.read(&mut b).unwrap_or(0), 0, "connection closed");
    let mut good = std::net::TcpStream::connect(target).unwrap();
    let valid = request(
        "OPTIONS sip:y@127.0.0.1 SIP/2.0",
        &[
            "Via: SIP/2.0/TCP 127.0.0.1:5999;branch=z9hG4bKtcp",
            FROM,
            TO,
            "Call-ID: tcp-1",
            CSEQ,
            "Content-Length: 0",
        ],
        "",
    );
    good.write_all(&valid).unwrap();
    good.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = vec![0u8; 4096];
    let n = good.read(&mut buf).unwrap();
    assert_eq!(status_of(&buf[..n]), Some(200));
}
