//! Publisher offers (WHIP bodies, `publish` JSEPs): reading and narrowing never panic, and a
//! narrowed offer still reads, with one format per section that was narrowed.
#![no_main]

use bifrons::media::MediaKind;
use bifrons::plugins::streaming::publish_offer::{narrow, sections};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(read) = sections(text) else { return };
    let keep = |kind: MediaKind| {
        read.iter()
            .find(|s| s.kind == kind && !s.disabled)
            .and_then(|s| s.formats.first())
            .map(|f| f.pt)
    };
    let narrowed = narrow(text, keep);
    // CRLF line ends may take a long LF offer over the size limit: only then may it not read.
    if let Ok(again) = sections(&narrowed) {
        for s in again.iter().filter(|s| !s.disabled && keep(s.kind).is_some()) {
            assert_eq!(s.formats.len(), 1);
        }
    }
});
