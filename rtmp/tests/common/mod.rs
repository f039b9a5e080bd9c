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
        let child = cmd.stdin(Stdio::null()).spawn().expect("ffmpeg must be installed (scripts/deps/rtmp.apt)");
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
    ServerConfig { listen: "127.0.0.1:0".parse().unwrap(), ..ServerConfig::default() }
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
    ChildGuard::spawn(Command::new("ffmpeg").args([
        "-hide_banner", "-loglevel", "error", "-nostats", "-re",
        "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25",
        "-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=48000",
        "-t", &seconds.to_string(),
        "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
        "-g", "50", "-keyint_min", "50", "-sc_threshold", "0",
        "-c:a", "aac", "-b:a", "64k", "-ac", "1",
        "-f", "flv", url,
    ]))
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
        .args(["-v", "error", "-count_frames", "-show_entries", "stream=codec_type,nb_read_frames", "-of", "csv=p=0"])
        .arg(path)
        .output()
        .expect("ffprobe");
    let text = String::from_utf8_lossy(&out.stdout);
    let (mut video, mut audio) = (0, 0);
    for line in text.lines() {
        let mut parts = line.split(',');
        let kind = parts.next().unwrap_or("");
        let count: u64 = parts.next().and_then(|c| c.trim().parse().ok()).unwrap_or(0);
        match kind {
            "video" => video = count,
            "audio" => audio = count,
            _ => {}
        }
    }
    (video, audio)
}

pub fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("bifrons-rtmp-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
