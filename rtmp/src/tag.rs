//! An RTMP media message as it travels from a publisher to players and subscribers.
//!
//! Tags stay in FLV form (zero-copy `Bytes`) on the relay path; only subscribers that want codec
//! frames pay for parsing them.

use bytes::Bytes;
use rml_rtmp::sessions::StreamMetadata;

/// One message of a live stream.
#[derive(Debug, Clone, PartialEq)]
pub enum Tag {
    /// `onMetaData` properties.
    Metadata(StreamMetadata),
    /// An FLV audio tag body.
    Audio {
        /// Timestamp in milliseconds.
        timestamp: u32,
        /// The tag body.
        data: Bytes,
    },
    /// An FLV video tag body.
    Video {
        /// Timestamp in milliseconds.
        timestamp: u32,
        /// The tag body.
        data: Bytes,
    },
}

impl Tag {
    /// True for a video tag that starts a GOP (frame type 1, not a sequence header).
    pub fn is_keyframe(&self) -> bool {
        match self {
            Tag::Video { data, .. } => {
                data.first().map(|b| b >> 4 & 0x07) == Some(1) && !self.is_sequence_header()
            }
            _ => false,
        }
    }

    /// True for an AVC or AAC sequence header (decoder configuration).
    pub fn is_sequence_header(&self) -> bool {
        match self {
            Tag::Video { data, .. } => {
                data.len() >= 2 && data[0] & 0x80 == 0 && data[0] & 0x0f == 7 && data[1] == 0
            }
            Tag::Audio { data, .. } => data.len() >= 2 && data[0] >> 4 == 10 && data[1] == 0,
            Tag::Metadata(_) => false,
        }
    }

    /// Payload size in bytes (for bitrate accounting).
    pub fn len(&self) -> usize {
        match self {
            Tag::Audio { data, .. } | Tag::Video { data, .. } => data.len(),
            Tag::Metadata(_) => 0,
        }
    }

    /// True when the tag carries no payload.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
