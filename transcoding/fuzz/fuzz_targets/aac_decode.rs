//! First byte picks the config length, then AudioSpecificConfig + raw access units.
#![no_main]

use bifrons_transcoding::aac::AacDecoder;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let n = (n as usize % 8).min(rest.len());
    let (asc, units) = rest.split_at(n);
    let Ok(mut dec) = AacDecoder::new(asc) else {
        return;
    };
    for unit in units.chunks(512).take(8) {
        let _ = dec.decode(unit, 0);
    }
});
