//! Arbitrary bytes as H.264 Annex-B access units.
#![no_main]

use bifrons_transcoding::video::h264::H264Decoder;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(mut dec) = H264Decoder::new() else {
        return;
    };
    for unit in data.split(|&b| b == 0xFF).take(4) {
        let _ = dec.decode(unit, 0);
    }
});
