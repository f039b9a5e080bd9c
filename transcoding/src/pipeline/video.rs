//! Video routes: VP8 ⇄ H.264, for viewers or RTMP servers lacking the sender's codec.
//!
//! Both sides use the 90 kHz RTP clock, so a picture keeps its timestamp. Keyframe requests
//! from the receiving side are forwarded to the encoder here; the caller also asks the sender
//! for a keyframe when the decoder reports an error (the picture chain is broken).

use crate::error::Result;
use crate::video::h264::{H264Decoder, H264Encoder, H264EncoderConfig};
use crate::video::vp8::{Vp8Decoder, Vp8Encoder, Vp8EncoderConfig};
use crate::video::EncodedVideo;

/// Browser VP8 → H.264 (RTMP egress, H.264-only viewers).
pub struct Vp8ToH264 {
    decoder: Vp8Decoder,
    encoder: H264Encoder,
}

impl Vp8ToH264 {
    /// A pipeline encoding H.264 with `config`.
    pub fn new(config: H264EncoderConfig) -> Result<Self> {
        Ok(Self {
            decoder: Vp8Decoder::new()?,
            encoder: H264Encoder::new(config)?,
        })
    }

    /// Transcodes one VP8 frame (depacketised) with its RTP timestamp.
    pub fn push(&mut self, vp8_frame: &[u8], timestamp: u32) -> Result<Option<EncodedVideo>> {
        match self.decoder.decode(vp8_frame, timestamp)? {
            Some(picture) => self.encoder.encode(&picture),
            None => Ok(None),
        }
    }

    /// Makes the next H.264 output an IDR.
    pub fn request_keyframe(&mut self) {
        self.encoder.request_keyframe();
    }
}

/// H.264 (RTMP ingest) → VP8 for viewers without H.264.
pub struct H264ToVp8 {
    decoder: H264Decoder,
    encoder: Option<Vp8Encoder>,
    template: Vp8EncoderConfig,
    keyframe_pending: bool,
}

impl H264ToVp8 {
    /// A pipeline encoding VP8 with `config`; its width and height are replaced by the
    /// decoded picture size (and the encoder rebuilt if the size changes mid-stream).
    pub fn new(config: Vp8EncoderConfig) -> Result<Self> {
        Ok(Self {
            decoder: H264Decoder::new()?,
            encoder: None,
            template: config,
            keyframe_pending: false,
        })
    }

    /// Transcodes one H.264 Annex-B access unit with its RTP timestamp.
    pub fn push(&mut self, access_unit: &[u8], timestamp: u32) -> Result<Vec<EncodedVideo>> {
        let Some(picture) = self.decoder.decode(access_unit, timestamp)? else {
            return Ok(Vec::new());
        };
        let size_changed = self.encoder.as_ref().is_none_or(|e| {
            e.config().width != picture.width || e.config().height != picture.height
        });
        if size_changed {
            let config = Vp8EncoderConfig {
                width: picture.width,
                height: picture.height,
                ..self.template
            };
            self.encoder = Some(Vp8Encoder::new(config)?);
        }
        let Some(encoder) = self.encoder.as_mut() else {
            return Ok(Vec::new());
        };
        if std::mem::take(&mut self.keyframe_pending) {
            encoder.request_keyframe();
        }
        encoder.encode(&picture)
    }

    /// Makes the next VP8 output a keyframe.
    pub fn request_keyframe(&mut self) {
        match self.encoder.as_mut() {
            Some(e) => e.request_keyframe(),
            None => self.keyframe_pending = true,
        }
    }
}
