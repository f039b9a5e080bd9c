//! The client publishes real encoded media to the crate's own server and to ffmpeg acting as an
//! independent RTMP server.

mod common;

use std::process::Command;
use std::time::Duration;

use bifrons_rtmp::client::{PublisherConfig, PublisherState, RtmpPublisher};
use bifrons_rtmp::server::{ServerEvent, StreamEvent};
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_publishes_to_own_server_and_every_access_unit_arrives_intact() {
    let dir = temp_dir("egress-own");
    let source = dir.join("source.flv");
    ffmpeg_make_flv(&source, 4);
    let media = read_flv_media(&source);
    assert_eq!(media.video.len(), 100);

    let server = server_allowing(&["out"], loopback_config()).await;
    let mut events = server.events();
    let publisher = RtmpPublisher::start(PublisherConfig::new(format!(
        "rtmp://{}/live/out",
        server.local_addr()
    )))
    .unwrap();
    tokio::time::timeout(
        Duration::from_secs(20),
        publisher.wait_for(|s| *s == PublisherState::Publishing),
    )
    .await
    .unwrap();
    wait_event(&mut events, Duration::from_secs(5), |e| {
        matches!(e, ServerEvent::PublishStarted { .. })
    })
    .await;
    let mut sub = server.subscribe("live", "out").unwrap();

    let receive = async {
        let (mut video, mut audio, mut configs) = (Vec::new(), Vec::new(), (None, None));
        while let Some(event) = sub.next().await {
            match event {
                StreamEvent::Video(f) => video.push(f),
                StreamEvent::Audio(a) => audio.push(a),
                StreamEvent::VideoConfig(c) => configs.0 = Some(c),
                StreamEvent::AudioConfig(c) => configs.1 = Some(c),
                other => panic!("unexpected {other:?}"),
            }
        }
        (video, audio, configs)
    };
    let send = async {
        publish_media(&publisher, &media).await;
        publisher.close().await;
    };
    let ((video, audio, configs), ()) = tokio::time::timeout(Duration::from_secs(30), async {
        tokio::join!(receive, send)
    })
    .await
    .unwrap();
    assert_eq!(configs.0.as_ref(), Some(&media.video_config));
    assert_eq!(configs.1.as_ref(), Some(&media.audio_config));
    assert_eq!(video, media.video, "access units differ");
    assert_eq!(audio, media.audio, "AAC frames differ");
    let stopped = wait_event(&mut events, Duration::from_secs(5), |e| {
        matches!(e, ServerEvent::PublishStopped { .. })
    })
    .await;
    assert!(
        matches!(stopped, ServerEvent::PublishStopped { reason, .. } if reason == "unpublished")
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_reconnects_until_ffmpeg_listens_and_ffprobe_decodes_what_arrived() {
    let dir = temp_dir("egress-ffmpeg");
    let source = dir.join("source.flv");
    ffmpeg_make_flv(&source, 4);
    let media = read_flv_media(&source);
    let port = free_port();
    let mut config = PublisherConfig::new(format!("rtmp://127.0.0.1:{port}/live/key"));
    config.initial_backoff = Duration::from_millis(100);
    config.max_backoff = Duration::from_millis(400);
    let publisher = RtmpPublisher::start(config).unwrap();
    // Nobody listens yet: the publisher must report the failure and retry with backoff.
    let retrying = tokio::time::timeout(
        Duration::from_secs(10),
        publisher.wait_for(
            |s| matches!(s, PublisherState::Reconnecting { attempt, .. } if *attempt >= 2),
        ),
    )
    .await
    .unwrap();
    assert!(
        matches!(retrying, PublisherState::Reconnecting { delay, .. } if delay >= Duration::from_millis(200))
    );

    let received = dir.join("received.flv");
    let mut listener = ChildGuard::spawn(
        Command::new("ffmpeg")
            .args([
                "-hide_banner",
                "-loglevel",
                "error",
                "-nostats",
                "-listen",
                "1",
                "-i",
                &format!("rtmp://127.0.0.1:{port}/live/key"),
                "-c",
                "copy",
                "-y",
            ])
            .arg(&received),
    );
    tokio::time::timeout(
        Duration::from_secs(20),
        publisher.wait_for(|s| *s == PublisherState::Publishing),
    )
    .await
    .unwrap();
    publish_media(&publisher, &media).await;
    publisher.close().await;
    assert!(
        listener.wait(Duration::from_secs(30)).await.success(),
        "ffmpeg listener failed"
    );

    let (video, audio) = ffprobe_frame_counts(&received);
    assert_eq!(video, 100, "decoded video frames");
    assert!((185..=190).contains(&audio), "decoded audio frames {audio}");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crate_player_pulls_from_own_server_starting_at_a_keyframe() {
    use bifrons_rtmp::client::RtmpPlayer;
    use bifrons_rtmp::tag::Tag;
    let dir = temp_dir("egress-player");
    let source = dir.join("source.flv");
    ffmpeg_make_flv(&source, 4);
    let media = read_flv_media(&source);
    let server = server_allowing(&["out"], loopback_config()).await;
    let url = format!("rtmp://{}/live/out", server.local_addr());
    let publisher = RtmpPublisher::start(PublisherConfig::new(url.clone())).unwrap();
    tokio::time::timeout(
        Duration::from_secs(20),
        publisher.wait_for(|s| *s == PublisherState::Publishing),
    )
    .await
    .unwrap();
    // Send the first two seconds and a bit, then join: the player must start at the 2 s keyframe.
    publisher.send_video_config(&media.video_config, 0).unwrap();
    for frame in &media.video[..55] {
        publisher.send_video(frame).unwrap();
    }
    // Join only once the server has every one of those bytes, so the GOP cache is settled.
    let expected = bifrons_rtmp::flv::avc_config_tag(&media.video_config).len()
        + media.video[..55]
            .iter()
            .map(|f| bifrons_rtmp::flv::avc_frame_tag(f).len())
            .sum::<usize>();
    let mut player = loop {
        if server
            .stats()
            .first()
            .is_some_and(|s| s.bytes == expected as u64)
        {
            if let Ok(p) = RtmpPlayer::connect(&url).await {
                break p;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let mut video = Vec::new();
    let collect = async {
        while let Some(tag) = player.next().await {
            if let Tag::Video { timestamp, data } = &tag {
                video.push((
                    *timestamp,
                    tag.is_keyframe(),
                    tag.is_sequence_header(),
                    data.len(),
                ));
                if *timestamp == media.video[54].dts_ms {
                    break;
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), collect)
        .await
        .expect("player got the GOP");
    assert!(video[0].2, "sequence header first");
    assert!(
        video[1].1 && video[1].0 == 2000,
        "GOP starts at the 2 s keyframe: {:?}",
        &video[..3]
    );
    assert_eq!(video.len(), 1 + 5, "header + frames 50..=54");
    publisher.close().await;
    let _ = std::fs::remove_dir_all(dir);
}

// The publisher's `send_*` never wait, so a plain OS thread (a media worker with no runtime)
// can publish. This test runs on a current-thread runtime and joins the thread before
// awaiting anything: the connection task cannot drain the queue meanwhile, which makes the
// overflow exact.
#[tokio::test]
async fn publisher_sends_from_a_plain_thread_and_drops_when_the_queue_is_full() {
    const QUEUE: usize = 8;
    let server = server_allowing(&["thread"], loopback_config()).await;
    let mut events = server.events();
    let mut config = PublisherConfig::new(format!("rtmp://{}/live/thread", server.local_addr()));
    config.queue = QUEUE;
    let publisher = RtmpPublisher::start(config).unwrap();
    tokio::time::timeout(
        Duration::from_secs(20),
        publisher.wait_for(|s| *s == PublisherState::Publishing),
    )
    .await
    .unwrap();
    wait_event(&mut events, Duration::from_secs(5), |e| {
        matches!(e, ServerEvent::PublishStarted { .. })
    })
    .await;
    let mut sub = server.subscribe("live", "thread").unwrap();

    // 20 frames at 25 fps, a keyframe every 5. The config and the first 7 frames fill the
    // queue; the other 13 are dropped, keyframes included.
    let sender = publisher.sender();
    std::thread::spawn(move || {
        sender.send_video_config(&avc_config(), 0).unwrap();
        for i in 0..20 {
            let ts = i * 40;
            let frame = if i % 5 == 0 {
                keyframe(ts)
            } else {
                delta_frame(ts)
            };
            sender.send_video(&frame).unwrap();
        }
    })
    .join()
    .unwrap();
    assert_eq!(publisher.dropped(), 13);

    // Once the queue has drained, the next frame is a delta frame that references dropped
    // ones: it is dropped too, and video resumes at the keyframe after it.
    let mut received = Vec::new();
    let mut config_seen = false;
    let receive = async {
        while let Some(event) = sub.next().await {
            match event {
                StreamEvent::VideoConfig(_) => config_seen = true,
                StreamEvent::Video(f) => {
                    received.push(f.dts_ms);
                    if received.len() == QUEUE - 1 {
                        break;
                    }
                }
                _ => {}
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), receive)
        .await
        .expect("queued frames arrive");
    assert!(config_seen);
    assert_eq!(received, [0, 40, 80, 120, 160, 200, 240]);

    let sender = publisher.sender();
    std::thread::spawn(move || {
        sender.send_video(&delta_frame(840)).unwrap();
        sender.send_video(&keyframe(1000)).unwrap();
        sender.send_video(&delta_frame(1040)).unwrap();
    })
    .join()
    .unwrap();
    assert_eq!(publisher.dropped(), 14);
    let mut resumed = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), async {
        while resumed.len() < 2 {
            if let Some(StreamEvent::Video(f)) = sub.next().await {
                resumed.push((f.dts_ms, f.keyframe));
            }
        }
    })
    .await
    .expect("frames after the gap arrive");
    assert_eq!(resumed, [(1000, true), (1040, false)]);
    publisher.close().await;
}
