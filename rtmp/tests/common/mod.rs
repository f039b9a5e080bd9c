//! Helpers for tests that drive real ffmpeg/ffprobe processes on loopback.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use bifrons_rtmp::server::{RtmpServer, ServerConfig, ServerEvent};
use tokio::sync::broadcast;

/// Kills the child (by its own PID) when the test ends, pass or fail.
pub struct ChildGuard(pub Option<Child>);

impl ChildGuard {
    pub fn spawn(cmd: &mut Command) -> Self {
        let child = cmd
            .stdin(Stdio::null())
            .spawn()
            .expect("ffmpeg must be installed (scripts/deps/rtmp.apt)");
        Self(Some(child))
    }

    /// Waits for exit in a blocking thread, with a generous hang guard.
    pub async fn wait(&mut self, limit: Duration) -> ExitStatus {
        let mut child = self.0.take().expect("already waited");
        let started = Instant::now();
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                return status;
            }
            if started.elapsed() > limit {
                let _ = child.kill();
                let _ = child.wait();
                panic!("child still running after {limit:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub fn loopback_config() -> ServerConfig {
    ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..ServerConfig::default()
    }
}

pub async fn server_allowing(keys: &'static [&'static str], config: ServerConfig) -> RtmpServer {
    RtmpServer::bind(config, move |req: bifrons_rtmp::server::PublishRequest| async move {
        keys.contains(&req.key.as_str())
    })
    .await
    .expect("bind")
}

/// ffmpeg publishing testsrc2 (H.264, keyframe every 2 s at 25 fps) + 1 kHz sine (AAC) in real time.
pub fn ffmpeg_publish(url: &str, seconds: u32) -> ChildGuard {
    let mut command = Command::new("ffmpeg");
    command
        .args(test_media_args(seconds, true))
        .args(["-f", "flv", url]);
    ChildGuard::spawn(&mut command)
}

/// ffmpeg arguments for the test media: testsrc2 (H.264, keyframe every 2 s at 25 fps) and a
/// 1 kHz sine (AAC), paced in real time or as fast as possible.
fn test_media_args(seconds: u32, realtime: bool) -> Vec<String> {
    let mut args: Vec<String> = ["-hide_banner", "-loglevel", "error", "-nostats"]
        .map(String::from)
        .to_vec();
    if realtime {
        args.push("-re".into());
    }
    let seconds = seconds.to_string();
    args.extend(
        [
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=25",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=1000:sample_rate=48000",
            "-t",
            &seconds,
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-pix_fmt",
            "yuv420p",
            "-g",
            "50",
            "-keyint_min",
            "50",
            "-sc_threshold",
            "0",
            "-c:a",
            "aac",
            "-b:a",
            "64k",
            "-ac",
            "1",
        ]
        .map(String::from),
    );
    args
}

/// Waits for the first event matching `pred`, with a hang guard.
pub async fn wait_event(
    events: &mut broadcast::Receiver<ServerEvent>,
    limit: Duration,
    pred: impl Fn(&ServerEvent) -> bool,
) -> ServerEvent {
    tokio::time::timeout(limit, async {
        loop {
            match events.recv().await {
                Ok(e) if pred(&e) => return e,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(e) => panic!("event channel: {e}"),
            }
        }
    })
    .await
    .expect("expected server event did not arrive")
}

/// Counts decoded frames per stream type with ffprobe (`-count_frames`).
pub fn ffprobe_frame_counts(path: &Path) -> (u64, u64) {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-count_frames",
            "-show_entries",
            "stream=codec_type,nb_read_frames",
            "-of",
            "csv=p=0",
        ])
        .arg(path)
        .output()
        .expect("ffprobe");
    let text = String::from_utf8_lossy(&out.stdout);
    let (mut video, mut audio) = (0, 0);
    for line in text.lines() {
        let mut parts = line.split(',');
        let kind = parts.next().unwrap_or("");
        let count: u64 = parts
            .next()
            .and_then(|c| c.trim().parse().ok())
            .unwrap_or(0);
        match kind {
            "video" => video = count,
            "audio" => audio = count,
            _ => {}
        }
    }
    (video, audio)
}

pub fn temp_dir(name: &str) -> std::path::PathBuf {
    // Tests of one binary share a PID: a counter keeps their directories apart.
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("bifrons-rtmp-{name}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Makes a short H.264 + AAC FLV file with ffmpeg (as fast as possible, no pacing).
pub fn ffmpeg_make_flv(path: &Path, seconds: u32) {
    let status = Command::new("ffmpeg")
        .args(test_media_args(seconds, false))
        .arg("-y")
        .arg(path)
        .stdin(Stdio::null())
        .status()
        .expect("ffmpeg");
    assert!(status.success(), "ffmpeg could not make the test FLV");
}

/// Media of an FLV file as codec frames.
pub struct FlvMedia {
    pub video_config: bifrons_rtmp::AvcConfig,
    pub audio_config: bifrons_rtmp::AacConfig,
    pub video: Vec<bifrons_rtmp::VideoFrame>,
    pub audio: Vec<bifrons_rtmp::AudioFrame>,
}

pub fn read_flv_media(path: &Path) -> FlvMedia {
    use bifrons_rtmp::flv::*;
    let data = bytes::Bytes::from(std::fs::read(path).unwrap());
    let (mut vc, mut ac, mut video, mut audio) = (None, None, Vec::new(), Vec::new());
    for tag in parse_flv_file(&data).unwrap() {
        match tag.kind {
            FlvTagKind::Video => match parse_video_tag(&tag.data, tag.timestamp, 4).unwrap() {
                VideoTag::Config(c) => vc = Some(c),
                VideoTag::Frame(f) => video.push(f),
                _ => {}
            },
            FlvTagKind::Audio => match parse_audio_tag(&tag.data, tag.timestamp).unwrap() {
                AudioTag::Config(c) => ac = Some(c),
                AudioTag::Frame(f) => audio.push(f),
            },
            FlvTagKind::Script => {}
        }
    }
    FlvMedia {
        video_config: vc.unwrap(),
        audio_config: ac.unwrap(),
        video,
        audio,
    }
}

/// A small but well-formed H.264 configuration (baseline, level 3.0) for synthetic frames.
pub fn avc_config() -> bifrons_rtmp::AvcConfig {
    bifrons_rtmp::AvcConfig {
        profile: 66,
        compatibility: 0xc0,
        level: 30,
        nal_length_size: 4,
        sps: vec![bytes::Bytes::from_static(&[0x67, 0x42, 0xc0, 0x1e, 0xd9])],
        pps: vec![bytes::Bytes::from_static(&[0x68, 0xce, 0x3c, 0x80])],
    }
}

/// A synthetic IDR access unit at `ts` ms; the timestamp's low byte is in the payload.
pub fn keyframe(ts: u32) -> bifrons_rtmp::VideoFrame {
    bifrons_rtmp::VideoFrame {
        dts_ms: ts,
        cts_ms: 0,
        keyframe: true,
        nalus: vec![bytes::Bytes::from(vec![0x65, 0x88, 0x84, ts as u8])],
    }
}

/// A synthetic non-IDR access unit at `ts` ms (it references the frames before it).
pub fn delta_frame(ts: u32) -> bifrons_rtmp::VideoFrame {
    bifrons_rtmp::VideoFrame {
        dts_ms: ts,
        cts_ms: 0,
        keyframe: false,
        nalus: vec![bytes::Bytes::from(vec![0x41, 0x9a, 0x02, ts as u8])],
    }
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Publishes `media` through the client, interleaving audio and video by timestamp. It waits
/// for room in the queue before each tag (`ready`), so nothing is dropped however fast it goes.
pub async fn publish_media(publisher: &bifrons_rtmp::client::RtmpPublisher, media: &FlvMedia) {
    publisher.send_video_config(&media.video_config, 0).unwrap();
    publisher.send_audio_config(&media.audio_config, 0).unwrap();
    let (mut v, mut a) = (0, 0);
    while v < media.video.len() || a < media.audio.len() {
        publisher.ready().await.unwrap();
        let video_next = a >= media.audio.len()
            || (v < media.video.len() && media.video[v].dts_ms <= media.audio[a].timestamp_ms);
        if video_next {
            publisher.send_video(&media.video[v]).unwrap();
            v += 1;
        } else {
            publisher.send_audio(&media.audio[a]).unwrap();
            a += 1;
        }
    }
    assert_eq!(publisher.dropped(), 0);
}
