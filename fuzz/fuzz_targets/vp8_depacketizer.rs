//! VP8 RTP payloads (RFC 7741) for the egress: the depacketizer never panics and never
//! returns a frame larger than its bound, whatever the packets.
#![no_main]

use bifrons::services::egress::vp8_depacketizer::Vp8Depacketizer;
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut d = Vp8Depacketizer::new();
    // Each packet: 2 bytes sequence number, 1 byte flags (marker), 1 byte length, payload.
    let mut rest = data;
    while rest.len() >= 4 {
        let seq = u16::from_be_bytes([rest[0], rest[1]]);
        let marker = rest[2] & 1 == 1;
        let len = usize::from(rest[3]).min(rest.len() - 4);
        let payload = Bytes::copy_from_slice(&rest[4..4 + len]);
        let _ = d.push(seq, u32::from(rest[2]) * 3000, marker, &payload);
        rest = &rest[4 + len..];
    }
});
