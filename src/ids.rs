//! Identifiers every layer shares: Janus session and handle ids, and the RTP/SDP numbers that
//! must never be confused with one another (`Mid`, `Ssrc`, `Pt`), as str0m names them.
//!
//! This module sits at the bottom of the stack: it imports nothing from the crate.

use std::fmt;

use rand::Rng;

/// Janus ids fit in 53 bits so that JavaScript numbers hold them exactly.
const JS_SAFE_MASK: u64 = 0x1F_FFFF_FFFF_FFFF;

macro_rules! id_type {
    ($name:ident, $doc:literal) => {
        #[doc = $doc]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub u64);

        impl $name {
            /// A random non-zero id below 2^53.
            pub fn random() -> Self {
                let mut rng = rand::thread_rng();
                loop {
                    let id = rng.gen::<u64>() & JS_SAFE_MASK;
                    if id != 0 {
                        return Self(id);
                    }
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_type!(SessionId, "A Janus session id (53-bit, random, non-zero).");
id_type!(
    HandleId,
    "A Janus plugin handle id (53-bit, random, non-zero)."
);

/// A media section's `a=mid` value (RFC 8843 §15): how a stream is named in SDP, in Janus'
/// `media`/`slowlink` events and in a plugin's negotiation results.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Mid(pub String);

impl Mid {
    /// The mid as written in SDP.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Mid {
    fn from(value: &str) -> Self {
        Self(value.to_string())
    }
}

impl fmt::Display for Mid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An RTP synchronisation source (RFC 3550 §3): 32 bits identifying one sender's stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Ssrc(pub u32);

impl fmt::Display for Ssrc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// An RTP payload type (RFC 3550 §5.1): 7 bits, bound to a codec by the SDP of one session
/// (`a=rtpmap`), or statically (PCMU 0, PCMA 8, G722 9: RFC 3551 §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Pt(pub u8);

impl fmt::Display for Pt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_ids_are_javascript_safe_and_non_zero() {
        for _ in 0..10_000 {
            let id = SessionId::random().0;
            assert!(id != 0 && id < (1u64 << 53));
        }
    }
}
