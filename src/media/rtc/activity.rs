//! Receive activity of one loop PeerConnection: the Janus `media` events (receiving
//! true/false per kind after `no_media_timer` of silence) and `slowlink` (packets lost per
//! second past a threshold), checked from the loop's timer heap instead of a task.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::media::MediaKind;
use crate::rtp::LossWindow;

/// How often silence and loss are checked: a quarter second, so a `media` event comes at most
/// 250 ms after `no_media_timer` ran out.
pub const CHECK_PERIOD: Duration = Duration::from_millis(250);
/// Checks per slow-link window (one second).
const CHECKS_PER_SECOND: u32 = 4;

/// What a check found for one kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finding {
    /// No packet for longer than `no_media_timer`: a `media` receiving=false event.
    Stopped(MediaKind),
    /// `lost` packets of `kind` we receive went missing in the last second.
    Slowlink(MediaKind, u64),
}

/// Per-kind receive state, owned by the loop thread; `receiving` is shared with the
/// PeerConnection's handle (`Peer::receiving`).
pub struct Activity {
    last_packet: [Option<Instant>; 2],
    loss: [LossWindow; 2],
    receiving: Arc<[AtomicBool; 2]>,
    no_media_timer: Duration,
    slowlink_threshold: u64,
    next_check: Instant,
    checks: u32,
}

impl Activity {
    /// `no_media_timer`: silence before receiving=false; `slowlink_threshold`: lost packets per
    /// second that raise `slowlink` (0 = never).
    pub fn new(
        now: Instant,
        no_media_timer: Duration,
        slowlink_threshold: u64,
        receiving: Arc<[AtomicBool; 2]>,
    ) -> Self {
        Self {
            last_packet: [None, None],
            loss: Default::default(),
            receiving,
            no_media_timer,
            slowlink_threshold,
            next_check: now + CHECK_PERIOD,
            checks: 0,
        }
    }

    /// Notes a packet of `kind` with sequence number `seq`; `true` when it is the first after
    /// silence (a `media` receiving=true event is due).
    pub fn on_packet(&mut self, now: Instant, kind: MediaKind, seq: u16) -> bool {
        self.last_packet[kind.index()] = Some(now);
        if self.slowlink_threshold > 0 {
            self.loss[kind.index()].on_packet(seq);
        }
        !self.receiving[kind.index()].swap(true, Ordering::AcqRel)
    }

    /// When [`Activity::check`] is next due.
    pub fn next_check(&self) -> Instant {
        self.next_check
    }

    /// Runs the checks due at `now`, calling `found` for each finding.
    pub fn check(&mut self, now: Instant, mut found: impl FnMut(Finding)) {
        if now < self.next_check {
            return;
        }
        self.next_check = now + CHECK_PERIOD;
        self.checks += 1;
        let slowlink_due = self.slowlink_threshold > 0 && self.checks % CHECKS_PER_SECOND == 0;
        for kind in MediaKind::ALL {
            let i = kind.index();
            let silent = self.last_packet[i]
                .is_none_or(|at| now.saturating_duration_since(at) > self.no_media_timer);
            if silent && self.receiving[i].swap(false, Ordering::AcqRel) {
                found(Finding::Stopped(kind));
            }
            if slowlink_due {
                let lost = self.loss[i].take_lost();
                if lost >= self.slowlink_threshold {
                    found(Finding::Slowlink(kind, lost));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silence_after_packets_is_reported_once_and_packets_restart_it() {
        let t0 = Instant::now();
        let flags: Arc<[AtomicBool; 2]> = Arc::default();
        let mut a = Activity::new(t0, Duration::from_secs(1), 0, flags.clone());
        assert!(a.on_packet(t0, MediaKind::Audio, 1));
        assert!(!a.on_packet(t0, MediaKind::Audio, 2));
        assert!(flags[MediaKind::Audio.index()].load(Ordering::Relaxed));
        let mut found = Vec::new();
        a.check(t0 + Duration::from_millis(500), |f| found.push(f));
        assert!(found.is_empty());
        a.check(t0 + Duration::from_millis(1100), |f| found.push(f));
        assert_eq!(found, vec![Finding::Stopped(MediaKind::Audio)]);
        a.check(t0 + Duration::from_millis(1400), |f| found.push(f));
        assert_eq!(found.len(), 1, "reported once");
        assert!(a.on_packet(t0 + Duration::from_millis(1500), MediaKind::Audio, 3));
    }

    #[test]
    fn loss_past_the_threshold_is_a_slowlink_once_a_second() {
        let t0 = Instant::now();
        let mut a = Activity::new(t0, Duration::from_secs(5), 3, Arc::default());
        for seq in [1u16, 2, 8, 9] {
            a.on_packet(t0, MediaKind::Video, seq);
        }
        let mut found = Vec::new();
        for n in 1..=4 {
            a.check(t0 + CHECK_PERIOD * n, |f| found.push(f));
        }
        assert_eq!(found, vec![Finding::Slowlink(MediaKind::Video, 5)]);
    }
}
