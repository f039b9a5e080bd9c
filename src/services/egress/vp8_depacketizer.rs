//! VP8 RTP payloads (RFC 7741) → whole VP8 frames, for the VP8 → H.264 egress route.
//!
//! A frame starts at a packet whose payload descriptor has S = 1 and partition index 0
//! (§4.2) and ends at the packet with the RTP marker bit (§4.1). A frame missing a packet
//! (sequence gap) is dropped whole: a decoder takes a missing frame better than a truncated
//! one, and the caller waits for the next keyframe.

use bytes::Bytes;

/// Largest frame kept (bytes); beyond it the frame is dropped, so a sender that never sets
/// the marker bit cannot grow memory.
const MAX_FRAME: usize = 4 << 20;

/// One reassembled VP8 frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vp8Frame {
    /// The VP8 bitstream of the frame (RFC 6386 §9.1 frame tag first).
    pub data: Vec<u8>,
    /// RTP timestamp (90 kHz).
    pub timestamp: u32,
    /// Whether the frame is a keyframe (frame tag bit P = 0, RFC 6386 §9.1).
    pub keyframe: bool,
}

/// Length of the payload descriptor (RFC 7741 §4.2) at the start of `payload`, and whether
/// the packet starts a frame; `None` when the descriptor is truncated.
pub fn descriptor(payload: &[u8]) -> Option<(usize, bool)> {
    let first = *payload.first()?;
    let start = first & 0x10 != 0 && first & 0x07 == 0;
    let mut len = 1;
    if first & 0x80 != 0 {
        let ext = *payload.get(1)?;
        len = 2;
        if ext & 0x80 != 0 {
            let picture_id = *payload.get(len)?;
            len += if picture_id & 0x80 != 0 { 2 } else { 1 };
        }
        if ext & 0x40 != 0 {
            len += 1;
        }
        if ext & 0x30 != 0 {
            len += 1;
        }
    }
    (len < payload.len()).then_some((len, start))
}

/// Rebuilds VP8 frames from RTP packets in arrival order.
#[derive(Debug, Default)]
pub struct Vp8Depacketizer {
    frame: Vec<u8>,
    timestamp: u32,
    /// Sequence number the next packet of the current frame must have.
    next_seq: Option<u16>,
    /// The current frame lost a packet: skip to the next start.
    broken: bool,
    dropped: u64,
}

impl Vp8Depacketizer {
    /// An empty depacketizer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Frames dropped so far (a packet missing, a malformed descriptor, too large).
    pub fn dropped_frames(&self) -> u64 {
        self.dropped
    }

    /// Takes one packet; returns the frame it completes, if any.
    pub fn push(
        &mut self,
        seq: u16,
        timestamp: u32,
        marker: bool,
        payload: &Bytes,
    ) -> Option<Vp8Frame> {
        let Some((skip, start)) = descriptor(payload) else {
            self.drop_current();
            return None;
        };
        if start {
            if !self.frame.is_empty() {
                // The previous frame never saw its marker.
                self.dropped += 1;
            }
            self.frame.clear();
            self.broken = false;
            self.timestamp = timestamp;
        } else if self.next_seq != Some(seq) || timestamp != self.timestamp || self.frame.is_empty()
        {
            self.drop_current();
        }
        self.next_seq = Some(seq.wrapping_add(1));
        if self.broken {
            return None;
        }
        if self.frame.len() + payload.len() - skip > MAX_FRAME {
            self.drop_current();
            return None;
        }
        self.frame.extend_from_slice(&payload[skip..]);
        if !marker {
            return None;
        }
        let data = std::mem::take(&mut self.frame);
        let keyframe = data.first().is_some_and(|tag| tag & 0x01 == 0);
        Some(Vp8Frame {
            data,
            timestamp,
            keyframe,
        })
    }

    fn drop_current(&mut self) {
        if !self.broken && !self.frame.is_empty() {
            self.dropped += 1;
        }
        self.frame.clear();
        self.broken = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn packet(start: bool, body: &[u8]) -> Bytes {
        // X = 1 with a 15-bit picture id, as browsers send.
        let mut p = vec![if start { 0x90 } else { 0x80 }, 0x80, 0x81, 0x23];
        p.extend_from_slice(body);
        Bytes::from(p)
    }

    #[test]
    fn a_frame_over_three_packets_is_rebuilt_and_typed() {
        let mut d = Vp8Depacketizer::new();
        assert_eq!(d.push(10, 900, false, &packet(true, &[0x10, 1])), None);
        assert_eq!(d.push(11, 900, false, &packet(false, &[2, 3])), None);
        let f = d.push(12, 900, true, &packet(false, &[4])).unwrap();
        assert_eq!(f.data, vec![0x10, 1, 2, 3, 4]);
        assert!(f.keyframe);
        let f = d.push(13, 3900, true, &packet(true, &[0x11, 9])).unwrap();
        assert!(!f.keyframe);
        assert_eq!(f.timestamp, 3900);
    }

    #[test]
    fn a_gap_drops_the_frame_and_the_next_start_recovers() {
        let mut d = Vp8Depacketizer::new();
        d.push(1, 0, false, &packet(true, &[0x10]));
        assert_eq!(d.push(3, 0, true, &packet(false, &[2])), None);
        assert_eq!(d.dropped_frames(), 1);
        assert!(d.push(4, 3000, true, &packet(true, &[0x10, 5])).is_some());
    }

    #[test]
    fn descriptor_lengths() {
        assert_eq!(descriptor(&[0x10, 0xaa]), Some((1, true)));
        assert_eq!(descriptor(&[0x90, 0x80, 0x05, 0xaa]), Some((3, true)));
        assert_eq!(
            descriptor(&[0x90, 0xf0, 0x81, 0x01, 0x02, 0x03, 0xaa]),
            Some((6, true))
        );
        assert_eq!(
            descriptor(&[0x11, 0xaa]),
            Some((1, false)),
            "partition 1 is no start"
        );
        assert_eq!(descriptor(&[0x90, 0x80]), None);
        assert_eq!(descriptor(&[]), None);
    }

    proptest! {
        #[test]
        fn arbitrary_packets_never_panic(
            packets in proptest::collection::vec(
                (any::<u16>(), any::<u32>(), any::<bool>(), proptest::collection::vec(any::<u8>(), 0..64)),
                0..64,
            )
        ) {
            let mut d = Vp8Depacketizer::new();
            for (seq, ts, marker, payload) in packets {
                if let Some(f) = d.push(seq, ts, marker, &Bytes::from(payload)) {
                    prop_assert!(f.data.len() <= MAX_FRAME);
                }
            }
        }
    }
}
