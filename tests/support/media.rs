//! Media helpers shared by tests: real Opus packets from an encoder, and what ffprobe and a
//! full ffmpeg decode say about a file.

use std::path::Path;
use std::process::Command;

/// 20 ms of 48 kHz audio.
pub const FRAME: usize = 960;

/// `seconds` of a 440 Hz sine at 48 kHz, mono, encoded as 20 ms Opus packets.
pub fn sine_packets(seconds: usize) -> Vec<Vec<u8>> {
    let mut enc =
        opus::Encoder::new(48_000, opus::Channels::Mono, opus::Application::Audio).unwrap();
    let frames = seconds * 50;
    (0..frames)
        .map(|f| {
            let pcm: Vec<i16> = (0..FRAME)
                .map(|i| {
                    let t = (f * FRAME + i) as f64 / 48_000.0;
                    (8_000.0 * (2.0 * std::f64::consts::PI * 440.0 * t).sin()) as i16
                })
                .collect();
            enc.encode_vec(&pcm, 4000).unwrap()
        })
        .collect()
}

/// What ffprobe and a full ffmpeg decode say about a file.
#[derive(Debug)]
pub struct Probe {
    pub codec: String,
    pub duration_s: f64,
    pub channels: u32,
}

pub fn ffprobe(path: &Path) -> Probe {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name,channels:format=duration",
            "-of",
            "default=noprint_wrappers=1",
        ])
        .arg(path)
        .output()
        .expect("ffprobe is installed (scripts/install-deps)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "ffprobe failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let field = |name: &str| -> String {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("no {name} in ffprobe output: {text}"))
            .to_owned()
    };
    // Decode every packet, concealment included: any decoder complaint fails the test.
    let decode = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-f", "null", "-"])
        .output()
        .expect("ffmpeg is installed");
    assert!(
        decode.status.success() && decode.stderr.is_empty(),
        "ffmpeg could not decode {}: {}",
        path.display(),
        String::from_utf8_lossy(&decode.stderr)
    );
    let probe = Probe {
        codec: field("codec_name"),
        duration_s: field("duration").parse().unwrap(),
        channels: field("channels").parse().unwrap(),
    };
    eprintln!("ffprobe {}: {probe:?}", path.display());
    probe
}

/// Mean level of the decoded audio in dBFS (ffmpeg's volumedetect).
pub fn mean_volume_db(path: &Path) -> f64 {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostats", "-i"])
        .arg(path)
        .args(["-af", "volumedetect", "-f", "null", "-"])
        .output()
        .expect("ffmpeg is installed");
    let text = String::from_utf8_lossy(&out.stderr);
    text.lines()
        .find_map(|l| l.split("mean_volume: ").nth(1))
        .and_then(|v| v.trim_end_matches(" dB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no mean_volume in: {text}"))
}
