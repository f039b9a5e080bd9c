//! What the RTMP ingest does with a publish that sends broken media: malformed FLV tags, AAC
//! frames before any AAC sequence header (no AudioSpecificConfig: nothing can decode them),
//! H.264 access units before any AVC sequence header (no SPS/PPS: no viewer can decode them).
//! Such media is never relayed; the first of each kind is logged, and a publish that keeps
//! sending it is dropped (with a log line) instead of holding its mountpoint "live" with
//! nothing playable. A few broken tags among good ones (a glitch) are tolerated.

/// Malformed tags a publish may send before it is dropped.
pub const MAX_MALFORMED_TAGS: u32 = 10;
/// H.264 access units without a sequence header before the publish is dropped (2 s at 30 fps).
pub const MAX_VIDEO_WITHOUT_CONFIG: u32 = 60;
/// AAC frames without a sequence header before the publish is dropped (about 2 s at 48 kHz).
pub const MAX_AUDIO_WITHOUT_CONFIG: u32 = 94;

/// What to do with one tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Relay it.
    Relay,
    /// Leave it out; log `why` (first time only: the caller logs when `first`).
    Discard {
        /// Why, for the log line.
        why: &'static str,
        /// Whether this is the first tag of this kind of trouble in the publish.
        first: bool,
    },
    /// End the publish: it sent too much of `why`.
    Drop(&'static str),
}

/// Per-publish counts (one per RTMP publish, touched only by its ingest task).
#[derive(Debug, Default)]
pub struct IngestGuard {
    malformed: u32,
    video_without_config: u32,
    audio_without_config: u32,
    video_config: bool,
    audio_config: bool,
    /// A drop was asked for: what still arrives is discarded quietly.
    dropped: bool,
}

/// Which count a fault goes to.
#[derive(Clone, Copy)]
enum Which {
    Malformed,
    Video,
    Audio,
}

impl IngestGuard {
    fn count(&mut self, which: Which, max: u32, why: &'static str) -> Verdict {
        if self.dropped {
            return Verdict::Discard { why, first: false };
        }
        let n = match which {
            Which::Malformed => &mut self.malformed,
            Which::Video => &mut self.video_without_config,
            Which::Audio => &mut self.audio_without_config,
        };
        *n += 1;
        if *n > max {
            self.dropped = true;
            Verdict::Drop(why)
        } else {
            Verdict::Discard {
                why,
                first: *n == 1,
            }
        }
    }

    /// A tag that did not parse.
    pub fn malformed(&mut self) -> Verdict {
        self.count(Which::Malformed, MAX_MALFORMED_TAGS, "malformed FLV tags")
    }

    /// An AVC sequence header arrived.
    pub fn video_config(&mut self) {
        self.video_config = true;
    }

    /// An AAC sequence header arrived.
    pub fn audio_config(&mut self) {
        self.audio_config = true;
    }

    /// An H.264 access unit.
    pub fn video_frame(&mut self) -> Verdict {
        if self.video_config {
            return Verdict::Relay;
        }
        self.count(
            Which::Video,
            MAX_VIDEO_WITHOUT_CONFIG,
            "H.264 without SPS/PPS (no AVC sequence header)",
        )
    }

    /// An AAC frame.
    pub fn audio_frame(&mut self) -> Verdict {
        if self.audio_config {
            return Verdict::Relay;
        }
        self.count(
            Which::Audio,
            MAX_AUDIO_WITHOUT_CONFIG,
            "AAC without AudioSpecificConfig (no AAC sequence header)",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_before_their_configuration_are_discarded_then_dropped() {
        let mut g = IngestGuard::default();
        assert!(matches!(
            g.video_frame(),
            Verdict::Discard { first: true, .. }
        ));
        assert!(matches!(
            g.video_frame(),
            Verdict::Discard { first: false, .. }
        ));
        g.video_config();
        assert_eq!(g.video_frame(), Verdict::Relay);
        for _ in 0..MAX_AUDIO_WITHOUT_CONFIG {
            assert!(matches!(g.audio_frame(), Verdict::Discard { .. }));
        }
        assert!(matches!(g.audio_frame(), Verdict::Drop(_)));
    }

    #[test]
    fn a_few_malformed_tags_are_tolerated() {
        let mut g = IngestGuard::default();
        for _ in 0..MAX_MALFORMED_TAGS {
            assert!(matches!(g.malformed(), Verdict::Discard { .. }));
        }
        assert_eq!(g.malformed(), Verdict::Drop("malformed FLV tags"));
        // Asked once: what follows is discarded quietly.
        assert!(matches!(
            g.malformed(),
            Verdict::Discard { first: false, .. }
        ));
        assert!(matches!(
            g.audio_frame(),
            Verdict::Discard { first: false, .. }
        ));
    }
}
