//! H.264 RTP depacketizer fed arbitrary packets.
#![no_main]

use bifrons_rtmp::rtp::{H264Depacketizer, H264RtpPacket};
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut depacketizer = H264Depacketizer::new(16);
    let mut out = Vec::new();
    let mut rest = data;
    while rest.len() >= 8 {
        let len = usize::from(rest[7]).min(rest.len() - 8);
        let packet = H264RtpPacket {
            seq: u16::from_be_bytes([rest[0], rest[1]]),
            timestamp: u32::from_be_bytes([rest[2], rest[3], rest[4], rest[5]]),
            marker: rest[6] & 1 == 1,
            payload: Bytes::copy_from_slice(&rest[8..8 + len]),
        };
        depacketizer.push(packet, &mut out);
        rest = &rest[8 + len..];
    }
    depacketizer.flush(&mut out);
});
