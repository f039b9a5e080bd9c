//! Per-participant jitter buffer: packets in arrival order, out in sequence order, one pop
//! per need of the mixing tick.
//!
//! Pure: no clock. The mixing job pops when it needs audio; the buffer answers with the next
//! packet, a gap to conceal (the expected packet is missing but later ones are here, so it is
//! lost or too late to matter), or nothing (the sender paused or the buffer underran).
//!
//! Playout starts once `prebuffer` packets are queued and restarts that way after an
//! underrun, which absorbs network jitter at the cost of `prebuffer × 20 ms` of delay. When the
//! sender's clock runs faster than the mixing clock, the queue grows: above `max_packets` the
//! oldest packets are dropped down to `prebuffer`, so the delay stays bounded.

use std::collections::BTreeMap;

use bytes::Bytes;

/// One received audio packet, as queued from `incoming_rtp`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioPacket {
    /// RTP sequence number (RFC 3550 §5.1).
    pub seq: u16,
    /// RTP timestamp, in the codec's clock.
    pub timestamp: u32,
    /// The codec payload (Opus packet or G.711 bytes).
    pub payload: Bytes,
    /// The sender's level for this packet in −dBov (0 loudest … 127 silence), from the RFC
    /// 6464 header extension when it was negotiated; `None` otherwise.
    pub level: Option<u8>,
}

/// What [`JitterBuffer::pop`] hands out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pop {
    /// The next packet in sequence.
    Packet(AudioPacket),
    /// The next packet in sequence is missing while later ones are queued: conceal it (the
    /// payload of the packet that follows is given, for Opus in-band FEC when it is the very
    /// next one).
    Lost {
        /// The packet right after the missing one, if it is queued.
        next: Option<Bytes>,
    },
    /// Nothing to play: buffering, underrun or a pause of the sender (DTX).
    Empty,
}

/// Counters of one buffer, for stats and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JitterStats {
    /// Packets handed out in order.
    pub played: u64,
    /// Gaps concealed.
    pub concealed: u64,
    /// Packets dropped: duplicates, too late, or shed when the queue overflowed.
    pub dropped: u64,
}

/// Sequence-ordered queue of one participant's packets.
#[derive(Debug)]
pub struct JitterBuffer {
    /// Packets keyed by extended sequence number.
    queue: BTreeMap<u64, AudioPacket>,
    /// Extended sequence number expected next, once playout started.
    next: Option<u64>,
    /// Highest extended sequence number seen (for extending the next arrival).
    highest: Option<u64>,
    prebuffer: usize,
    max_packets: usize,
    playing: bool,
    stats: JitterStats,
}

/// Offset so that extended sequence numbers never go below zero.
const BASE: u64 = 1 << 32;
/// A jump of more than this many sequence numbers is a new stream (sender restarted).
const RESYNC_GAP: u64 = 500;

impl JitterBuffer {
    /// A buffer that starts playing with `prebuffer` packets queued (at least 1) and sheds
    /// the oldest above `max_packets` (at least `prebuffer + 1`).
    pub fn new(prebuffer: usize, max_packets: usize) -> Self {
        let prebuffer = prebuffer.max(1);
        Self {
            queue: BTreeMap::new(),
            next: None,
            highest: None,
            prebuffer,
            max_packets: max_packets.max(prebuffer + 1),
            playing: false,
            stats: JitterStats::default(),
        }
    }

    /// Packets queued now.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// The counters so far.
    pub fn stats(&self) -> JitterStats {
        self.stats
    }

    /// Forgets everything queued (mute, codec change); counters stay.
    pub fn clear(&mut self) {
        self.stats.dropped += self.queue.len() as u64;
        self.queue.clear();
        self.next = None;
        self.highest = None;
        self.playing = false;
    }

    fn extend(&self, seq: u16) -> u64 {
        match self.highest {
            None => BASE + u64::from(seq),
            Some(h) => {
                let delta = i64::from(seq.wrapping_sub(h as u16) as i16);
                (h as i64 + delta) as u64
            }
        }
    }

    /// Queues a packet; duplicates and packets older than what was already played are dropped.
    pub fn push(&mut self, packet: AudioPacket) {
        let mut ext = self.extend(packet.seq);
        if let Some(h) = self.highest {
            if ext.abs_diff(h) > RESYNC_GAP {
                // The sender restarted its sequence (new SSRC, ICE restart): start over.
                self.clear();
                ext = BASE + u64::from(packet.seq);
            }
        }
        if self.next.is_some_and(|n| ext < n) || self.queue.contains_key(&ext) {
            self.stats.dropped += 1;
            return;
        }
        if self.highest.is_none_or(|h| ext > h) {
            self.highest = Some(ext);
        }
        self.queue.insert(ext, packet);
        if self.queue.len() > self.max_packets {
            while self.queue.len() > self.prebuffer {
                self.queue.pop_first();
                self.stats.dropped += 1;
            }
            self.next = self.queue.keys().next().copied();
        }
    }

    /// The next thing to play (see [`Pop`]).
    pub fn pop(&mut self) -> Pop {
        if !self.playing {
            if self.queue.len() < self.prebuffer {
                return Pop::Empty;
            }
            self.playing = true;
            let first = self.queue.keys().next().copied();
            // Resume where we left off if that is still ahead; otherwise from the oldest queued.
            self.next = match (self.next, first) {
                (Some(n), Some(f)) if n <= f && f - n <= self.prebuffer as u64 => Some(n),
                (_, f) => f,
            };
        }
        let Some(next) = self.next else {
            self.playing = false;
            return Pop::Empty;
        };
        if let Some(packet) = self.queue.remove(&next) {
            self.next = Some(next + 1);
            self.stats.played += 1;
            return Pop::Packet(packet);
        }
        if self.queue.is_empty() {
            // Underrun or a pause: buffer again before playing on.
            self.playing = false;
            return Pop::Empty;
        }
        self.next = Some(next + 1);
        self.stats.concealed += 1;
        Pop::Lost {
            next: self.queue.get(&(next + 1)).map(|p| p.payload.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkt(seq: u16) -> AudioPacket {
        AudioPacket {
            level: None,
            seq,
            timestamp: u32::from(seq).wrapping_mul(960),
            payload: Bytes::from(vec![seq as u8]),
        }
    }

    fn seq_of(p: Pop) -> Option<u16> {
        match p {
            Pop::Packet(p) => Some(p.seq),
            _ => None,
        }
    }

    #[test]
    fn waits_for_prebuffer_then_plays_in_sequence_order() {
        let mut jb = JitterBuffer::new(2, 10);
        jb.push(pkt(11));
        assert_eq!(jb.pop(), Pop::Empty, "one packet is below the prebuffer");
        jb.push(pkt(10));
        assert_eq!(seq_of(jb.pop()), Some(10));
        jb.push(pkt(12));
        assert_eq!(seq_of(jb.pop()), Some(11));
        assert_eq!(seq_of(jb.pop()), Some(12));
        assert_eq!(jb.pop(), Pop::Empty, "underrun");
        assert_eq!(jb.stats().played, 3);
    }

    #[test]
    fn a_missing_packet_is_concealed_with_the_next_payload_for_fec() {
        let mut jb = JitterBuffer::new(1, 10);
        jb.push(pkt(1));
        assert_eq!(seq_of(jb.pop()), Some(1));
        jb.push(pkt(3));
        jb.push(pkt(4));
        assert_eq!(
            jb.pop(),
            Pop::Lost {
                next: Some(Bytes::from(vec![3u8]))
            }
        );
        assert_eq!(seq_of(jb.pop()), Some(3));
        // A late arrival of 2 is dropped: its slot was concealed already.
        jb.push(pkt(2));
        assert_eq!(seq_of(jb.pop()), Some(4));
        assert_eq!(jb.stats().concealed, 1);
        assert_eq!(jb.stats().dropped, 1);
    }

    #[test]
    fn sequence_wraparound_keeps_order() {
        let mut jb = JitterBuffer::new(3, 10);
        for s in [65534u16, 0, 65535] {
            jb.push(pkt(s));
        }
        let out: Vec<_> = (0..3).map(|_| seq_of(jb.pop())).collect();
        assert_eq!(out, vec![Some(65534), Some(65535), Some(0)]);
    }

    #[test]
    fn overflow_sheds_the_oldest_down_to_the_prebuffer() {
        let mut jb = JitterBuffer::new(2, 4);
        for s in 0..5u16 {
            jb.push(pkt(s));
        }
        assert_eq!(jb.len(), 2);
        assert_eq!(seq_of(jb.pop()), Some(3));
        assert_eq!(jb.stats().dropped, 3);
    }

    #[test]
    fn duplicates_are_dropped_and_a_sequence_jump_restarts() {
        let mut jb = JitterBuffer::new(1, 10);
        jb.push(pkt(5));
        jb.push(pkt(5));
        assert_eq!(jb.stats().dropped, 1);
        assert_eq!(seq_of(jb.pop()), Some(5));
        jb.push(pkt(30_000));
        assert_eq!(seq_of(jb.pop()), Some(30_000), "a new stream plays at once");
    }
}
