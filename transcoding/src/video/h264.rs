//! H.264 (constrained baseline) encoder and decoder on OpenH264, built from the sources the
//! `openh264` crate bundles. Only the VP8⇄H.264 routes need it, hence the `h264` feature.

use openh264::decoder::{Decoder, DecoderConfig, Flush};
use openh264::encoder::{
    BitRate, Complexity, Encoder, EncoderConfig, FrameRate, FrameType, IntraFramePeriod,
    RateControlMode, UsageType,
};
use openh264::formats::YUVSource;
use openh264::OpenH264API;

use super::frame::{EncodedVideo, VideoFrame};
use crate::error::{Result, TranscodeError};

/// How an H.264 encoder is set up.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct H264EncoderConfig {
    /// Target bitrate in bit/s.
    pub bitrate: u32,
    /// Nominal frame rate for rate control.
    pub fps: f32,
    /// Longest distance between IDR frames, in frames (RTMP viewers join on an IDR).
    pub keyframe_interval: u32,
}

impl Default for H264EncoderConfig {
    fn default() -> Self {
        Self {
            bitrate: 1_500_000,
            fps: 30.0,
            keyframe_interval: 60,
        }
    }
}

/// Borrows a [`VideoFrame`] as OpenH264's input.
struct Source<'a>(&'a VideoFrame);

impl YUVSource for Source<'_> {
    fn dimensions(&self) -> (usize, usize) {
        (self.0.width, self.0.height)
    }
    fn strides(&self) -> (usize, usize, usize) {
        (self.0.width, self.0.width / 2, self.0.width / 2)
    }
    fn y(&self) -> &[u8] {
        self.0.y()
    }
    fn u(&self) -> &[u8] {
        self.0.u()
    }
    fn v(&self) -> &[u8] {
        self.0.v()
    }
}

fn lib_err(e: openh264::Error) -> TranscodeError {
    TranscodeError::codec("openh264", e)
}

/// Encodes I420 pictures into H.264 Annex-B access units.
pub struct H264Encoder {
    inner: Encoder,
}

impl H264Encoder {
    /// Creates a real-time camera encoder; the picture size is taken from the first frame.
    pub fn new(config: H264EncoderConfig) -> Result<Self> {
        let cfg = EncoderConfig::new()
            .bitrate(BitRate::from_bps(config.bitrate))
            .max_frame_rate(FrameRate::from_hz(config.fps))
            .rate_control_mode(RateControlMode::Bitrate)
            .usage_type(UsageType::CameraVideoRealTime)
            .complexity(Complexity::Low)
            .skip_frames(false)
            .intra_frame_period(IntraFramePeriod::from_num_frames(config.keyframe_interval));
        let inner = Encoder::with_api_config(OpenH264API::from_source(), cfg).map_err(lib_err)?;
        Ok(Self { inner })
    }

    /// Makes the next picture an IDR frame (answering PLI/FIR, or a new RTMP viewer).
    pub fn request_keyframe(&mut self) {
        self.inner.force_intra_frame();
    }

    /// Encodes one picture; `None` when the encoder skipped it.
    pub fn encode(&mut self, frame: &VideoFrame) -> Result<Option<EncodedVideo>> {
        let bitstream = self.inner.encode(&Source(frame)).map_err(lib_err)?;
        let keyframe = match bitstream.frame_type() {
            FrameType::IDR | FrameType::I => true,
            FrameType::P | FrameType::IPMixed => false,
            FrameType::Skip | FrameType::Invalid => return Ok(None),
        };
        let data = bitstream.to_vec();
        if data.is_empty() {
            return Ok(None);
        }
        Ok(Some(EncodedVideo {
            data,
            timestamp: frame.timestamp,
            keyframe,
        }))
    }
}

/// Decodes H.264 Annex-B access units to I420 pictures.
pub struct H264Decoder {
    inner: Decoder,
}

impl H264Decoder {
    /// Creates a decoder.
    pub fn new() -> Result<Self> {
        Ok(Self {
            inner: Decoder::new().map_err(lib_err)?,
        })
    }

    /// Creates a decoder for streams with B-frames: OpenH264 reorders itself and returns
    /// pictures in display order, at most one per access unit and possibly one decoded
    /// earlier (the timestamp given to [`H264Decoder::decode`] is then not the picture's).
    /// It is never flushed between access units: flushing a stream with B-frames leaks
    /// OpenH264's picture buffers until it fails with "out of memory" (dsOutOfMemory).
    pub fn reordering() -> Result<Self> {
        let config = DecoderConfig::new().flush_after_decode(Flush::NoFlush);
        Ok(Self {
            inner: Decoder::with_api_config(OpenH264API::from_source(), config).map_err(lib_err)?,
        })
    }

    /// Decodes one Annex-B access unit (parameter sets may precede the picture);
    /// `Ok(None)` when it held no picture (e.g. SPS/PPS only).
    pub fn decode(&mut self, access_unit: &[u8], timestamp: u32) -> Result<Option<VideoFrame>> {
        if access_unit.is_empty() {
            return Err(TranscodeError::malformed("h264", "empty access unit"));
        }
        let decoded = self
            .inner
            .decode(access_unit)
            .map_err(|e| TranscodeError::malformed("h264", e))?;
        let Some(picture) = decoded else {
            return Ok(None);
        };
        let (w, h) = picture.dimensions();
        if w == 0 || h == 0 || w % 2 != 0 || h % 2 != 0 {
            return Err(TranscodeError::Unsupported(format!(
                "H.264 picture size {w}x{h}"
            )));
        }
        let (sy, su, sv) = picture.strides();
        let frame = VideoFrame::from_planes(
            w,
            h,
            [(picture.y(), sy), (picture.u(), su), (picture.v(), sv)],
            timestamp,
        )?;
        Ok(Some(frame))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::video::testpattern::{moving_pattern, psnr_y};

    const W: usize = 320;
    const H: usize = 240;

    #[test]
    fn moving_pattern_round_trips_above_30_db() {
        let mut enc = H264Encoder::new(H264EncoderConfig {
            bitrate: 1_500_000,
            ..Default::default()
        })
        .unwrap();
        let mut dec = H264Decoder::new().unwrap();
        let mut worst = f64::MAX;
        let mut pictures = 0;
        for i in 0..30 {
            let raw = moving_pattern(W, H, i);
            let frame = VideoFrame::new(W, H, raw.clone(), (i * 3000) as u32).unwrap();
            let Some(au) = enc.encode(&frame).unwrap() else {
                continue;
            };
            if i == 0 {
                assert!(au.keyframe);
            }
            if let Some(pic) = dec.decode(&au.data, au.timestamp).unwrap() {
                assert_eq!((pic.width, pic.height, pic.timestamp), (W, H, au.timestamp));
                worst = worst.min(psnr_y(&raw, &pic.data, W, H));
                pictures += 1;
            }
        }
        assert!(pictures >= 25, "only {pictures} pictures decoded");
        eprintln!("worst luma PSNR {worst:.1} dB");
        assert!(worst >= 30.0, "worst PSNR {worst:.1} dB");
    }

    #[test]
    fn garbage_is_an_error_or_no_picture_never_a_panic() {
        let mut dec = H264Decoder::new().unwrap();
        assert!(dec.decode(&[], 0).is_err());
        // A slice NAL with no SPS/PPS before it cannot produce a picture.
        let r = dec.decode(&[0, 0, 0, 1, 0x65, 0x88, 0x84, 0x21, 0xA0], 0);
        assert!(!matches!(r, Ok(Some(_))));
    }
}
