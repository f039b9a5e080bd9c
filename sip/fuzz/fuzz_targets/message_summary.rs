#![no_main]
//! Arbitrary bytes through the message-summary body (RFC 3842) and `Event` header readers; a
//! summary read back from its own body is the same summary.

use bifrons_sip::event::{EventHeader, MessageSummary};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(summary) = MessageSummary::parse(data) {
        let again = MessageSummary::parse(summary.to_body().as_bytes());
        assert_eq!(again.as_ref().ok().map(|s| (s.waiting, s.voice)), Some((summary.waiting, summary.voice)));
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = EventHeader::parse(text);
    }
});
