//! Bifrons' own media types: what plugins and transports see instead of webrtc-rs types.

use bytes::Bytes;
use serde_json::{json, Value};

/// Audio or video: the two kinds of RTP media.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaKind {
    Audio,
    Video,
}

impl MediaKind {
    /// The name used in Janus events (`"audio"`, `"video"`).
    pub fn as_str(self) -> &'static str {
        match self {
            MediaKind::Audio => "audio",
            MediaKind::Video => "video",
        }
    }

    /// Index into per-kind arrays.
    pub fn index(self) -> usize {
        match self {
            MediaKind::Audio => 0,
            MediaKind::Video => 1,
        }
    }

    pub const ALL: [MediaKind; 2] = [MediaKind::Audio, MediaKind::Video];
}

/// One RTP packet, header fields that plugins use plus the payload (shared, not copied).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpPacket {
    pub payload_type: u8,
    pub sequence_number: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    pub marker: bool,
    pub payload: Bytes,
}

/// RTCP feedback a plugin acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RtcpFeedback {
    /// The peer asks for a keyframe (PLI or FIR).
    KeyframeRequest,
    /// The peer's receiver estimate of the bitrate it can take, bits per second.
    Remb(u64),
}

/// A data-channel message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataMessage {
    Text(String),
    Binary(Bytes),
}

/// Whether an SDP is an offer or an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsepType {
    Offer,
    Answer,
}

/// A session description as exchanged with clients (`{"type","sdp"}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jsep {
    pub kind: JsepType,
    pub sdp: String,
    /// `trickle: false` from a client means its SDP already carries every candidate.
    pub trickle: bool,
}

impl Jsep {
    pub fn offer(sdp: String) -> Self {
        Self {
            kind: JsepType::Offer,
            sdp,
            trickle: true,
        }
    }

    pub fn answer(sdp: String) -> Self {
        Self {
            kind: JsepType::Answer,
            sdp,
            trickle: true,
        }
    }

    /// The JSON object sent to clients.
    pub fn to_json(&self) -> Value {
        let kind = match self.kind {
            JsepType::Offer => "offer",
            JsepType::Answer => "answer",
        };
        json!({ "type": kind, "sdp": self.sdp })
    }
}

/// A remote ICE candidate as trickled by a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteCandidate {
    pub candidate: String,
    pub sdp_mid: Option<String>,
    pub sdp_mline_index: Option<u16>,
}

/// A local ICE candidate to trickle to the client (full-trickle mode); `None` marks the end.
pub type LocalCandidate = Option<RemoteCandidate>;
