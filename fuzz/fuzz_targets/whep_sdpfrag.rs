//! WHEP trickle bodies (RFC 8840 SDP fragments): parsing never panics, whatever the bytes.
#![no_main]

use bifrons::web::whep::IceFragment;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(f) = IceFragment::parse(text) {
            assert!(f.candidates.iter().all(|(_, c)| c.starts_with("candidate:")));
        }
    }
});
