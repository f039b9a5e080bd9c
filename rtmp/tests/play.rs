//! ffmpeg pulls a live key from the crate's server (relay) and ffprobe decodes what it got.

mod common;

use std::process::Command;
use std::time::Duration;

use bifrons_rtmp::server::ServerEvent;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_plays_a_live_key_and_ffprobe_decodes_video_and_audio() {
    let server = server_allowing(&["show"], loopback_config()).await;
    let mut events = server.events();
    let base = format!("rtmp://{}/live", server.local_addr());
    let mut publisher = ffmpeg_publish(&format!("{base}/show"), 10);
    wait_event(&mut events, Duration::from_secs(20), |e| {
        matches!(e, ServerEvent::PublishStarted { .. })
    })
    .await;

    let dir = temp_dir("play");
    let out = dir.join("pulled.flv");
    let mut player = ChildGuard::spawn(
        Command::new("ffmpeg")
            .args([
                "-hide_banner",
                "-loglevel",
                "error",
                "-nostats",
                "-i",
                &format!("{base}/show"),
                "-t",
                "4",
                "-c",
                "copy",
                "-y",
            ])
            .arg(&out),
    );
    wait_event(
        &mut events,
        Duration::from_secs(20),
        |e| matches!(e, ServerEvent::PlayStarted { key, .. } if key == "show"),
    )
    .await;
    assert_eq!(server.stats()[0].players, 1);
    assert!(
        player.wait(Duration::from_secs(30)).await.success(),
        "player failed"
    );
    assert!(
        publisher.wait(Duration::from_secs(30)).await.success(),
        "publisher failed"
    );

    let (video, audio) = ffprobe_frame_counts(&out);
    // 4 s of 25 fps video and 48 kHz AAC (46.875 frames/s), decoded by ffprobe.
    assert!((90..=110).contains(&video), "decoded video frames {video}");
    assert!((170..=200).contains(&audio), "decoded audio frames {audio}");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn playing_a_key_that_is_not_live_fails() {
    let server = server_allowing(&["show"], loopback_config()).await;
    let dir = temp_dir("play-missing");
    let mut player = ChildGuard::spawn(
        Command::new("ffmpeg")
            .args([
                "-hide_banner",
                "-loglevel",
                "error",
                "-i",
                &format!("rtmp://{}/live/nobody", server.local_addr()),
                "-t",
                "1",
                "-c",
                "copy",
                "-y",
            ])
            .arg(dir.join("x.flv")),
    );
    assert!(!player.wait(Duration::from_secs(30)).await.success());
    let _ = std::fs::remove_dir_all(dir);
}
