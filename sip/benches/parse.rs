//! Micro-benchmarks of the per-message hot path: parsing a SIP request, answering it, parsing
//! an SDP offer, and driving a transaction through its timers.

use bifrons_sip::message::{parse, response_to, to_bytes};
use bifrons_sip::sdp::{negotiate, Codec, Direction, Sdp};
use bifrons_sip::transaction::{ClientKind, ClientTransaction, Reliability, Timers};
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use std::time::{Duration, Instant};

const INVITE: &str = "INVITE sip:bob@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;rport;branch=z9hG4bKabcdef\r\nMax-Forwards: 70\r\nFrom: <sip:alice@127.0.0.1>;tag=1234\r\nTo: <sip:bob@127.0.0.1>\r\nCall-ID: 0123456789abcdef\r\nCSeq: 1 INVITE\r\nContact: <sip:alice@127.0.0.1:5070>\r\nContent-Type: application/sdp\r\nContent-Length: 129\r\n\r\nv=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n";

fn benches(c: &mut Criterion) {
    c.bench_function("parse INVITE with SDP", |b| {
        b.iter(|| parse(black_box(INVITE.as_bytes())))
    });
    let Ok(rsip::SipMessage::Request(req)) = parse(INVITE.as_bytes()) else {
        return;
    };
    c.bench_function("build and serialize 200 OK", |b| {
        b.iter(|| {
            to_bytes(&rsip::SipMessage::Response(response_to(
                black_box(&req),
                200,
                Some("t"),
            )))
        })
    });
    c.bench_function("parse and negotiate SDP offer", |b| {
        b.iter(|| {
            Sdp::parse(black_box(&req.body))
                .and_then(|s| negotiate(&s, &[Codec::Pcmu], Direction::SendRecv, true))
        })
    });
    c.bench_function(
        "non-INVITE transaction to timeout (11 timer firings)",
        |b| {
            b.iter(|| {
                let t0 = Instant::now();
                let mut tx = ClientTransaction::new(
                    ClientKind::NonInvite,
                    Reliability::Unreliable,
                    Timers::default(),
                    t0,
                );
                let mut n = 0;
                while let Some(d) = tx.next_deadline() {
                    n += tx.on_timer(d).len();
                    if d > t0 + Duration::from_secs(40) {
                        break;
                    }
                }
                n
            })
        },
    );
}

criterion_group!(parse_benches, benches);
criterion_main!(parse_benches);
