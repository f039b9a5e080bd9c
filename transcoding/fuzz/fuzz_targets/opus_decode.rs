//! Arbitrary bytes as an Opus packet: the decoder must return Ok or Err, never crash.
#![no_main]

use bifrons_transcoding::opus_codec::OpusDecoder;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(mut dec) = OpusDecoder::new(2) else {
        return;
    };
    for packet in data.split(|&b| b == 0xFF).take(8) {
        let _ = dec.decode(packet, 0);
    }
    let _ = dec.conceal(0);
});
