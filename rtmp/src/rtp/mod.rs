//! H.264 over RTP (RFC 6184, packetization-mode 1) for the WebRTC side.
//!
//! The packetizer turns access units into RTP payloads (single NAL, STAP-A, FU-A); the
//! depacketizer rebuilds access units from packets that may arrive reordered or not at all.
//! Both are sans-I/O: they know nothing about SSRCs, sockets or SRTP, which belong to the media
//! core; they only deal in [`H264RtpPacket`], the fields RFC 6184 cares about.

mod depacketizer;
mod packetizer;
pub mod slice;
pub mod sps;

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

/// Turns wrapping 90 kHz RTP timestamps into monotonic FLV milliseconds starting at 0, for
/// restreaming WebRTC-published H.264 to RTMP.
#[derive(Debug, Default, Clone)]
pub struct RtpToFlvClock {
    first: Option<u32>,
    last: u32,
    /// RTP ticks elapsed since `first`, extended past 32-bit wraps.
    elapsed: i64,
}

impl RtpToFlvClock {
    /// A clock whose zero is the first timestamp it sees.
    pub fn new() -> Self {
        Self::default()
    }

    /// FLV milliseconds for `rtp` (an earlier timestamp, as with B-frames, maps below the latest).
    pub fn to_flv_ms(&mut self, rtp: u32) -> u32 {
        if self.first.is_none() {
            self.first = Some(rtp);
            self.last = rtp;
            return 0;
        }
        self.elapsed += i64::from(rtp.wrapping_sub(self.last) as i32);
        self.last = rtp;
        (self.elapsed.max(0) / i64::from(H264_CLOCK_RATE / 1000)) as u32
    }
}

#[cfg(test)]
mod clock_tests {
    use super::*;

    #[test]
    fn rtp_clock_survives_wrap_and_starts_at_zero() {
        let mut clock = RtpToFlvClock::new();
        let start = u32::MAX - 90 * 30;
        assert_eq!(clock.to_flv_ms(start), 0);
        assert_eq!(clock.to_flv_ms(start.wrapping_add(90 * 40)), 40);
        assert_eq!(clock.to_flv_ms(start.wrapping_add(90 * 80)), 80);
        assert_eq!(clock.to_flv_ms(start.wrapping_add(90 * 60)), 60);
    }
}
