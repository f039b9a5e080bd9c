//! VP8 encoder and decoder over libvpx (through `env-libvpx-sys`).
//!
//! The encoder talks to libvpx directly rather than through `vpx-encode`: that wrapper fixes
//! eight encoder threads (too many for a gateway running many legs), offers no way to force a
//! keyframe when a receiver sends PLI/FIR, no speed setting for VP8, and asserts (panics) on a
//! short input buffer.

use std::ffi::CStr;
use std::mem::MaybeUninit;
use std::os::raw::{c_int, c_long, c_ulong};
use std::ptr;

use vpx_sys::*;

use super::frame::{EncodedVideo, VideoFrame};
use crate::error::{Result, TranscodeError};

fn check(ctx: &mut vpx_codec_ctx_t, err: vpx_codec_err_t, what: &str) -> Result<()> {
    if err == vpx_codec_err_t::VPX_CODEC_OK {
        return Ok(());
    }
    // SAFETY: the context was initialised (or zeroed) and libvpx returns a static string.
    let msg = unsafe { CStr::from_ptr(vpx_codec_error(ctx)) }.to_string_lossy();
    let reason = format!("{what}: {msg} ({err:?})");
    Err(match err {
        vpx_codec_err_t::VPX_CODEC_CORRUPT_FRAME
        | vpx_codec_err_t::VPX_CODEC_UNSUP_BITSTREAM
        | vpx_codec_err_t::VPX_CODEC_INVALID_PARAM
        | vpx_codec_err_t::VPX_CODEC_UNSUP_FEATURE => TranscodeError::malformed("vp8", reason),
        _ => TranscodeError::codec("libvpx", reason),
    })
}

/// How a VP8 encoder is set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vp8EncoderConfig {
    /// Picture width (even).
    pub width: usize,
    /// Picture height (even).
    pub height: usize,
    /// Target bitrate in kbit/s.
    pub bitrate_kbps: u32,
    /// Nominal frame rate, used by rate control.
    pub fps: u32,
    /// libvpx speed/quality trade-off for real-time mode (0..=16; higher is faster).
    pub cpu_used: i32,
    /// Encoder threads.
    pub threads: u32,
    /// Longest distance between keyframes, in frames.
    pub keyframe_interval: u32,
}

impl Default for Vp8EncoderConfig {
    fn default() -> Self {
        Self {
            width: 640,
            height: 480,
            bitrate_kbps: 1000,
            fps: 30,
            cpu_used: 8,
            threads: 1,
            keyframe_interval: 300,
        }
    }
}

/// Encodes I420 pictures to VP8 in real-time mode.
pub struct Vp8Encoder {
    // Boxed: libvpx keeps pointers into the context, so it must not move.
    ctx: Box<vpx_codec_ctx_t>,
    config: Vp8EncoderConfig,
    force_keyframe: bool,
    pts: i64,
}

// SAFETY: a libvpx context has no thread affinity; `&mut self` on every call serialises access.
unsafe impl Send for Vp8Encoder {}

impl Vp8Encoder {
    /// Creates an encoder for pictures of the configured size.
    pub fn new(config: Vp8EncoderConfig) -> Result<Self> {
        if config.width == 0
            || config.height == 0
            || config.width % 2 != 0
            || config.height % 2 != 0
        {
            return Err(TranscodeError::Unsupported(format!(
                "VP8 {}x{}",
                config.width, config.height
            )));
        }
        // SAFETY: plain C structs filled by libvpx before use; the context is zeroed as the
        // API expects and destroyed in Drop only after a successful init.
        unsafe {
            let iface = vpx_codec_vp8_cx();
            let mut cfg = MaybeUninit::<vpx_codec_enc_cfg_t>::zeroed().assume_init();
            let mut ctx = Box::new(MaybeUninit::<vpx_codec_ctx_t>::zeroed().assume_init());
            check(
                &mut ctx,
                vpx_codec_enc_config_default(iface, &mut cfg, 0),
                "config",
            )?;
            cfg.g_w = config.width as _;
            cfg.g_h = config.height as _;
            cfg.g_timebase.num = 1;
            cfg.g_timebase.den = config.fps.max(1) as c_int;
            cfg.rc_target_bitrate = config.bitrate_kbps;
            cfg.g_threads = config.threads.max(1);
            // Real-time: no look-ahead, CBR, frames may be dropped rather than delayed.
            cfg.g_lag_in_frames = 0;
            cfg.rc_end_usage = vpx_rc_mode::VPX_CBR;
            cfg.g_error_resilient = 1;
            cfg.kf_mode = vpx_kf_mode::VPX_KF_AUTO;
            cfg.kf_max_dist = config.keyframe_interval.max(1);
            let err =
                vpx_codec_enc_init_ver(&mut *ctx, iface, &cfg, 0, VPX_ENCODER_ABI_VERSION as c_int);
            check(&mut ctx, err, "init")?;
            let mut encoder = Self {
                ctx,
                config,
                force_keyframe: true,
                pts: 0,
            };
            let err = vpx_codec_control_(
                &mut *encoder.ctx,
                vp8e_enc_control_id::VP8E_SET_CPUUSED as c_int,
                config.cpu_used.clamp(-16, 16) as c_int,
            );
            check(&mut encoder.ctx, err, "cpu-used")?;
            Ok(encoder)
        }
    }

    /// The configuration this encoder was built with.
    pub fn config(&self) -> &Vp8EncoderConfig {
        &self.config
    }

    /// Makes the next picture a keyframe (answering PLI/FIR).
    pub fn request_keyframe(&mut self) {
        self.force_keyframe = true;
    }

    /// Encodes one picture; returns the frames libvpx emitted (none if rate control dropped it).
    pub fn encode(&mut self, frame: &VideoFrame) -> Result<Vec<EncodedVideo>> {
        if frame.width != self.config.width || frame.height != self.config.height {
            return Err(TranscodeError::BadFrame(format!(
                "VP8 encoder built for {}x{}, got {}x{}",
                self.config.width, self.config.height, frame.width, frame.height
            )));
        }
        let flags = if std::mem::take(&mut self.force_keyframe) {
            VPX_EFLAG_FORCE_KF as vpx_enc_frame_flags_t
        } else {
            0
        };
        let mut out = Vec::new();
        // SAFETY: the image only borrows `frame.data`, whose length VideoFrame::new checked
        // against the dimensions; libvpx reads it during vpx_codec_encode and keeps no pointer.
        // Packets returned by get_cx_data are valid until the next encode call and are copied.
        unsafe {
            let mut image = MaybeUninit::<vpx_image_t>::zeroed().assume_init();
            let wrapped = vpx_img_wrap(
                &mut image,
                vpx_img_fmt::VPX_IMG_FMT_I420,
                frame.width as _,
                frame.height as _,
                1,
                frame.data.as_ptr() as *mut u8,
            );
            if wrapped.is_null() {
                return Err(TranscodeError::codec("libvpx", "vpx_img_wrap failed"));
            }
            let err = vpx_codec_encode(
                &mut *self.ctx,
                &image,
                self.pts,
                1,
                flags,
                VPX_DL_REALTIME as c_ulong,
            );
            check(&mut self.ctx, err, "encode")?;
            self.pts += 1;
            let mut iter: vpx_codec_iter_t = ptr::null();
            loop {
                let pkt = vpx_codec_get_cx_data(&mut *self.ctx, &mut iter);
                if pkt.is_null() {
                    break;
                }
                if (*pkt).kind != vpx_codec_cx_pkt_kind::VPX_CODEC_CX_FRAME_PKT {
                    continue;
                }
                let f = (*pkt).data.frame;
                let data = std::slice::from_raw_parts(f.buf as *const u8, f.sz as usize).to_vec();
                out.push(EncodedVideo {
                    data,
                    timestamp: frame.timestamp,
                    keyframe: f.flags & VPX_FRAME_IS_KEY != 0,
                });
            }
        }
        Ok(out)
    }
}

impl Drop for Vp8Encoder {
    fn drop(&mut self) {
        // SAFETY: the context was initialised in `new` (a failed init never builds Self).
        unsafe {
            vpx_codec_destroy(&mut *self.ctx);
        }
    }
}

/// Decodes VP8 frames to I420 pictures.
pub struct Vp8Decoder {
    ctx: Box<vpx_codec_ctx_t>,
}

// SAFETY: as for the encoder.
unsafe impl Send for Vp8Decoder {}

impl Vp8Decoder {
    /// Creates a single-threaded decoder.
    pub fn new() -> Result<Self> {
        // SAFETY: zeroed context initialised by libvpx; destroyed in Drop.
        unsafe {
            let mut ctx = Box::new(MaybeUninit::<vpx_codec_ctx_t>::zeroed().assume_init());
            let cfg = vpx_codec_dec_cfg_t {
                threads: 1,
                w: 0,
                h: 0,
            };
            let err = vpx_codec_dec_init_ver(
                &mut *ctx,
                vpx_codec_vp8_dx(),
                &cfg,
                0,
                VPX_DECODER_ABI_VERSION as c_int,
            );
            check(&mut ctx, err, "init")?;
            Ok(Self { ctx })
        }
    }

    /// Decodes one VP8 frame (the depacketised RTP payload); `Ok(None)` when libvpx shows
    /// no picture for it. Corrupt or truncated frames are errors.
    pub fn decode(&mut self, data: &[u8], timestamp: u32) -> Result<Option<VideoFrame>> {
        if data.is_empty() {
            return Err(TranscodeError::malformed("vp8", "empty frame"));
        }
        let len = u32::try_from(data.len())
            .map_err(|_| TranscodeError::malformed("vp8", "frame too large"))?;
        // SAFETY: libvpx reads `len` bytes from `data` during the call only. The returned image
        // stays valid until the next decode call; its planes are copied out before returning.
        unsafe {
            let err = vpx_codec_decode(
                &mut *self.ctx,
                data.as_ptr(),
                len,
                ptr::null_mut(),
                0 as c_long,
            );
            check(&mut self.ctx, err, "decode")?;
            let mut iter: vpx_codec_iter_t = ptr::null();
            let mut picture = None;
            loop {
                let img = vpx_codec_get_frame(&mut *self.ctx, &mut iter);
                if img.is_null() {
                    break;
                }
                let img = &*img;
                if img.fmt != vpx_img_fmt::VPX_IMG_FMT_I420 {
                    return Err(TranscodeError::malformed(
                        "vp8",
                        format!("unexpected image format {:?}", img.fmt),
                    ));
                }
                let (w, h) = (img.d_w as usize, img.d_h as usize);
                if w % 2 != 0 || h % 2 != 0 {
                    return Err(TranscodeError::Unsupported(format!(
                        "odd VP8 picture size {w}x{h}"
                    )));
                }
                let plane = |i: usize, rows: usize| {
                    let stride = img.stride[i] as usize;
                    (
                        std::slice::from_raw_parts(img.planes[i] as *const u8, stride * rows),
                        stride,
                    )
                };
                picture = Some(VideoFrame::from_planes(
                    w,
                    h,
                    [plane(0, h), plane(1, h / 2), plane(2, h / 2)],
                    timestamp,
                )?);
            }
            Ok(picture)
        }
    }
}

impl Drop for Vp8Decoder {
    fn drop(&mut self) {
        // SAFETY: initialised in `new`.
        unsafe {
            vpx_codec_destroy(&mut *self.ctx);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::video::testpattern::{moving_pattern, psnr_y};

    const W: usize = 320;
    const H: usize = 240;

    fn encode_pattern(frames: usize) -> Vec<(Vec<u8>, EncodedVideo)> {
        let config = Vp8EncoderConfig {
            width: W,
            height: H,
            bitrate_kbps: 1500,
            ..Default::default()
        };
        let mut enc = Vp8Encoder::new(config).unwrap();
        let mut out = Vec::new();
        for i in 0..frames {
            let raw = moving_pattern(W, H, i);
            let frame = VideoFrame::new(W, H, raw.clone(), (i * 3000) as u32).unwrap();
            for e in enc.encode(&frame).unwrap() {
                out.push((raw.clone(), e));
            }
        }
        out
    }

    #[test]
    fn moving_pattern_round_trips_above_30_db() {
        let encoded = encode_pattern(30);
        assert!(encoded.len() >= 25, "only {} frames out", encoded.len());
        assert!(encoded[0].1.keyframe);
        let mut dec = Vp8Decoder::new().unwrap();
        let mut worst = f64::MAX;
        for (raw, e) in &encoded {
            let pic = dec
                .decode(&e.data, e.timestamp)
                .unwrap()
                .expect("a picture per frame");
            assert_eq!((pic.width, pic.height, pic.timestamp), (W, H, e.timestamp));
            worst = worst.min(psnr_y(raw, &pic.data, W, H));
        }
        eprintln!("worst luma PSNR {worst:.1} dB");
        assert!(worst >= 30.0, "worst PSNR {worst:.1} dB");
    }

    #[test]
    fn requested_keyframe_is_produced() {
        let mut enc = Vp8Encoder::new(Vp8EncoderConfig {
            width: W,
            height: H,
            ..Default::default()
        })
        .unwrap();
        let mut kinds = Vec::new();
        for i in 0..5 {
            if i == 3 {
                enc.request_keyframe();
            }
            let f = VideoFrame::new(W, H, moving_pattern(W, H, i), 0).unwrap();
            kinds.extend(enc.encode(&f).unwrap().into_iter().map(|e| e.keyframe));
        }
        assert_eq!(kinds, vec![true, false, false, true, false]);
    }

    #[test]
    fn corrupt_and_truncated_frames_are_errors() {
        let encoded = encode_pattern(2);
        let key = &encoded[0].1.data;
        let mut dec = Vp8Decoder::new().unwrap();
        assert!(dec.decode(&[], 0).is_err());
        assert!(dec.decode(&key[..8], 0).is_err(), "truncated keyframe");
        let mut bad_sync = key.clone();
        bad_sync[3] ^= 0xFF;
        assert!(dec.decode(&bad_sync, 0).is_err(), "broken start code");
        // The decoder recovers on the next good keyframe.
        assert!(dec.decode(key, 0).unwrap().is_some());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..2000)) {
            let mut dec = Vp8Decoder::new().unwrap();
            let _ = dec.decode(&bytes, 0);
        }
    }
}
