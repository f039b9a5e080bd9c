//! ffmpeg publishes to the crate's server: media arrives as H.264 access units and AAC frames,
//! wrong keys are refused.

mod common;

use std::time::Duration;

use bifrons_rtmp::server::{ServerEvent, StreamEvent};
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_publish_yields_access_units_with_keyframe_every_two_seconds() {
    let server = server_allowing(&["secret"], loopback_config()).await;
    let mut events = server.events();
    let url = format!("rtmp://{}/live/secret", server.local_addr());
    let mut ffmpeg = ffmpeg_publish(&url, 5);

    wait_event(
        &mut events,
        Duration::from_secs(20),
        |e| matches!(e, ServerEvent::PublishStarted { key, .. } if key == "secret"),
    )
    .await;
    let mut sub = server.subscribe("live", "secret").expect("live key");

    let (mut video_config, mut audio_config) = (None, None);
    let (mut frames, mut audio) = (Vec::new(), Vec::new());
    let mut metadata = false;
    let collect = async {
        while let Some(event) = sub.next().await {
            match event {
                StreamEvent::Metadata(_) => metadata = true,
                StreamEvent::VideoConfig(c) => video_config = Some(c),
                StreamEvent::AudioConfig(c) => audio_config = Some(c),
                StreamEvent::Video(f) => frames.push(f),
                StreamEvent::Audio(a) => audio.push(a),
                StreamEvent::VideoEndOfSequence => {}
                StreamEvent::Skipped(s) => panic!("skipped tag: {s}"),
                StreamEvent::Lagged(n) => panic!("lagged {n}"),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), collect)
        .await
        .expect("publisher never finished");
    assert!(ffmpeg.wait(Duration::from_secs(20)).await.success());
    wait_event(&mut events, Duration::from_secs(5), |e| {
        matches!(e, ServerEvent::PublishStopped { .. })
    })
    .await;

    assert!(metadata, "onMetaData was not relayed");
    let video_config = video_config.expect("AVC sequence header");
    assert_eq!(video_config.sps[0][0] & 0x1f, 7);
    assert_eq!(video_config.pps[0][0] & 0x1f, 8);
    let audio_config = audio_config.expect("AAC sequence header");
    assert_eq!(
        (
            audio_config.object_type,
            audio_config.sample_rate,
            audio_config.channels
        ),
        (2, 48000, 1)
    );

    // 5 s at 25 fps; the subscription starts within the first GOP so nothing is missing.
    assert_eq!(frames.len(), 125, "video frames");
    let keyframes: Vec<u32> = frames
        .iter()
        .filter(|f| f.keyframe)
        .map(|f| f.dts_ms)
        .collect();
    assert_eq!(keyframes.len(), 3, "keyframes at {keyframes:?}");
    for pair in keyframes.windows(2) {
        assert!(
            (1960..=2040).contains(&(pair[1] - pair[0])),
            "keyframe cadence {keyframes:?}"
        );
    }
    assert!(frames
        .iter()
        .filter(|f| f.keyframe)
        .all(|f| f.nalus.iter().any(|n| n[0] & 0x1f == 5)));
    assert!(
        frames.windows(2).all(|w| w[1].dts_ms > w[0].dts_ms),
        "video DTS not increasing"
    );
    assert!(
        frames.iter().any(|f| f.cts_ms > 0),
        "B-frames should give composition offsets"
    );
    assert!(frames.iter().all(|f| f.cts_ms >= 0));
    // 48 kHz AAC: 1024 samples per frame, ~46.9 frames per second.
    assert!(
        (225..=240).contains(&audio.len()),
        "audio frames {}",
        audio.len()
    );
    assert!(
        audio
            .windows(2)
            .all(|w| w[1].timestamp_ms >= w[0].timestamp_ms),
        "audio timestamps not monotonic"
    );
    assert!(audio.iter().all(|a| !a.data.is_empty()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_stream_key_is_refused_and_ffmpeg_fails() {
    let server = server_allowing(&["secret"], loopback_config()).await;
    let mut events = server.events();
    let url = format!("rtmp://{}/live/wrong", server.local_addr());
    let mut ffmpeg = ffmpeg_publish(&url, 3);
    let refused = wait_event(&mut events, Duration::from_secs(20), |e| {
        matches!(e, ServerEvent::PublishRefused { .. })
    })
    .await;
    match refused {
        ServerEvent::PublishRefused { key, reason, .. } => {
            assert_eq!(key, "wrong");
            assert!(reason.contains("NetStream.Publish.Denied"), "{reason}");
        }
        _ => unreachable!(),
    }
    let status = ffmpeg.wait(Duration::from_secs(20)).await;
    assert!(!status.success(), "ffmpeg should report the refusal");
    assert!(server.subscribe("live", "wrong").is_none());
}
