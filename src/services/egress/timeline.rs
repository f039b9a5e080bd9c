//! RTP timestamps of a mountpoint's audio and video → one FLV millisecond timeline.
//!
//! The two RTP streams of a mountpoint start at unrelated random timestamps (RFC 3550 §5.1)
//! and run on different clocks (48 kHz Opus, 90 kHz video), so they are tied together through
//! arrival times: for each kind, the *minimum transit* `arrival − media time` over a warm-up
//! window is taken as the moment the stream's media time 0 was live. The minimum (rather than
//! the first packet) ignores packets that came late: a jitter burst, and above all the
//! keyframe cache the mountpoint replays to a new sink at once, whose packets are up to a GOP
//! old. After the warm-up the mapping is fixed, so timestamps never jump; a source that
//! restarts (its RTP timestamps jump by more than [`RESYNC_MS`] against arrival) is re-anchored
//! on its own.
//!
//! Pure: arrival times are passed in (milliseconds since the egress started), so tests drive
//! it with made-up times.

use crate::media::MediaKind;

/// A stream whose transit moves by more than this (ms) has restarted: it is re-anchored.
pub const RESYNC_MS: i64 = 2_000;

/// One kind's RTP clock, extended past 32-bit wraps.
#[derive(Debug, Clone, Copy)]
struct KindClock {
    rate: i64,
    /// Reference point: the newest timestamp seen and its extended tick count.
    last: Option<(u32, i64)>,
    /// Minimum `arrival − media time` seen (ms): when media time 0 was live.
    min_transit: Option<i64>,
    /// The fixed anchor (after warm-up): FLV-epoch ms of media time 0.
    base: Option<i64>,
}

impl KindClock {
    fn new(rate: u32) -> Self {
        Self {
            rate: i64::from(rate.max(1)),
            last: None,
            min_transit: None,
            base: None,
        }
    }

    /// Media time (ms) of `rtp` since this clock's first timestamp; moves the reference
    /// forward only, so calling it again for an older packet gives the same answer.
    fn media_ms(&mut self, rtp: u32) -> i64 {
        let ticks = match self.last {
            None => {
                self.last = Some((rtp, 0));
                0
            }
            Some((last, ext)) => {
                let delta = i64::from(rtp.wrapping_sub(last) as i32);
                let ticks = ext + delta;
                if delta > 0 {
                    self.last = Some((rtp, ticks));
                }
                ticks
            }
        };
        ticks * 1000 / self.rate
    }
}

/// The shared FLV timeline of one mountpoint's egress.
#[derive(Debug, Clone)]
pub struct Timeline {
    clocks: [KindClock; 2],
    /// Subtracted from every anchored time so the first tag is near 0 (set when frozen).
    origin: Option<i64>,
}

impl Timeline {
    /// A timeline for audio on an `audio_rate` Hz clock and video on `video_rate` Hz.
    pub fn new(audio_rate: u32, video_rate: u32) -> Self {
        Self {
            clocks: [KindClock::new(audio_rate), KindClock::new(video_rate)],
            origin: None,
        }
    }

    /// Whether the warm-up is over (see [`freeze`](Self::freeze)).
    pub fn is_frozen(&self) -> bool {
        self.origin.is_some()
    }

    /// Takes one packet of `kind` with RTP timestamp `rtp` that arrived at `arrival_ms`
    /// (since the egress started). Before the freeze it refines the anchor; after it, a kind
    /// first seen now is anchored here, and a kind whose transit moved by more than
    /// [`RESYNC_MS`] is re-anchored (returns `true`: its encoder state should start again).
    pub fn observe(&mut self, kind: MediaKind, rtp: u32, arrival_ms: i64) -> bool {
        let frozen = self.origin.is_some();
        let clock = &mut self.clocks[kind.index()];
        let transit = arrival_ms - clock.media_ms(rtp);
        if !frozen {
            clock.min_transit = Some(clock.min_transit.map_or(transit, |m| m.min(transit)));
            return false;
        }
        match clock.base {
            None => {
                clock.base = Some(transit);
                false
            }
            Some(base) if (transit - base).abs() > RESYNC_MS => {
                // A new source: its timestamps start again from here.
                *clock = KindClock::new(clock.rate as u32);
                clock.media_ms(rtp);
                clock.base = Some(arrival_ms);
                true
            }
            Some(_) => false,
        }
    }

    /// Ends the warm-up: each kind seen is anchored at its minimum transit, and the origin is
    /// set so that the earliest of `first` (the oldest held packet of each kind) maps to 0.
    pub fn freeze(&mut self, first: &[(MediaKind, u32)]) {
        for clock in &mut self.clocks {
            clock.base = clock.min_transit;
        }
        let mut origin = i64::MAX;
        for &(kind, rtp) in first {
            let clock = &mut self.clocks[kind.index()];
            if let Some(base) = clock.base {
                origin = origin.min(base + clock.media_ms(rtp));
            }
        }
        self.origin = Some(if origin == i64::MAX { 0 } else { origin });
    }

    /// FLV milliseconds of `rtp` on `kind`'s clock; `None` before the freeze or before the
    /// kind was anchored. Never negative.
    pub fn flv_ms(&mut self, kind: MediaKind, rtp: u32) -> Option<u32> {
        let origin = self.origin?;
        let clock = &mut self.clocks[kind.index()];
        let base = clock.base?;
        let ms = base + clock.media_ms(rtp) - origin;
        Some(ms.clamp(0, i64::from(u32::MAX)) as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: MediaKind = MediaKind::Audio;
    const V: MediaKind = MediaKind::Video;

    #[test]
    fn audio_and_video_meet_on_arrival_whatever_their_random_bases() {
        let mut t = Timeline::new(48_000, 90_000);
        let (a0, v0) = (4_000_000_000u32, 77u32);
        // Both live from arrival 100 ms; video every 33.3 ms, audio every 20 ms.
        for i in 0..15u32 {
            t.observe(V, v0 + i * 3000, 100 + i64::from(i) * 100 / 3);
            t.observe(A, a0.wrapping_add(i * 960), 100 + i64::from(i) * 20);
        }
        t.freeze(&[(V, v0), (A, a0)]);
        assert_eq!(t.flv_ms(A, a0), Some(0));
        assert_eq!(t.flv_ms(V, v0), Some(0));
        // One second later on each clock: the same FLV time (audio wrapped past 2^32).
        assert_eq!(t.flv_ms(A, a0.wrapping_add(48_000)), Some(1000));
        assert_eq!(t.flv_ms(V, v0 + 90_000), Some(1000));
    }

    #[test]
    fn a_replayed_gop_does_not_pull_video_ahead() {
        let mut t = Timeline::new(48_000, 90_000);
        // The keyframe cache: 1.5 s of video delivered at once at 0 ms...
        for i in 0..45u32 {
            t.observe(V, i * 3000, 0);
        }
        // ...then live video and audio, in step, from 1.5 s of media time on.
        for i in 0..10u32 {
            t.observe(V, 135_000 + i * 3000, i64::from(i) * 100 / 3);
            t.observe(A, 500 + i * 960, 20 * i64::from(i));
        }
        t.freeze(&[(V, 0), (A, 500)]);
        // The replayed keyframe is placed 1.5 s before the live audio start.
        assert_eq!(t.flv_ms(V, 0), Some(0));
        assert_eq!(t.flv_ms(V, 135_000), Some(1500));
        assert_eq!(t.flv_ms(A, 500), Some(1500));
    }

    #[test]
    fn a_restarted_source_is_re_anchored_and_a_late_kind_joins() {
        let mut t = Timeline::new(48_000, 90_000);
        t.observe(A, 1000, 0);
        t.freeze(&[(A, 1000)]);
        assert!(!t.observe(A, 1000 + 48_000, 1000));
        assert_eq!(t.flv_ms(A, 1000 + 48_000), Some(1000));
        // Video appears later: anchored where it arrives.
        assert!(!t.observe(V, 5, 1500));
        assert_eq!(t.flv_ms(V, 5), Some(1500));
        // The audio source restarts with new timestamps at 3 s.
        assert!(t.observe(A, 123_456_789, 3000));
        assert_eq!(t.flv_ms(A, 123_456_789), Some(3000));
        assert_eq!(t.flv_ms(A, 123_456_789 + 960), Some(3020));
    }

    #[test]
    fn nothing_before_the_freeze() {
        let mut t = Timeline::new(48_000, 90_000);
        t.observe(A, 0, 0);
        assert_eq!(t.flv_ms(A, 0), None);
        assert!(!t.is_frozen());
    }
}
