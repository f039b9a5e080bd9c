//! H.264 over RTP (RFC 6184, packetization-mode 1) for the WebRTC side.
//!
//! The packetizer turns access units into RTP payloads (single NAL, STAP-A, FU-A); the
//! depacketizer rebuilds access units from packets that may arrive reordered or not at all.
//! Both are sans-I/O: they know nothing about SSRCs, sockets or SRTP, which belong to the media
//! core; they only deal in [`H264RtpPacket`], the fields RFC 6184 cares about.

mod depacketizer;
mod packetizer;

pub use depacketizer::{DepacketizedFrame, H264Depacketizer};
pub use packetizer::H264Packetizer;

use bytes::Bytes;

/// RTP clock rate of H.264 video.
pub const H264_CLOCK_RATE: u32 = 90_000;

/// The parts of an RTP packet that carry H.264.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct H264RtpPacket {
    /// RTP sequence number.
    pub seq: u16,
    /// RTP timestamp (90 kHz).
    pub timestamp: u32,
    /// Marker bit: set on the last packet of an access unit.
    pub marker: bool,
    /// RTP payload (an RFC 6184 NAL unit, STAP-A or FU-A).
    pub payload: Bytes,
}

/// Converts an FLV millisecond timestamp to the 90 kHz RTP clock (wrapping like RTP does).
pub fn flv_ms_to_rtp(ms: u32) -> u32 {
    (u64::from(ms) * u64::from(H264_CLOCK_RATE / 1000)) as u32
}
