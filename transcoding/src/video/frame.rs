//! Raw and encoded video frames exchanged by the video codecs.

use crate::error::{Result, TranscodeError};

/// A decoded picture in planar I420 (Y, then U, then V; chroma at half resolution).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoFrame {
    /// Luma width in pixels (even).
    pub width: usize,
    /// Luma height in pixels (even).
    pub height: usize,
    /// `width*height` luma bytes then two `width/2*height/2` chroma planes, no padding.
    pub data: Vec<u8>,
    /// RTP timestamp (90 kHz clock).
    pub timestamp: u32,
}

impl VideoFrame {
    /// Wraps I420 bytes, checking the size matches the dimensions.
    pub fn new(width: usize, height: usize, data: Vec<u8>, timestamp: u32) -> Result<Self> {
        if width == 0 || height == 0 || width % 2 != 0 || height % 2 != 0 {
            return Err(TranscodeError::BadFrame(format!(
                "{width}x{height}: dimensions must be even and non-zero"
            )));
        }
        if data.len() != Self::i420_len(width, height) {
            return Err(TranscodeError::BadFrame(format!(
                "{} bytes for a {width}x{height} I420 picture (expected {})",
                data.len(),
                Self::i420_len(width, height)
            )));
        }
        Ok(Self {
            width,
            height,
            data,
            timestamp,
        })
    }

    /// Bytes of an unpadded I420 picture of this size.
    pub fn i420_len(width: usize, height: usize) -> usize {
        width * height + 2 * (width / 2) * (height / 2)
    }

    /// The luma plane.
    pub fn y(&self) -> &[u8] {
        &self.data[..self.width * self.height]
    }

    /// The U (Cb) plane.
    pub fn u(&self) -> &[u8] {
        let start = self.width * self.height;
        &self.data[start..start + self.chroma_len()]
    }

    /// The V (Cr) plane.
    pub fn v(&self) -> &[u8] {
        let start = self.width * self.height + self.chroma_len();
        &self.data[start..start + self.chroma_len()]
    }

    fn chroma_len(&self) -> usize {
        (self.width / 2) * (self.height / 2)
    }

    /// Copies planes with arbitrary strides (as codecs hand them out) into an unpadded frame.
    #[cfg_attr(not(any(feature = "vp8", feature = "h264")), allow(dead_code))]
    pub(crate) fn from_planes(
        width: usize,
        height: usize,
        planes: [(&[u8], usize); 3],
        timestamp: u32,
    ) -> Result<Self> {
        let mut data = Vec::with_capacity(Self::i420_len(width, height));
        for (i, (plane, stride)) in planes.iter().enumerate() {
            let (w, h) = if i == 0 {
                (width, height)
            } else {
                (width / 2, height / 2)
            };
            for row in 0..h {
                let start = row * stride;
                let line = plane.get(start..start + w).ok_or_else(|| {
                    TranscodeError::BadFrame("decoded plane shorter than its size".into())
                })?;
                data.extend_from_slice(line);
            }
        }
        Self::new(width, height, data, timestamp)
    }
}

/// One compressed video frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedVideo {
    /// The codec bitstream for one picture (VP8 frame, or H.264 Annex-B access unit).
    pub data: Vec<u8>,
    /// RTP timestamp (90 kHz clock) of the picture.
    pub timestamp: u32,
    /// True when the picture can be decoded on its own.
    pub keyframe: bool,
}
