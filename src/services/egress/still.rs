//! A still picture as the video of an audio-only mountpoint's egress (a room's mix), for RTMP
//! services that refuse a stream without video: `[egress] audio_only_video = "still"`.
//!
//! The picture (a flat dark 320x180 frame) is encoded once per process, on the first codec
//! worker that needs it, with the transcoding crate's H.264 encoder: one group of
//! [`STILL_GOP`] pictures, an IDR and P pictures that repeat it. Each egress then loops that
//! group at [`STILL_FPS`] frames per second (an IDR every 2 s, as RTMP services ask), the
//! picture timestamps (90 kHz) taken from the audio's RTP clock (48 kHz) so audio and video
//! share one time line in the FLV.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use bifrons_transcoding::video::h264::{H264Encoder, H264EncoderConfig};
use bifrons_transcoding::video::VideoFrame;

use super::video::{annex_b_nalus, split_parameter_sets, AccessUnit, MAX_KEYFRAME_INTERVAL_MS};

/// Pictures per second of the still video.
pub const STILL_FPS: u32 = 5;
/// Pictures per group: one IDR per [`MAX_KEYFRAME_INTERVAL_MS`].
pub const STILL_GOP: usize = (STILL_FPS * MAX_KEYFRAME_INTERVAL_MS / 1000) as usize;
/// Picture size, pixels.
const WIDTH: usize = 320;
const HEIGHT: usize = 180;
/// Audio RTP clock the picture times follow, Hz (Opus).
const AUDIO_CLOCK: u64 = 48_000;

/// The encoded group, made once.
static GOP: OnceLock<Result<Arc<[AccessUnit]>, String>> = OnceLock::new();

/// Encodes the group of pictures (a few ms of a codec worker, once per process).
fn encode_gop() -> Result<Arc<[AccessUnit]>, String> {
    let mut encoder = H264Encoder::new(H264EncoderConfig {
        bitrate: 100_000,
        fps: STILL_FPS as f32,
        keyframe_interval: STILL_GOP as u32,
    })
    .map_err(|e| e.to_string())?;
    let mut pixels = vec![0u8; VideoFrame::i420_len(WIDTH, HEIGHT)];
    // Dark slate: Y 40, U 140, V 120.
    let (y, chroma) = pixels.split_at_mut(WIDTH * HEIGHT);
    y.fill(40);
    let (u, v) = chroma.split_at_mut(WIDTH * HEIGHT / 4);
    u.fill(140);
    v.fill(120);
    let mut units = Vec::with_capacity(STILL_GOP);
    encoder.request_keyframe();
    for i in 0..STILL_GOP {
        let ts = (i as u32) * (90_000 / STILL_FPS);
        let frame =
            VideoFrame::new(WIDTH, HEIGHT, pixels.clone(), ts).map_err(|e| e.to_string())?;
        if let Some(encoded) = encoder.encode(&frame).map_err(|e| e.to_string())? {
            let nalus = annex_b_nalus(&encoded.data);
            units.push(split_parameter_sets(0, encoded.keyframe, nalus));
        }
    }
    match units.first() {
        Some(first) if first.keyframe && first.parameter_sets.is_some() => Ok(units.into()),
        _ => Err("the still picture did not encode to an IDR".into()),
    }
}

/// One egress' still video: which picture of the group comes next, and when.
pub struct StillVideo {
    gop: Option<Arc<[AccessUnit]>>,
    next: usize,
    /// Last audio RTP timestamp seen, and the audio time elapsed since the first (48 kHz).
    last_audio: Option<u32>,
    elapsed: u64,
    /// Audio time (48 kHz, from the first audio) at which the next picture is due.
    due: u64,
}

impl Default for StillVideo {
    fn default() -> Self {
        Self::new()
    }
}

impl StillVideo {
    /// A still video starting with an IDR at the first audio.
    pub fn new() -> Self {
        Self {
            gop: None,
            next: 0,
            last_audio: None,
            elapsed: 0,
            due: 0,
        }
    }

    /// Starts the group again: the next picture is an IDR (a target joined).
    pub fn request_keyframe(&mut self) {
        self.next = 0;
    }

    /// Follows the audio clock: given an audio RTP timestamp (48 kHz), the 90 kHz timestamp
    /// of a picture due now, if any (a backwards step of the audio is ignored).
    pub fn due(&mut self, audio_timestamp: u32) -> Option<u32> {
        if let Some(last) = self.last_audio {
            let step = audio_timestamp.wrapping_sub(last) as i32;
            if step <= 0 {
                return None;
            }
            self.elapsed += step as u64;
        }
        self.last_audio = Some(audio_timestamp);
        if self.elapsed < self.due {
            return None;
        }
        let period = AUDIO_CLOCK / u64::from(STILL_FPS);
        // After a gap, the cadence starts again from now instead of catching up.
        self.due = (self.due + period).max(self.elapsed + period / 2);
        Some((self.elapsed * 90_000 / AUDIO_CLOCK) as u32)
    }

    /// The next picture of the group, at `timestamp` (90 kHz); encodes the group the first
    /// time. `None` (logged once) when the encoder is not available.
    pub fn picture(&mut self, timestamp: u32) -> Option<AccessUnit> {
        if self.gop.is_none() {
            match GOP.get_or_init(encode_gop) {
                Ok(gop) => self.gop = Some(gop.clone()),
                Err(e) => {
                    static LOGGED: AtomicBool = AtomicBool::new(false);
                    if !LOGGED.swap(true, Ordering::Relaxed) {
                        tracing::warn!(error = %e, "egress still picture unavailable; audio only");
                    }
                    return None;
                }
            }
        }
        let gop = self.gop.as_ref()?;
        let mut unit = gop[self.next % gop.len()].clone();
        self.next = (self.next + 1) % gop.len();
        unit.timestamp = timestamp;
        Some(unit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pictures_follow_the_audio_clock_at_the_still_rate_with_an_idr_every_group() {
        let mut still = StillVideo::new();
        let mut pictures = Vec::new();
        let start = u32::MAX - 48_000; // the audio clock wraps after one second
        for i in 0..(50 * 6) {
            let ts = start.wrapping_add(i * 960);
            if let Some(t90) = still.due(ts) {
                pictures.push(still.picture(t90).expect("still picture encodes"));
            }
        }
        // 6 s of audio → 30 pictures, 200 ms (18000 ticks) apart, an IDR with SPS/PPS first
        // and every STILL_GOP pictures.
        assert_eq!(pictures.len(), 30);
        for pair in pictures.windows(2) {
            assert_eq!(pair[1].timestamp.wrapping_sub(pair[0].timestamp), 18_000);
        }
        for (i, p) in pictures.iter().enumerate() {
            assert!(!p.nalus.is_empty());
            if i % STILL_GOP == 0 {
                assert!(p.keyframe && p.parameter_sets.is_some(), "picture {i}");
            }
        }
        let decoded = {
            let mut decoder = bifrons_transcoding::video::h264::H264Decoder::new().unwrap();
            let (sps, pps) = pictures[0].parameter_sets.clone().unwrap();
            let mut n = 0;
            for p in &pictures {
                let mut au = Vec::new();
                if p.keyframe {
                    for nal in sps.iter().chain(pps.iter()) {
                        au.extend_from_slice(&[0, 0, 0, 1]);
                        au.extend_from_slice(nal);
                    }
                }
                for nal in &p.nalus {
                    au.extend_from_slice(&[0, 0, 0, 1]);
                    au.extend_from_slice(nal);
                }
                if decoder.decode(&au, p.timestamp).unwrap().is_some() {
                    n += 1;
                }
            }
            n
        };
        assert!(decoded >= 28, "{decoded} of 30 pictures decoded");
    }

    #[test]
    fn a_keyframe_request_restarts_the_group() {
        let mut still = StillVideo::new();
        let first = still.picture(0).unwrap();
        assert!(first.keyframe);
        let second = still.picture(18_000).unwrap();
        if STILL_GOP > 1 && !second.keyframe {
            still.request_keyframe();
            assert!(still.picture(36_000).unwrap().keyframe);
        }
        assert_eq!(still.due(1000), Some(0));
        assert_eq!(still.due(1960), None);
    }
}
