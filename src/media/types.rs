//! Bifrons' own media types: what plugins and transports see instead of webrtc-rs types.

use bytes::Bytes;
use serde_json::{json, Value};

/// Audio or video: the two kinds of RTP media.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaKind {
    /// An `m=audio` section (Opus, G.711, telephone-event...).
    Audio,
    /// An `m=video` section (VP8, H.264...).
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

    /// Both kinds, in [`MediaKind::index`] order, to loop over per-kind state.
    pub const ALL: [MediaKind; 2] = [MediaKind::Audio, MediaKind::Video];
}

/// The level of one audio packet from its client-to-mixer header extension (RFC 6464 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioLevel {
    /// The level in −dBov, 0 (loudest) to 127 (silence).
    pub level: u8,
    /// The sender's voice activity flag (the V bit).
    pub voice: bool,
}

impl AudioLevel {
    /// Reads the extension's one-byte payload (`V` bit, then 7 bits of −dBov); `None` when
    /// empty.
    pub fn parse(data: &[u8]) -> Option<Self> {
        let b = *data.first()?;
        Some(Self {
            level: b & 0x7f,
            voice: b & 0x80 != 0,
        })
    }
}

/// One RTP packet, header fields that plugins use plus the payload (shared, not copied).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpPacket {
    /// Payload type (RFC 3550 §5.1, 7 bits), as negotiated in the SDP of the connection the
    /// packet came on or goes to (e.g. 111 for Opus in browsers' offers).
    pub payload_type: u8,
    /// Sequence number (RFC 3550 §5.1), +1 per packet, wrapping at 2^16.
    pub sequence_number: u16,
    /// Sampling instant in ticks of the codec's clock (RFC 3550 §5.1): 48 kHz for Opus,
    /// 8 kHz for G.711, 90 kHz for video; wraps at 2^32.
    pub timestamp: u32,
    /// Synchronisation source of the stream (RFC 3550 §5.1).
    pub ssrc: u32,
    /// Marker bit: for video the last packet of a frame (RFC 6184 §5.1, RFC 7741 §4.1), for
    /// audio the first packet after silence (RFC 3551 §4.1).
    pub marker: bool,
    /// The payload after the RTP header and its extensions, in the clear: the engine applies
    /// and removes SRTP.
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
    /// A string message (SCTP PPID 51, RFC 8831 §8); received bytes that are not UTF-8 are
    /// replaced with U+FFFD.
    Text(String),
    /// A binary message (SCTP PPID 53, RFC 8831 §8).
    Binary(Bytes),
}

/// Whether an SDP is an offer or an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsepType {
    /// `"offer"` (JSEP, RFC 8829): the side that sends it proposes the media.
    Offer,
    /// `"answer"`: the final reply to an offer (`pranswer` is refused with error 464, as in
    /// Janus).
    Answer,
}

/// A session description as exchanged with clients (`{"type","sdp"}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jsep {
    /// Offer or answer (the JSON `type`).
    pub kind: JsepType,
    /// The SDP text (RFC 8866); a client's is checked to parse before any plugin sees it.
    pub sdp: String,
    /// `trickle: false` from a client means its SDP already carries every candidate.
    pub trickle: bool,
}

impl Jsep {
    /// An offer carrying `sdp`, with `trickle` true.
    pub fn offer(sdp: String) -> Self {
        Self {
            kind: JsepType::Offer,
            sdp,
            trickle: true,
        }
    }

    /// An answer carrying `sdp`, with `trickle` true.
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
    /// The candidate attribute's value without `a=`, e.g.
    /// `candidate:1 1 udp 2122260223 192.0.2.7 51000 typ host` (RFC 8839 §5.1).
    pub candidate: String,
    /// The `a=mid` of the media section it belongs to (`sdpMid`); with BUNDLE every
    /// candidate serves all sections.
    pub sdp_mid: Option<String>,
    /// Index of that media section in the SDP, from 0 (`sdpMLineIndex`). A client must give
    /// this or `sdp_mid`; candidates for an index above 0 are ignored (BUNDLE).
    pub sdp_mline_index: Option<u16>,
}

/// A local ICE candidate to trickle to the client (full-trickle mode); `None` marks the end.
pub type LocalCandidate = Option<RemoteCandidate>;
