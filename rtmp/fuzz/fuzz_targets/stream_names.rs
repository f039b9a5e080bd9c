//! App and stream names with query strings, as `connect`, `publish` and `play` carry them.
#![no_main]

use bifrons_rtmp::name::{QueryParams, StreamName};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let raw = String::from_utf8_lossy(data);
    let _ = StreamName::parse_app(&raw);
    let parsed = StreamName::parse(&raw);
    assert!(!parsed.name.contains('?'));
    // The written form parses back to the same name and parameters.
    assert_eq!(StreamName::parse(&parsed.to_string()), parsed);
    let params = QueryParams::parse(&raw);
    assert_eq!(QueryParams::parse(&params.to_string()), params);
});
