//! The audio bridge's stereo Opus detection and answer rewrite (spatial rooms): any SDP text is
//! handled without panicking, and the rewrite only ever adds to the text.
#![no_main]

use bifrons::plugins::audiobridge::stereo::{answer_with_stereo, offer_wants_stereo};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = offer_wants_stereo(text);
        let answer = answer_with_stereo(text);
        assert!(answer.len() >= text.len());
        let _ = offer_wants_stereo(&answer);
    }
});
