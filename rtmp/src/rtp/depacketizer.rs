//! RTP payloads → access units, tolerant of reordering and loss.
//!
//! Packets wait in a small reorder buffer keyed by extended sequence number. A frame is emitted
//! only when every packet from its first to its marker packet is present and its first packet
//! directly follows the previous frame's marker: anything else is either still in flight (wait)
//! or lost (drop the whole frame once the buffer has moved `reorder_window` packets past it).
//! A damaged frame is never emitted: a decoder handles a missing frame far better than a
//! truncated one.

use std::collections::BTreeMap;

use bytes::{Buf, Bytes};

use super::H264RtpPacket;

const STAP_A: u8 = 24;
const FU_A: u8 = 28;
/// Bound on buffered packets, so a sender that never sets the marker bit cannot grow memory.
const MAX_BUFFERED: usize = 4096;

/// One reassembled access unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DepacketizedFrame {
    /// RTP timestamp of the access unit.
    pub timestamp: u32,
    /// True when it contains an IDR slice.
    pub keyframe: bool,
    /// NAL units in decoding order.
    pub nalus: Vec<Bytes>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sync {
    /// Nothing emitted yet: like `Lost`, and the first frame also waits for the reorder window
    /// so that packets sent before it can still arrive.
    Initial,
    /// The next frame starts at this extended sequence number.
    Expect(u64),
    /// A frame was lost together with its marker: wait for a marker to find a frame boundary.
    Lost,
}

/// Rebuilds H.264 access units from RTP packets.
#[derive(Debug)]
pub struct H264Depacketizer {
    buffer: BTreeMap<u64, H264RtpPacket>,
    highest: Option<u64>,
    sync: Sync,
    reorder_window: u64,
    dropped_frames: u64,
}

impl H264Depacketizer {
    /// A depacketizer that declares a frame lost once packets `reorder_window` ahead of it have
    /// arrived.
    pub fn new(reorder_window: u16) -> Self {
        Self {
            buffer: BTreeMap::new(),
            highest: None,
            sync: Sync::Initial,
            reorder_window: u64::from(reorder_window.max(1)),
            dropped_frames: 0,
        }
    }

    /// Frames dropped so far because a packet was missing or malformed.
    pub fn dropped_frames(&self) -> u64 {
        self.dropped_frames
    }

    /// Adds one packet and appends the frames it completes to `out`.
    pub fn push(&mut self, packet: H264RtpPacket, out: &mut Vec<DepacketizedFrame>) {
        let ext = self.extend(packet.seq);
        let late = match self.sync {
            Sync::Expect(next) => ext < next,
            _ => false,
        };
        if late || packet.payload.is_empty() {
            return;
        }
        self.buffer.insert(ext, packet);
        if self.buffer.len() > MAX_BUFFERED {
            self.drop_first_frame();
        }
        self.drain(false, out);
    }

    /// Emits what can still be completed and drops the rest (end of stream).
    pub fn flush(&mut self, out: &mut Vec<DepacketizedFrame>) {
        self.drain(true, out);
        if !self.buffer.is_empty() {
            self.dropped_frames += 1;
            self.buffer.clear();
        }
    }

    /// Extends a 16-bit sequence number to 64 bits relative to the highest seen.
    fn extend(&mut self, seq: u16) -> u64 {
        let ext = match self.highest {
            None => (1 << 32) + u64::from(seq),
            Some(high) => {
                let delta = seq.wrapping_sub(high as u16) as i16;
                (high as i64 + i64::from(delta)) as u64
            }
        };
        if self.highest.is_none_or(|h| ext > h) {
            self.highest = Some(ext);
        }
        ext
    }

    fn drain(&mut self, flushing: bool, out: &mut Vec<DepacketizedFrame>) {
        while let Some((&first, packet)) = self.buffer.iter().next() {
            let timestamp = packet.timestamp;
            let starts_frame = match self.sync {
                Sync::Expect(next) => first == next,
                // Without a known boundary, only a packet that can only open an access unit
                // (delimiter or SPS, as keyframes start) proves nothing before it is missing.
                Sync::Initial | Sync::Lost => starts_access_unit(&packet.payload),
            };
            let marker = self.complete_run(first, timestamp);
            let waited_enough = flushing
                || self
                    .highest
                    .is_some_and(|h| h.saturating_sub(first) >= self.reorder_window);
            match marker {
                Some(end) if starts_frame && (self.sync != Sync::Initial || waited_enough) => {
                    let packets: Vec<H264RtpPacket> = (first..=end)
                        .filter_map(|s| self.buffer.remove(&s))
                        .collect();
                    self.sync = Sync::Expect(end + 1);
                    match assemble(&packets) {
                        Some(nalus) => out.push(DepacketizedFrame {
                            timestamp,
                            keyframe: nalus.iter().any(|n| n[0] & 0x1f == 5),
                            nalus,
                        }),
                        None => self.dropped_frames += 1,
                    }
                }
                _ if waited_enough => self.drop_first_frame(),
                _ => return,
            }
        }
    }

    /// If the packets from `first` to a marker with the same timestamp are all present, returns
    /// the marker's extended sequence number.
    fn complete_run(&self, first: u64, timestamp: u32) -> Option<u64> {
        for (expected, (&seq, packet)) in (first..).zip(self.buffer.range(first..)) {
            if seq != expected || packet.timestamp != timestamp {
                return None;
            }
            if packet.marker {
                return Some(seq);
            }
        }
        None
    }

    /// Drops the oldest buffered frame (all leading packets sharing its timestamp).
    fn drop_first_frame(&mut self) {
        let Some((_, first)) = self.buffer.iter().next() else {
            return;
        };
        let timestamp = first.timestamp;
        let mut marker_seen = None;
        while let Some(entry) = self.buffer.first_entry() {
            if entry.get().timestamp != timestamp {
                break;
            }
            let (seq, packet) = entry.remove_entry();
            if packet.marker {
                marker_seen = Some(seq);
                break;
            }
        }
        self.dropped_frames += 1;
        self.sync = match marker_seen {
            Some(seq) => Sync::Expect(seq + 1),
            None => Sync::Lost,
        };
    }
}

/// True if the payload begins with an access unit delimiter or an SPS.
fn starts_access_unit(payload: &Bytes) -> bool {
    let first_nal = match payload.first().map(|b| b & 0x1f) {
        Some(STAP_A) => payload.get(3).map(|b| b & 0x1f),
        other => other,
    };
    matches!(first_nal, Some(7) | Some(9))
}

/// Reassembles NAL units from a complete run of packets; `None` if any payload is malformed.
fn assemble(packets: &[H264RtpPacket]) -> Option<Vec<Bytes>> {
    let mut nalus = Vec::new();
    let mut fragment: Option<Vec<u8>> = None;
    for packet in packets {
        let payload = &packet.payload;
        let nal_type = payload.first()? & 0x1f;
        match nal_type {
            1..=23 => {
                if fragment.is_some() {
                    return None;
                }
                nalus.push(payload.clone());
            }
            STAP_A => {
                if fragment.is_some() {
                    return None;
                }
                let mut rest = payload.slice(1..);
                while rest.has_remaining() {
                    if rest.len() < 2 {
                        return None;
                    }
                    let len = usize::from(rest.get_u16());
                    if len == 0 || rest.len() < len {
                        return None;
                    }
                    nalus.push(rest.split_to(len));
                }
            }
            FU_A => {
                let header = *payload.get(1)?;
                let start = header & 0x80 != 0;
                let end = header & 0x40 != 0;
                match (&mut fragment, start) {
                    (None, true) => {
                        let mut nal = Vec::with_capacity(payload.len() * 4);
                        nal.push((payload[0] & 0xe0) | (header & 0x1f));
                        nal.extend_from_slice(&payload[2..]);
                        fragment = Some(nal);
                    }
                    (Some(nal), false) => nal.extend_from_slice(&payload[2..]),
                    _ => return None,
                }
                if end {
                    nalus.push(Bytes::from(fragment.take()?));
                }
            }
            _ => return None,
        }
    }
    if fragment.is_some() || nalus.is_empty() {
        return None;
    }
    Some(nalus)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::VideoFrame;
    use crate::rtp::H264Packetizer;
    use proptest::prelude::*;
    use rand::seq::SliceRandom;
    use rand::{Rng, SeedableRng};

    fn frames(count: usize) -> Vec<VideoFrame> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        (0..count)
            .map(|i| {
                let keyframe = i % 10 == 0;
                let mut nalus = Vec::new();
                if keyframe {
                    nalus.push(Bytes::from_static(&[0x67, 0x42, 0x00, 0x1f]));
                    nalus.push(Bytes::from_static(&[0x68, 0xce]));
                }
                let size = rng.gen_range(10..5000);
                let mut slice = vec![if keyframe { 0x65 } else { 0x41 }];
                slice.extend((0..size).map(|_| rng.gen::<u8>()));
                nalus.push(Bytes::from(slice));
                VideoFrame {
                    dts_ms: i as u32 * 40,
                    cts_ms: 0,
                    keyframe,
                    nalus,
                }
            })
            .collect()
    }

    fn packetize(frames: &[VideoFrame], seq: u16) -> Vec<H264RtpPacket> {
        let mut p = H264Packetizer::new(1200, seq);
        let mut out = Vec::new();
        for f in frames {
            p.packetize(f, &mut out);
        }
        out
    }

    #[test]
    fn in_order_round_trip_across_sequence_wrap() {
        let frames = frames(50);
        let mut d = H264Depacketizer::new(64);
        let mut out = Vec::new();
        for packet in packetize(&frames, 65500) {
            d.push(packet, &mut out);
        }
        d.flush(&mut out);
        assert_eq!(out.len(), 50);
        for (got, want) in out.iter().zip(&frames) {
            assert_eq!(got.nalus, want.nalus);
            assert_eq!(got.keyframe, want.keyframe);
            assert_eq!(got.timestamp, want.dts_ms * 90);
        }
        assert_eq!(d.dropped_frames(), 0);
    }

    #[test]
    fn lost_packet_drops_only_its_frame() {
        let frames = frames(20);
        let packets = packetize(&frames, 0);
        // Lose the marker packet of frame 3 and a middle packet of frame 8.
        let ts3 = frames[3].dts_ms * 90;
        let ts8 = frames[8].dts_ms * 90;
        let lost3 = packets
            .iter()
            .position(|p| p.timestamp == ts3 && p.marker)
            .unwrap();
        let lost8 = packets.iter().position(|p| p.timestamp == ts8).unwrap() + 1;
        let mut d = H264Depacketizer::new(32);
        let mut out = Vec::new();
        for (i, p) in packets.into_iter().enumerate() {
            if i != lost3 && i != lost8 {
                d.push(p, &mut out);
            }
        }
        d.flush(&mut out);
        let got: Vec<u32> = out.iter().map(|f| f.timestamp / 90 / 40).collect();
        // Frame 4 may be sacrificed too: with frame 3's marker gone its start cannot be proven.
        assert!(!got.contains(&3) && !got.contains(&8), "{got:?}");
        assert!(got.len() >= 17, "{got:?}");
        for f in &out {
            assert_eq!(f.nalus, frames[(f.timestamp / 90 / 40) as usize].nalus);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn shuffled_and_dropped_packets_never_yield_damaged_frames(seed in any::<u64>(), drop_percent in 0u32..20, start in any::<u16>()) {
            let frames = frames(30);
            let mut packets = packetize(&frames, start);
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            packets.retain(|_| rng.gen_range(0..100) >= drop_percent);
            // Local reordering: shuffle within windows of 8 packets.
            for chunk in packets.chunks_mut(8) {
                chunk.shuffle(&mut rng);
            }
            let mut d = H264Depacketizer::new(32);
            let mut out = Vec::new();
            for p in packets {
                d.push(p, &mut out);
            }
            d.flush(&mut out);
            let mut last = None;
            for f in &out {
                let index = (f.timestamp / 90 / 40) as usize;
                prop_assert_eq!(&f.nalus, &frames[index].nalus);
                prop_assert!(last.is_none_or(|l| index > l));
                last = Some(index);
            }
            if drop_percent == 0 {
                prop_assert_eq!(out.len(), frames.len());
            }
        }

        #[test]
        fn arbitrary_packets_never_panic(packets in proptest::collection::vec((any::<u16>(), any::<u32>(), any::<bool>(), proptest::collection::vec(any::<u8>(), 0..40)), 0..100)) {
            let mut d = H264Depacketizer::new(8);
            let mut out = Vec::new();
            for (seq, timestamp, marker, payload) in packets {
                d.push(H264RtpPacket { seq, timestamp, marker, payload: Bytes::from(payload) }, &mut out);
            }
            d.flush(&mut out);
        }
    }
}
