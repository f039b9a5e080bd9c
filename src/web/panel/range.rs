//! The `Range` header of a file download (RFC 9110 §14): one byte range, answered with 206;
//! several ranges or a malformed header are ignored (the whole file, 200), which the RFC
//! allows; a range starting past the end is 416.

/// What to send for a `Range` header against a file of `len` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeAnswer {
    /// The whole file (no header, several ranges or an unreadable header).
    Full,
    /// Bytes `start..=end`.
    Partial {
        /// First byte.
        start: u64,
        /// Last byte, included.
        end: u64,
    },
    /// 416 Range Not Satisfiable.
    Unsatisfiable,
}

/// Interprets `header` (the `Range` value, if any) for a file of `len` bytes.
pub fn parse_range(header: Option<&str>, len: u64) -> RangeAnswer {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return RangeAnswer::Full;
    };
    if spec.contains(',') {
        return RangeAnswer::Full;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeAnswer::Full;
    };
    let (first, last) = (first.trim(), last.trim());
    if first.is_empty() {
        // Suffix range: the last N bytes.
        let Ok(n) = last.parse::<u64>() else {
            return RangeAnswer::Full;
        };
        if n == 0 || len == 0 {
            return RangeAnswer::Unsatisfiable;
        }
        return RangeAnswer::Partial {
            start: len.saturating_sub(n),
            end: len - 1,
        };
    }
    let Ok(start) = first.parse::<u64>() else {
        return RangeAnswer::Full;
    };
    let end = if last.is_empty() {
        len.saturating_sub(1)
    } else {
        match last.parse::<u64>() {
            Ok(e) if e >= start => e.min(len.saturating_sub(1)),
            _ => return RangeAnswer::Full,
        }
    };
    if start >= len {
        return RangeAnswer::Unsatisfiable;
    }
    RangeAnswer::Partial { start, end }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reads_the_three_forms_of_a_byte_range() {
        let p = |s, e| RangeAnswer::Partial { start: s, end: e };
        assert_eq!(parse_range(Some("bytes=0-99"), 1000), p(0, 99));
        assert_eq!(parse_range(Some("bytes=900-"), 1000), p(900, 999));
        assert_eq!(parse_range(Some("bytes=-100"), 1000), p(900, 999));
        assert_eq!(parse_range(Some("bytes=-5000"), 1000), p(0, 999));
        assert_eq!(parse_range(Some("bytes=990-5000"), 1000), p(990, 999));
        assert_eq!(
            parse_range(Some("bytes=1000-"), 1000),
            RangeAnswer::Unsatisfiable
        );
        assert_eq!(
            parse_range(Some("bytes=-0"), 1000),
            RangeAnswer::Unsatisfiable
        );
        assert_eq!(parse_range(Some("bytes=0-1,5-6"), 1000), RangeAnswer::Full);
        assert_eq!(parse_range(Some("items=0-1"), 1000), RangeAnswer::Full);
        assert_eq!(parse_range(Some("bytes=5-1"), 1000), RangeAnswer::Full);
        assert_eq!(parse_range(None, 1000), RangeAnswer::Full);
    }

    proptest! {
        #[test]
        fn a_partial_answer_always_lies_inside_the_file(h in "\\PC{0,24}", len in 0u64..10_000) {
            if let RangeAnswer::Partial { start, end } = parse_range(Some(&h), len) {
                prop_assert!(start <= end && end < len);
            }
        }

        #[test]
        fn numeric_ranges_never_escape(a in 0u64..20_000, b in 0u64..20_000, len in 0u64..10_000) {
            let h = format!("bytes={a}-{b}");
            if let RangeAnswer::Partial { start, end } = parse_range(Some(&h), len) {
                prop_assert!(start == a && end < len && start <= end);
            }
        }
    }
}
