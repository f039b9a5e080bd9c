//! SDP offers from clients: validation and the payload-type reader the loop engine answers
//! with never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let sdp = String::from_utf8_lossy(data);
    let _ = bifrons::media::validate_sdp(&sdp);
    for kind in bifrons::media::MediaKind::ALL {
        for format in bifrons::media::offered_formats(&sdp, kind) {
            assert!(format.codec.codec().is_some());
        }
    }
});
