//! Stream and app names that carry a query string (`rtmp://host/live/cam1?token=abc123`), as
//! encoders and streaming platforms send keys: the stream goes live under the bare name, players
//! find it with or without a query, and the authorizer sees the parameters.

mod common;

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bifrons_rtmp::server::{PublishRequest, RtmpServer, ServerEvent};
use common::*;

/// A server whose authorizer records every request and lets in `cam1` with `token=abc123`.
async fn server_checking_token() -> (RtmpServer, Arc<Mutex<Vec<PublishRequest>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let server = RtmpServer::bind(loopback_config(), move |req: PublishRequest| {
        let allowed = req.key == "cam1" && req.param("token") == Some("abc123");
        record.lock().unwrap().push(req);
        async move { allowed }
    })
    .await
    .expect("bind");
    (server, seen)
}

/// ffmpeg pulling `url` for `seconds` into `out` (stream copy).
fn ffmpeg_pull(url: &str, seconds: u32, out: &std::path::Path) -> ChildGuard {
    ChildGuard::spawn(
        Command::new("ffmpeg")
            .args([
                "-hide_banner",
                "-loglevel",
                "error",
                "-nostats",
                "-i",
                url,
                "-t",
                &seconds.to_string(),
                "-c",
                "copy",
                "-y",
            ])
            .arg(out),
    )
}

/// ffmpeg publishing the test media with the app and play path set explicitly, the way OBS and
/// hardware encoders send an app that carries its own query.
fn ffmpeg_publish_app(base: &str, app: &str, playpath: &str, seconds: u32) -> ChildGuard {
    ChildGuard::spawn(Command::new("ffmpeg").args([
        "-hide_banner",
        "-loglevel",
        "error",
        "-nostats",
        "-re",
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=320x240:rate=25",
        "-t",
        &seconds.to_string(),
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-g",
        "50",
        "-rtmp_app",
        app,
        "-rtmp_playpath",
        playpath,
        "-f",
        "flv",
        base,
    ]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_with_token_query_goes_live_as_bare_name_and_plays_back() {
    let (server, seen) = server_checking_token().await;
    let mut events = server.events();
    let base = format!("rtmp://{}/live", server.local_addr());
    let mut publisher = ffmpeg_publish(&format!("{base}/cam1?token=abc123"), 8);

    let started = wait_event(&mut events, Duration::from_secs(20), |e| {
        matches!(
            e,
            ServerEvent::PublishStarted { .. } | ServerEvent::PublishRefused { .. }
        )
    })
    .await;
    match &started {
        ServerEvent::PublishStarted { app, key, .. } => {
            assert_eq!((app.as_str(), key.as_str()), ("live", "cam1"))
        }
        other => panic!("expected the publish to start, got {other:?}"),
    }
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].app, "live");
        assert_eq!(seen[0].key, "cam1");
        assert_eq!(seen[0].param("token"), Some("abc123"));
        assert_eq!(
            seen[0].params.iter().collect::<Vec<_>>(),
            [("token", "abc123")]
        );
    }
    assert!(server.subscribe("live", "cam1").is_some());
    assert!(server.subscribe("live", "cam1?token=abc123").is_none());
    assert_eq!(server.stats()[0].key, "cam1");

    let dir = temp_dir("query-play");
    let out = dir.join("pulled.flv");
    let mut player = ffmpeg_pull(&format!("{base}/cam1"), 3, &out);
    wait_event(
        &mut events,
        Duration::from_secs(20),
        |e| matches!(e, ServerEvent::PlayStarted { key, .. } if key == "cam1"),
    )
    .await;
    assert!(
        player.wait(Duration::from_secs(30)).await.success(),
        "player of live/cam1 failed"
    );
    let (video, audio) = ffprobe_frame_counts(&out);
    // 3 s of 25 fps video and 48 kHz AAC, give or take the GOP the player starts with.
    assert!((65..=130).contains(&video), "decoded video frames {video}");
    assert!((120..=240).contains(&audio), "decoded audio frames {audio}");
    assert!(publisher.wait(Duration::from_secs(30)).await.success());
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_with_wrong_token_is_denied_under_the_bare_name() {
    let (server, seen) = server_checking_token().await;
    let mut events = server.events();
    let url = format!("rtmp://{}/live/cam1?token=wrong", server.local_addr());
    let mut ffmpeg = ffmpeg_publish(&url, 3);
    let refused = wait_event(&mut events, Duration::from_secs(20), |e| {
        matches!(
            e,
            ServerEvent::PublishRefused { .. } | ServerEvent::PublishStarted { .. }
        )
    })
    .await;
    match refused {
        ServerEvent::PublishRefused {
            app, key, reason, ..
        } => {
            assert_eq!((app.as_str(), key.as_str()), ("live", "cam1"));
            assert!(reason.contains("NetStream.Publish.Denied"), "{reason}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(!ffmpeg.wait(Duration::from_secs(20)).await.success());
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].key, "cam1");
    assert_eq!(seen[0].param("token"), Some("wrong"));
    assert!(server.subscribe("live", "cam1").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_given_only_as_parameter_reaches_the_authorizer() {
    // `?key=` form: the name is public, the secret travels as a parameter (percent-encoded,
    // with a repeated and an empty parameter around it).
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let server = RtmpServer::bind(loopback_config(), move |req: PublishRequest| {
        let allowed = req.param("key") == Some("s3cr/t k");
        record.lock().unwrap().push(req);
        async move { allowed }
    })
    .await
    .expect("bind");
    let mut events = server.events();
    let url = format!(
        "rtmp://{}/live/studio?tag=a&key=s3cr%2Ft%20k&tag=b&empty=",
        server.local_addr()
    );
    let _ffmpeg = ffmpeg_publish(&url, 4);
    let event = wait_event(&mut events, Duration::from_secs(20), |e| {
        matches!(
            e,
            ServerEvent::PublishStarted { .. } | ServerEvent::PublishRefused { .. }
        )
    })
    .await;
    assert!(
        matches!(&event, ServerEvent::PublishStarted { key, .. } if key == "studio"),
        "{event:?}"
    );
    let seen = seen.lock().unwrap();
    assert_eq!(
        seen[0].params.get_all("tag").collect::<Vec<_>>(),
        ["a", "b"]
    );
    assert_eq!(seen[0].param("empty"), Some(""));
    assert!(server.subscribe("live", "studio").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn player_with_query_plays_the_bare_name() {
    let server = server_allowing(&["cam1"], loopback_config()).await;
    let mut events = server.events();
    let base = format!("rtmp://{}/live", server.local_addr());
    let mut publisher = ffmpeg_publish(&format!("{base}/cam1"), 8);
    wait_event(&mut events, Duration::from_secs(20), |e| {
        matches!(e, ServerEvent::PublishStarted { .. })
    })
    .await;

    let dir = temp_dir("query-player");
    let out = dir.join("pulled.flv");
    let mut player = ffmpeg_pull(&format!("{base}/cam1?token=x"), 3, &out);
    let played = wait_event(&mut events, Duration::from_secs(20), |e| {
        matches!(e, ServerEvent::PlayStarted { .. })
    })
    .await;
    assert!(
        matches!(&played, ServerEvent::PlayStarted { key, .. } if key == "cam1"),
        "{played:?}"
    );
    assert!(
        player.wait(Duration::from_secs(30)).await.success(),
        "player of live/cam1?token=x failed"
    );
    let (video, _) = ffprobe_frame_counts(&out);
    assert!((65..=130).contains(&video), "decoded video frames {video}");
    assert!(publisher.wait(Duration::from_secs(30)).await.success());
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_with_query_goes_live_under_the_bare_app() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let server = RtmpServer::bind(loopback_config(), move |req: PublishRequest| {
        record.lock().unwrap().push(req);
        async { true }
    })
    .await
    .expect("bind");
    let mut events = server.events();
    let base = format!("rtmp://{}/", server.local_addr());
    let _ffmpeg = ffmpeg_publish_app(&base, "live?tenant=acme", "cam1?token=abc123", 4);
    let event = wait_event(&mut events, Duration::from_secs(20), |e| {
        matches!(
            e,
            ServerEvent::PublishStarted { .. } | ServerEvent::PublishRefused { .. }
        )
    })
    .await;
    assert!(
        matches!(&event, ServerEvent::PublishStarted { app, key, .. } if app == "live" && key == "cam1"),
        "{event:?}"
    );
    let seen = seen.lock().unwrap();
    assert_eq!(seen[0].app_params.get("tenant"), Some("acme"));
    assert_eq!(seen[0].param("tenant"), Some("acme"));
    assert_eq!(seen[0].param("token"), Some("abc123"));
    assert!(server.subscribe("live", "cam1").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn url_with_query_on_the_app_segment_goes_live_under_bare_names() {
    // `rtmp://host/live?tenant=acme/cam1?token=abc123`: ffmpeg sends the app and the stream
    // name each with its own query.
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let server = RtmpServer::bind(loopback_config(), move |req: PublishRequest| {
        record.lock().unwrap().push(req);
        async { true }
    })
    .await
    .expect("bind");
    let mut events = server.events();
    let url = format!(
        "rtmp://{}/live?tenant=acme/cam1?token=abc123",
        server.local_addr()
    );
    let _ffmpeg = ffmpeg_publish(&url, 4);
    let event = wait_event(&mut events, Duration::from_secs(20), |e| {
        matches!(
            e,
            ServerEvent::PublishStarted { .. } | ServerEvent::PublishRefused { .. }
        )
    })
    .await;
    assert!(
        matches!(&event, ServerEvent::PublishStarted { app, key, .. } if app == "live" && key == "cam1"),
        "{event:?}"
    );
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen[0].app_params.get("tenant"), Some("acme"));
        assert_eq!(seen[0].params.get("token"), Some("abc123"));
        assert_eq!(seen[0].params.get("tenant"), None);
    }

    // A player using the same URL form finds the stream too.
    let dir = temp_dir("query-app-play");
    let mut player = ffmpeg_pull(
        &format!(
            "rtmp://{}/live?tenant=acme/cam1?token=x",
            server.local_addr()
        ),
        1,
        &dir.join("pulled.flv"),
    );
    let played = wait_event(&mut events, Duration::from_secs(20), |e| {
        matches!(e, ServerEvent::PlayStarted { .. })
    })
    .await;
    assert!(
        matches!(&played, ServerEvent::PlayStarted { app, key, .. } if app == "live" && key == "cam1"),
        "{played:?}"
    );
    assert!(player.wait(Duration::from_secs(30)).await.success());
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_stream_name_before_the_query_is_refused() {
    // `rtmp://host/live/?token=abc123` leaves no name to go live under or to play.
    let server = RtmpServer::bind(loopback_config(), |_: PublishRequest| async { true })
        .await
        .expect("bind");
    let mut events = server.events();
    let url = format!("rtmp://{}/live/?token=abc123", server.local_addr());
    let mut ffmpeg = ffmpeg_publish(&url, 3);
    let event = wait_event(&mut events, Duration::from_secs(20), |e| {
        matches!(
            e,
            ServerEvent::PublishStarted { .. } | ServerEvent::PublishRefused { .. }
        )
    })
    .await;
    match event {
        ServerEvent::PublishRefused { key, reason, .. } => {
            assert_eq!(key, "");
            assert!(reason.contains("NetStream.Publish.BadName"), "{reason}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(!ffmpeg.wait(Duration::from_secs(20)).await.success());
    assert!(server.stats().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crate_clients_with_query_urls_publish_and_play_the_bare_names() {
    use bifrons_rtmp::client::{PublisherConfig, PublisherState, RtmpPlayer, RtmpPublisher};
    use bifrons_rtmp::tag::Tag;

    let (server, seen) = server_checking_token().await;
    let addr = server.local_addr();
    let publisher = RtmpPublisher::start(PublisherConfig::new(format!(
        "rtmp://{addr}/live?tenant=acme/cam1?token=abc123"
    )))
    .unwrap();
    tokio::time::timeout(
        Duration::from_secs(20),
        publisher.wait_for(|s| *s == PublisherState::Publishing),
    )
    .await
    .expect("publisher never went live");
    publisher.send_video_config(&avc_config(), 0).unwrap();
    publisher.send_video(&keyframe(0)).unwrap();
    {
        let seen = seen.lock().unwrap();
        assert_eq!(
            (seen[0].app.as_str(), seen[0].key.as_str()),
            ("live", "cam1")
        );
        assert_eq!(seen[0].app_params.get("tenant"), Some("acme"));
    }

    let url = format!("rtmp://{addr}/live?tenant=acme/cam1?token=x");
    let mut player = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Ok(player) = RtmpPlayer::connect(&url).await {
                return player;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("player of live?tenant=acme/cam1?token=x never started");
    let keyframe_arrived = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(tag) = player.next().await {
            if matches!(tag, Tag::Video { .. }) && tag.is_keyframe() && !tag.is_sequence_header() {
                return true;
            }
        }
        false
    })
    .await
    .expect("no keyframe");
    assert!(keyframe_arrived);
    assert_eq!(server.stats()[0].players, 1);
}
