//! Reads RTP packets (RFC 3550 §5.1) from the UDP datagrams of an `rtp` mountpoint.

use bytes::Bytes;

use crate::media::RtpPacket;

/// Parses one RTP datagram: version 2, CSRCs and header extension skipped, padding removed.
/// `None` for anything that is not a well-formed RTP packet (RTCP included: its payload
/// types 200-204 fall on 72-76 with the marker bit, which are refused).
pub fn parse(datagram: &Bytes) -> Option<RtpPacket> {
    let d = &datagram[..];
    if d.len() < 12 || d[0] >> 6 != 2 {
        return None;
    }
    let payload_type = d[1] & 0x7f;
    if (72..=76).contains(&payload_type) {
        return None;
    }
    let csrc = usize::from(d[0] & 0x0f);
    let mut start = 12 + 4 * csrc;
    if d[0] & 0x10 != 0 {
        let ext = d.get(start..start + 4)?;
        start += 4 + 4 * usize::from(u16::from_be_bytes([ext[2], ext[3]]));
    }
    let mut end = d.len();
    if d[0] & 0x20 != 0 {
        let pad = usize::from(*d.last()?);
        end = end.checked_sub(pad)?;
    }
    if start > end {
        return None;
    }
    Some(RtpPacket {
        payload_type,
        sequence_number: u16::from_be_bytes([d[2], d[3]]),
        timestamp: u32::from_be_bytes([d[4], d[5], d[6], d[7]]),
        ssrc: u32::from_be_bytes([d[8], d[9], d[10], d[11]]),
        marker: d[1] & 0x80 != 0,
        payload: datagram.slice(start..end),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn header_fields_extension_and_padding() {
        let mut d = vec![0xb0, 0xe0, 0x01, 0x02, 0, 0, 0x03, 0xe8, 0, 0, 0, 7];
        d.extend([0xbe, 0xde, 0, 1, 9, 9, 9, 9]); // one-word extension
        d.extend([0xaa, 0xbb, 0, 2]); // payload + 2 bytes of padding
        let p = parse(&Bytes::from(d)).unwrap();
        assert_eq!(
            (
                p.payload_type,
                p.sequence_number,
                p.timestamp,
                p.ssrc,
                p.marker
            ),
            (96, 0x0102, 1000, 7, true)
        );
        assert_eq!(&p.payload[..], &[0xaa, 0xbb]);
        assert!(parse(&Bytes::from_static(&[
            0x80, 0xc8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1
        ]))
        .is_none());
        assert!(parse(&Bytes::from_static(&[0x40, 0x60, 0, 1])).is_none());
    }

    proptest! {
        #[test]
        fn never_panics_and_payload_is_inside(d in proptest::collection::vec(any::<u8>(), 0..80)) {
            let bytes = Bytes::from(d.clone());
            if let Some(p) = parse(&bytes) {
                prop_assert!(p.payload.len() + 12 <= d.len());
            }
        }
    }
}
