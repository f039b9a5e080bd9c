//! Video frame accounting of the streaming scenario: H.264 RTP packets (RFC 6184) grouped into
//! frames by RTP timestamp and marker bit, loss from sequence gaps, keyframes from the NAL unit
//! types, and the added delay of a viewer against a direct RTMP pull of the same publisher.

use crate::metrics::{extend_seq, extend_ts};

/// H.264 NAL unit type of an IDR slice (RFC 6184 §1.3, H.264 Table 7-1).
const NAL_IDR: u8 = 5;
/// Single-time aggregation packet (RFC 6184 §5.7.1).
const STAP_A: u8 = 24;
/// Fragmentation unit (RFC 6184 §5.8).
const FU_A: u8 = 28;

/// Whether an H.264 RTP payload carries (part of) an IDR slice: a single IDR NAL unit, a
/// STAP-A holding one, or a FU-A fragment of one. Malformed payloads are `false`.
pub fn h264_has_idr(payload: &[u8]) -> bool {
    let Some(&first) = payload.first() else {
        return false;
    };
    match first & 0x1f {
        NAL_IDR => true,
        STAP_A => {
            let mut rest = &payload[1..];
            while rest.len() >= 3 {
                let len = u16::from_be_bytes([rest[0], rest[1]]) as usize;
                if len == 0 || rest.len() < 2 + len {
                    return false;
                }
                if rest[2] & 0x1f == NAL_IDR {
                    return true;
                }
                rest = &rest[2 + len..];
            }
            false
        }
        FU_A => payload.get(1).is_some_and(|h| h & 0x1f == NAL_IDR),
        _ => false,
    }
}

/// Whether an H.264 RTP payload begins a NAL unit (anything but a FU-A fragment without its
/// start bit): the first packet a viewer receives can only open a frame if it does.
pub fn h264_starts_nal(payload: &[u8]) -> bool {
    match payload.first().map(|b| b & 0x1f) {
        None => false,
        Some(FU_A) => payload.get(1).is_some_and(|h| h & 0x80 != 0),
        Some(_) => true,
    }
}

/// One video frame a viewer received whole: its RTP timestamp (90 kHz, extended), the arrival
/// of its last packet (s on the load client's clock) and whether it holds an IDR.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Frame {
    /// Extended RTP timestamp, 90 kHz ticks.
    pub ts: i64,
    /// Arrival of the packet with the marker bit, s.
    pub arrival: f64,
    /// An IDR slice is in it.
    pub key: bool,
}

/// What one viewer's video stream brought.
#[derive(Debug, Clone, Default)]
pub struct VideoStats {
    last_seq: Option<i64>,
    last_ts: Option<i64>,
    first_seq: Option<i64>,
    max_seq: Option<i64>,
    /// The frame being received is whole so far (it began after a marker, or with a packet
    /// that begins a NAL unit, and no sequence number was skipped since).
    whole: bool,
    /// The frame being received holds an IDR slice.
    key: bool,
    /// Packets received inside the window.
    pub received: u64,
    /// Whole frames completed inside the window (their arrival, timestamp, keyness).
    pub frames: Vec<Frame>,
    /// Frames completed inside the window with a packet missing.
    pub broken: u64,
    /// Arrival of the last packet of the first whole keyframe (s), window or not.
    pub first_key: Option<f64>,
}

impl VideoStats {
    /// Accounts one packet: arrival (s), RTP sequence number, timestamp, marker bit and
    /// payload; `in_window` says whether it counts towards loss and frames.
    pub fn on_packet(
        &mut self,
        arrival: f64,
        seq: u16,
        ts: u32,
        marker: bool,
        payload: &[u8],
        in_window: bool,
    ) {
        let seq = extend_seq(self.last_seq, seq);
        let ts = extend_ts(self.last_ts, ts);
        let opens = match self.last_seq {
            None => h264_starts_nal(payload),
            // A packet after a gap, or the first of a timestamp whose predecessor had no
            // marker (the marker was lost), cannot complete a whole frame.
            Some(prev) => seq == prev + 1 && (self.last_ts != Some(ts) || self.whole),
        };
        let new_frame = self.last_ts != Some(ts);
        if new_frame {
            self.key = false;
            self.whole = opens;
        } else if !opens {
            self.whole = false;
        }
        self.key |= h264_has_idr(payload);
        self.last_seq = Some(self.last_seq.map_or(seq, |p| p.max(seq)));
        self.last_ts = Some(ts);
        if in_window {
            self.received += 1;
            self.first_seq = Some(self.first_seq.map_or(seq, |f| f.min(seq)));
            self.max_seq = Some(self.max_seq.map_or(seq, |m| m.max(seq)));
        }
        if marker {
            if self.whole && self.key && self.first_key.is_none() {
                self.first_key = Some(arrival);
            }
            if in_window {
                if self.whole {
                    self.frames.push(Frame {
                        ts,
                        arrival,
                        key: self.key,
                    });
                } else {
                    self.broken += 1;
                }
            }
            // The next packet opens a new frame.
            self.whole = true;
            self.key = false;
            self.last_ts = Some(ts);
        }
    }

    /// Packets missing between the first and the last sequence number of the window.
    pub fn lost(&self) -> u64 {
        match (self.first_seq, self.max_seq) {
            (Some(f), Some(m)) => ((m - f + 1) as u64).saturating_sub(self.received),
            _ => 0,
        }
    }
}

/// One video frame of the direct RTMP pull: FLV timestamp (ms), arrival of its tag (s), key.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RefFrame {
    /// FLV timestamp (presentation: DTS + composition offset), ms.
    pub ms: i64,
    /// Arrival of the whole tag at the pull client, s.
    pub arrival: f64,
    /// FLV frame type 1 (keyframe).
    pub key: bool,
}

/// The delay a viewer adds over the direct pull, per frame (ms): the viewer's arrival of a
/// frame's last packet minus the pull's arrival of the same frame.
///
/// The same frame is found through timestamps: the gateway's RTP timestamp is the FLV time
/// × 90 plus an offset of its choosing. The offset is learnt from keyframes: each of the
/// viewer's keyframes is paired with the pull's keyframe that arrived nearest to it
/// (keyframes are seconds apart, the delays a fraction of that; either side may be first, so
/// a delay can be negative), and the offset most pairs agree on wins. Frames with no
/// counterpart (outside the pull's record) are skipped.
pub fn added_delays_ms(reference: &[RefFrame], viewer: &[Frame]) -> Vec<f64> {
    let ref_keys: Vec<&RefFrame> = reference.iter().filter(|r| r.key).collect();
    let mut offsets: Vec<i64> = viewer
        .iter()
        .filter(|f| f.key)
        .filter_map(|f| {
            let r = ref_keys.iter().min_by(|a, b| {
                (a.arrival - f.arrival)
                    .abs()
                    .total_cmp(&(b.arrival - f.arrival).abs())
            })?;
            Some(f.ts - r.ms * 90)
        })
        .collect();
    if offsets.is_empty() {
        return Vec::new();
    }
    offsets.sort_unstable();
    // The most frequent offset (runs of equal values in the sorted list).
    let (mut best, mut best_n, mut i) = (offsets[0], 0, 0);
    while i < offsets.len() {
        let j = offsets[i..].partition_point(|o| *o == offsets[i]) + i;
        if j - i > best_n {
            (best, best_n) = (offsets[i], j - i);
        }
        i = j;
    }
    let by_ms: std::collections::HashMap<i64, f64> =
        reference.iter().map(|r| (r.ms, r.arrival)).collect();
    viewer
        .iter()
        .filter_map(|f| {
            let t = f.ts - best;
            // FLV time is whole ms: a 90 kHz time maps to it exactly, or rounds to it.
            let ms = (t as f64 / 90.0).round() as i64;
            by_ms.get(&ms).map(|a| (f.arrival - a) * 1000.0)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A frame as the gateway packetises it: a STAP-A with SPS and PPS, then FU-A fragments
    /// of the slice (IDR or not), the last with the marker.
    fn packets(key: bool, fragments: usize) -> Vec<(Vec<u8>, bool)> {
        let slice = if key { 0x65 } else { 0x41 };
        let mut out = Vec::new();
        if key {
            out.push((vec![0x78, 0, 2, 0x67, 0x42, 0, 2, 0x68, 0xce], false));
        }
        for i in 0..fragments {
            let s = if i == 0 { 0x80 } else { 0 };
            let e = if i + 1 == fragments { 0x40 } else { 0 };
            out.push((
                vec![0x7c, s | e | (slice & 0x1f), 1, 2, 3],
                i + 1 == fragments,
            ));
        }
        out
    }

    /// Feeds `frames` (key every `gop`) from seq `seq0`/ts `ts0`, 33 ms apart, skipping the
    /// packets whose index is in `drop`; returns the stats.
    fn feed(n: usize, gop: usize, seq0: u16, ts0: u32, drop: &[usize]) -> VideoStats {
        let mut v = VideoStats::default();
        let (mut seq, mut idx) = (seq0, 0usize);
        for f in 0..n {
            let ts = ts0.wrapping_add(f as u32 * 3000);
            for (p, m) in packets(f % gop == 0, 3) {
                if !drop.contains(&idx) {
                    v.on_packet(f as f64 * 0.033, seq, ts, m, &p, true);
                }
                seq = seq.wrapping_add(1);
                idx += 1;
            }
        }
        v
    }

    #[test]
    fn idr_is_found_in_single_stap_a_and_fu_a() {
        assert!(h264_has_idr(&[0x65, 1]));
        assert!(h264_has_idr(&[0x78, 0, 1, 0x67, 0, 1, 0x65]));
        assert!(h264_has_idr(&[0x7c, 0x85, 1]));
        assert!(!h264_has_idr(&[0x7c, 0x81, 1]));
        assert!(!h264_has_idr(&[0x41, 1]));
        assert!(!h264_has_idr(&[0x78, 0, 9, 0x65]));
        assert!(!h264_has_idr(&[]));
        assert!(h264_starts_nal(&[0x7c, 0x85]));
        assert!(!h264_starts_nal(&[0x7c, 0x05]));
    }

    #[test]
    fn whole_stream_counts_every_frame_and_no_loss() {
        // Sequence numbers and timestamps wrap on the way.
        let v = feed(90, 30, 65500, u32::MAX - 20_000, &[]);
        assert_eq!(v.frames.len(), 90);
        assert_eq!(v.frames.iter().filter(|f| f.key).count(), 3);
        assert_eq!((v.lost(), v.broken), (0, 0));
        assert_eq!(v.first_key, Some(0.0));
        let ts: Vec<i64> = v.frames.iter().map(|f| f.ts).collect();
        assert!(ts.windows(2).all(|w| w[1] - w[0] == 3000));
    }

    #[test]
    fn a_lost_packet_breaks_its_frame_only() {
        // Packet 5 is the middle fragment of frame 1 (frame 0: 4 packets, key).
        let v = feed(10, 30, 0, 0, &[5]);
        assert_eq!(v.lost(), 1);
        assert_eq!(v.broken, 1);
        assert_eq!(v.frames.len(), 9);
        // A lost marker merges two timestamps: neither frame is whole.
        let v = feed(10, 30, 0, 0, &[6]);
        assert_eq!((v.lost(), v.broken, v.frames.len()), (1, 1, 8));
    }

    #[test]
    fn first_keyframe_waits_for_a_whole_one() {
        // The first keyframe's first fragment is lost: the first whole keyframe is the next.
        let v = feed(40, 30, 0, 0, &[1]);
        assert_eq!(v.first_key, Some(30.0 * 0.033));
        // Joining in the middle of a frame: that frame is not whole.
        let mut v = VideoStats::default();
        v.on_packet(0.0, 10, 0, true, &[0x7c, 0x45, 1], true);
        assert!(v.frames.is_empty() && v.first_key.is_none());
    }

    #[test]
    fn delays_pair_frames_through_the_keyframe_offset() {
        // Pull: 30 fps from FLV time 1000 ms, key every 30; viewer: same frames with RTP
        // offset 123_456 and 12 ms later, plus jitter on one frame.
        let ms = |i: i64| 1000 + i * 100 / 3;
        let reference: Vec<RefFrame> = (0..90)
            .map(|i| RefFrame {
                ms: ms(i),
                arrival: 5.0 + i as f64 / 30.0,
                key: i % 30 == 0,
            })
            .collect();
        let viewer: Vec<Frame> = (0..90)
            .map(|i| Frame {
                ts: 123_456 + ms(i) * 90,
                arrival: 5.012 + i as f64 / 30.0 + if i == 40 { 0.030 } else { 0.0 },
                key: i % 30 == 0,
            })
            .collect();
        let d = added_delays_ms(&reference, &viewer);
        assert_eq!(d.len(), 90);
        assert!(d.iter().filter(|x| (**x - 12.0).abs() < 1e-6).count() == 89);
        assert!(d.iter().any(|x| (*x - 42.0).abs() < 1e-6));
        assert!(added_delays_ms(&[], &viewer).is_empty());
        // A viewer 3 ms ahead of the pull pairs with the same keyframe, not the previous one.
        let early: Vec<Frame> = viewer
            .iter()
            .map(|f| Frame {
                arrival: f.arrival - 0.015,
                ..*f
            })
            .collect();
        let d = added_delays_ms(&reference, &early);
        assert!(d.iter().filter(|x| (**x + 3.0).abs() < 1e-6).count() == 89);
    }

    proptest! {
        #[test]
        fn any_payload_is_classified_without_panic(p in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = h264_has_idr(&p);
            let _ = h264_starts_nal(&p);
            let mut v = VideoStats::default();
            v.on_packet(0.0, 1, 2, true, &p, true);
        }

        #[test]
        fn loss_is_the_number_of_packets_dropped_inside(drops in proptest::collection::btree_set(1usize..92, 0..10)) {
            let drop: Vec<usize> = drops.iter().copied().collect();
            let v = feed(30, 10, 100, 0, &drop);
            prop_assert_eq!(v.lost(), drop.len() as u64);
            prop_assert_eq!(v.frames.len() as u64 + v.broken, 30 - broken_merges(&drop));
        }
    }

    /// Frames lost in the count because their marker was dropped (they merge with the next).
    fn broken_merges(drop: &[usize]) -> u64 {
        // In feed(30, 10, ..), frames are 4 packets when key (every 10th) else 3; markers are
        // the last of each. A dropped marker merges its frame with the next (one fewer marker
        // seen), except the very last frame's marker, whose frame never completes.
        let mut idx = 0;
        let mut merged = 0;
        for f in 0..30 {
            let n = if f % 10 == 0 { 4 } else { 3 };
            if drop.contains(&(idx + n - 1)) {
                merged += 1;
            }
            idx += n;
        }
        merged
    }
}
