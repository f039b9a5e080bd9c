//! Arbitrary bytes as a sequence of VP8 frames.
#![no_main]

use bifrons_transcoding::video::vp8::Vp8Decoder;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(mut dec) = Vp8Decoder::new() else {
        return;
    };
    for frame in data.split(|&b| b == 0xFF).take(4) {
        let _ = dec.decode(frame, 0);
    }
});
