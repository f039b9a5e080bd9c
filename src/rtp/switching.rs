//! [`RtpRewriter`]: one continuous outgoing RTP stream from sources that come and go.
//!
//! A viewer of a mountpoint whose publisher reconnects, or a room participant who hears
//! whoever speaks, must see one SSRC with sequence numbers that advance by one and timestamps
//! that follow real time: decoders and jitter buffers reset or stall otherwise (RFC 3550
//! §5.1, §8.2). Within one source the original spacing is kept exactly (gaps stay gaps, so
//! receivers still detect loss and reordering); at a switch the new source is re-based after
//! the last packet sent, its timestamp advanced by the time that passed.

use std::time::Duration;

use crate::ids::Ssrc;

/// The header fields the rewriter reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpHeader {
    /// Synchronisation source.
    pub ssrc: Ssrc,
    /// Sequence number (16 bits, wraps).
    pub sequence_number: u16,
    /// Timestamp in the codec's clock (wraps).
    pub timestamp: u32,
}

/// Rewrites packets of changing sources into one stream with a fixed SSRC.
#[derive(Debug, Clone)]
pub struct RtpRewriter {
    ssrc: Ssrc,
    clock_rate: u32,
    source: Option<Ssrc>,
    rebase: bool,
    seq_offset: u16,
    ts_offset: u32,
    last: Option<(u16, u32, Duration)>,
}

impl RtpRewriter {
    /// A rewriter sending as `ssrc`, for a codec whose RTP clock is `clock_rate` Hz.
    pub fn new(ssrc: Ssrc, clock_rate: u32) -> Self {
        Self {
            ssrc,
            clock_rate,
            source: None,
            rebase: true,
            seq_offset: 0,
            ts_offset: 0,
            last: None,
        }
    }

    /// Re-bases on the next packet even from the same source (a publisher that restarted
    /// its counters, or a switch between simulcast layers).
    pub fn switch(&mut self) {
        self.rebase = true;
    }

    /// Rewrites one packet that arrived at `now` (any monotonic clock, same origin for every
    /// call): SSRC replaced; sequence number and timestamp shifted so that the stream goes on
    /// from the last packet sent.
    pub fn rewrite(&mut self, header: RtpHeader, now: Duration) -> RtpHeader {
        if self.rebase || self.source != Some(header.ssrc) {
            let (next_seq, next_ts) = match self.last {
                None => (header.sequence_number, header.timestamp),
                Some((seq, ts, at)) => {
                    let elapsed = now.saturating_sub(at).as_micros() as u64;
                    // At least one tick, so the new source's first packet is never "before"
                    // the previous one.
                    let ticks = (elapsed * u64::from(self.clock_rate) / 1_000_000).max(1);
                    (seq.wrapping_add(1), ts.wrapping_add(ticks as u32))
                }
            };
            self.seq_offset = next_seq.wrapping_sub(header.sequence_number);
            self.ts_offset = next_ts.wrapping_sub(header.timestamp);
            self.source = Some(header.ssrc);
            self.rebase = false;
        }
        let out = RtpHeader {
            ssrc: self.ssrc,
            sequence_number: header.sequence_number.wrapping_add(self.seq_offset),
            timestamp: header.timestamp.wrapping_add(self.ts_offset),
        };
        // Remember the newest packet only: a late one must not pull the base backwards.
        let newer = match self.last {
            None => true,
            Some((seq, _, _)) => (out.sequence_number.wrapping_sub(seq) as i16) > 0,
        };
        if newer {
            self.last = Some((out.sequence_number, out.timestamp, now));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn h(ssrc: u32, seq: u16, ts: u32) -> RtpHeader {
        RtpHeader {
            ssrc: Ssrc(ssrc),
            sequence_number: seq,
            timestamp: ts,
        }
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_new_source_continues_after_the_last_packet_with_real_time_in_its_timestamp() {
        let mut r = RtpRewriter::new(Ssrc(99), 48_000);
        let a1 = r.rewrite(h(1, 100, 5_000), ms(0));
        assert_eq!(a1, h(99, 100, 5_000), "the first source passes through");
        let a2 = r.rewrite(h(1, 101, 5_960), ms(20));
        assert_eq!(a2, h(99, 101, 5_960));
        // A second source, 500 ms later, with unrelated counters.
        let b1 = r.rewrite(h(2, 40_000, 123), ms(520));
        assert_eq!(b1, h(99, 102, 5_960 + 24_000));
        let b2 = r.rewrite(h(2, 40_001, 1_083), ms(540));
        assert_eq!(b2, h(99, 103, 5_960 + 24_000 + 960));
    }

    #[test]
    fn gaps_and_late_packets_keep_their_spacing_within_a_source() {
        let mut r = RtpRewriter::new(Ssrc(7), 90_000);
        r.rewrite(h(1, 10, 0), ms(0));
        assert_eq!(r.rewrite(h(1, 13, 9_000), ms(100)).sequence_number, 13);
        assert_eq!(
            r.rewrite(h(1, 12, 6_000), ms(101)).sequence_number,
            12,
            "late stays late"
        );
        // A switch re-bases after the newest packet (13), not after the late one.
        let b = r.rewrite(h(5, 0, 0), ms(200));
        assert_eq!(b.sequence_number, 14);
    }

    #[test]
    fn switch_rebases_the_same_source() {
        let mut r = RtpRewriter::new(Ssrc(7), 8_000);
        r.rewrite(h(1, 65_535, u32::MAX), ms(0));
        r.switch();
        let restarted = r.rewrite(h(1, 0, 0), ms(20));
        assert_eq!((restarted.sequence_number, restarted.timestamp), (0, 159));
    }

    proptest! {
        /// Within one source, output deltas equal input deltas (mod 2^16 and 2^32).
        #[test]
        fn one_source_keeps_every_delta(start_seq: u16, start_ts: u32, steps in proptest::collection::vec((1u16..50, 0u32..100_000), 1..200)) {
            let mut r = RtpRewriter::new(Ssrc(1), 90_000);
            let (mut seq, mut ts) = (start_seq, start_ts);
            let first = r.rewrite(h(3, seq, ts), Duration::ZERO);
            for (i, (ds, dt)) in steps.into_iter().enumerate() {
                seq = seq.wrapping_add(ds);
                ts = ts.wrapping_add(dt);
                let out = r.rewrite(h(3, seq, ts), ms(i as u64));
                prop_assert_eq!(out.sequence_number.wrapping_sub(first.sequence_number), seq.wrapping_sub(start_seq));
                prop_assert_eq!(out.timestamp.wrapping_sub(first.timestamp), ts.wrapping_sub(start_ts));
                prop_assert_eq!(out.ssrc, Ssrc(1));
            }
        }
    }
}
