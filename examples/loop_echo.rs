//! The loop media engine (`bifrons::media::rtc`) as a bare echo peer, for interoperability
//! checks with a real browser (`tests/e2e/media_loop.browser.test.js`) before it sits behind
//! the Janus API.
//!
//!   cargo build --example loop_echo
//!   target/debug/examples/loop_echo
//!
//! Protocol, one JSON object per line: each stdin line `{"offer": SDP}` gets the stdout line
//! `{"answer": SDP}` (or `{"error": text}`); every 500 ms a line
//! `{"connected": n, "echoed": {"audio": n, "video": n}, "data": n}` reports what the loop did.
//! Ends when stdin closes. Socket on 127.0.0.1, a free port.

use std::io::BufRead;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use bifrons::media::rtc::{EventLoop, Outbox, PeerHandler, PeerTemplate};
use bifrons::media::{DataMessage, MediaKind, RtpPacket, StreamInfo};

#[derive(Default)]
struct Counters {
    connected: AtomicU64,
    echoed: [AtomicU64; 2],
    data: AtomicU64,
}

/// Sends each packet back on the same kind, each data-channel message back on its channel, and
/// asks for a keyframe every 100 video packets
/// echoed (what the echo test does when the browser's decoder starts).
struct Echo(Arc<Counters>);

impl PeerHandler for Echo {
    fn on_connected(&mut self) {
        self.0.connected.fetch_add(1, Ordering::Relaxed);
    }

    fn on_rtp(&mut self, stream: &StreamInfo, packet: RtpPacket, out: &mut Outbox<'_>) {
        let kind = stream.kind;
        if out.send_rtp(kind, &packet) {
            let n = self.0.echoed[kind.index()].fetch_add(1, Ordering::Relaxed);
            if kind == MediaKind::Video && n % 100 == 0 {
                out.request_keyframe();
            }
        }
    }

    fn on_data(&mut self, label: &str, message: DataMessage, out: &mut Outbox<'_>) {
        if out.send_data(label, &message) {
            self.0.data.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn main() {
    let template = PeerTemplate::generate().expect("certificate");
    let event_loop = EventLoop::start("media-0".into(), Ipv4Addr::LOCALHOST.into(), 0, template)
        .expect("loop socket");
    let counters = Arc::new(Counters::default());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");

    let report = {
        let counters = counters.clone();
        std::thread::spawn(move || loop {
            std::thread::sleep(Duration::from_millis(500));
            let line = json!({
                "connected": counters.connected.load(Ordering::Relaxed),
                "echoed": {
                    "audio": counters.echoed[0].load(Ordering::Relaxed),
                    "video": counters.echoed[1].load(Ordering::Relaxed),
                },
                "data": counters.data.load(Ordering::Relaxed),
            });
            println!("{line}");
        })
    };
    drop(report);

    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let offer = serde_json::from_str::<Value>(&line)
            .ok()
            .and_then(|v| v["offer"].as_str().map(str::to_owned));
        let Some(offer) = offer else {
            println!("{}", json!({ "error": "expected {\"offer\": SDP}" }));
            continue;
        };
        let answered = runtime.block_on(event_loop.answer(offer, Box::new(Echo(counters.clone()))));
        match answered {
            Ok((_, sdp)) => println!("{}", json!({ "answer": sdp, "peers": event_loop.load() })),
            Err(e) => println!("{}", json!({ "error": e.to_string() })),
        }
    }
}
