//! G.711 accepts any bytes; the round trip must stay within the law's range.
#![no_main]

use bifrons_transcoding::g711::{self, G711Law};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for law in [G711Law::Mu, G711Law::A] {
        let mut pcm = Vec::new();
        g711::decode_into(law, data, &mut pcm);
        let mut again = Vec::new();
        g711::encode_into(law, &pcm, &mut again);
        assert_eq!(again.len(), data.len());
    }
});
