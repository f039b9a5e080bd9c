//! SDP offers from clients: validation never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = bifrons::media::validate_sdp(&String::from_utf8_lossy(data));
});
