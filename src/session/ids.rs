//! Session and handle identifiers.

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

id_type!(SessionId, "A Janus session id.");
id_type!(HandleId, "A Janus plugin handle id.");

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
