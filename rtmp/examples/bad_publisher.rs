//! An RTMP publisher that sends broken media on purpose, to check that a server refuses or
//! drops it and keeps serving everyone else.
//!
//! ```text
//! cargo run -p bifrons-rtmp --example bad_publisher -- URL MODE [--seconds N]
//! ```
//! `URL` is `rtmp://host[:port]/app/key`; `MODE` is one of
//! - `truncated-tags`: FLV video and audio tag bodies cut short (a bare tag header, an AVC
//!   packet without its composition time, a NALU length larger than the tag, a truncated
//!   AVC sequence header, an AAC header without its packet type);
//! - `aac-no-config`: raw AAC frames without the AAC sequence header (AudioSpecificConfig);
//! - `h264-no-sps`: H.264 access units (IDR then P) without the AVC sequence header, so no
//!   SPS or PPS ever arrives.
//!
//! Media is paced in real time (30 video tags/s, 46.875 AAC frames/s). Exit status: 0 when the
//! server ended the publish (printing `ended: <why>`), 3 when it was still publishing after
//! `--seconds` (default 10), 2 for bad arguments, 1 when publishing never started.

use std::time::Duration;

use bifrons_rtmp::client::{PublisherConfig, PublisherState, RtmpPublisher};
use bytes::Bytes;

fn usage() -> ! {
    eprintln!("usage: bad_publisher rtmp://host:port/app/key truncated-tags|aac-no-config|h264-no-sps [--seconds N]");
    std::process::exit(2);
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    TruncatedTags,
    AacNoConfig,
    H264NoSps,
}

/// The FLV tag bodies of `mode` at step `n`: `(is_video, timestamp_ms, body)`.
fn tags(mode: Mode, n: u32) -> Vec<(bool, u32, Bytes)> {
    let video_ts = n * 1000 / 30;
    match mode {
        Mode::TruncatedTags => {
            let bodies: [&'static [u8]; 5] = [
                // Keyframe, AVC: nothing after the tag header.
                &[0x17],
                // AVC NALU packet cut inside its composition time.
                &[0x17, 0x01, 0x00],
                // A NALU length of 0x50 bytes with one byte of NALU.
                &[0x17, 0x01, 0, 0, 0, 0, 0, 0, 0x50, 0x65],
                // An AVC sequence header cut after its version and profile.
                &[0x17, 0x00, 0, 0, 0, 0x01, 0x42],
                // AAC with no packet type.
                &[0xaf],
            ];
            let body = bodies[(n as usize) % bodies.len()];
            vec![(body[0] != 0xaf, video_ts, Bytes::from_static(body))]
        }
        Mode::AacNoConfig => {
            // Two AAC frames (1024 samples at 48 kHz) per video-rate step, never a config.
            (0..2)
                .map(|i| {
                    let frame = n * 2 + i;
                    let mut body = vec![0xaf, 0x01, 0x21, 0x10, 0x04, 0x60, 0x8c, 0x1c];
                    body.extend(std::iter::repeat_n((frame & 0xff) as u8, 120));
                    (false, frame * 1024 / 48, Bytes::from(body))
                })
                .collect()
        }
        Mode::H264NoSps => {
            let key = n % 60 == 0;
            let mut body = vec![if key { 0x17 } else { 0x27 }, 0x01, 0, 0, 0];
            let nalu: Vec<u8> = if key {
                vec![0x65, 0x88, 0x84, 0x00, 0x33, 0xff]
            } else {
                vec![0x41, 0x9a, 0x02, (n & 0xff) as u8]
            };
            body.extend((nalu.len() as u32).to_be_bytes());
            body.extend(nalu);
            vec![(true, video_ts, Bytes::from(body))]
        }
    }
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let url = args.next().unwrap_or_else(|| usage());
    let mode = match args.next().as_deref() {
        Some("truncated-tags") => Mode::TruncatedTags,
        Some("aac-no-config") => Mode::AacNoConfig,
        Some("h264-no-sps") => Mode::H264NoSps,
        _ => usage(),
    };
    let mut seconds = 10u64;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds" => {
                seconds = args
                    .next()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or_else(|| usage())
            }
            _ => usage(),
        }
    }
    let mut config = PublisherConfig::new(url);
    config.reconnect = false;
    let publisher = RtmpPublisher::start(config).unwrap_or_else(|e| {
        eprintln!("bad URL: {e}");
        std::process::exit(2)
    });
    let started = tokio::time::timeout(
        Duration::from_secs(10),
        publisher.wait_for(|s| !matches!(s, PublisherState::Connecting)),
    )
    .await;
    match started {
        Ok(PublisherState::Publishing) => println!("publishing"),
        other => {
            println!("not publishing: {other:?}");
            std::process::exit(1);
        }
    }
    let state = publisher.state();
    let mut tick = tokio::time::interval(Duration::from_millis(1000 / 30));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(seconds);
    let mut n = 0u32;
    while tokio::time::Instant::now() < deadline {
        tick.tick().await;
        let now = state.borrow().clone();
        if !matches!(now, PublisherState::Publishing) {
            let why = match now {
                PublisherState::Failed(e) => e,
                other => format!("{other:?}"),
            };
            println!("ended: {why}");
            std::process::exit(0);
        }
        for (video, ts, body) in tags(mode, n) {
            let sent = if video {
                publisher.send_video_tag(ts, body)
            } else {
                publisher.send_audio_tag(ts, body)
            };
            if let Err(e) = sent {
                println!("ended: {e}");
                std::process::exit(0);
            }
        }
        n += 1;
    }
    println!("still publishing after {seconds} s");
    std::process::exit(3);
}
