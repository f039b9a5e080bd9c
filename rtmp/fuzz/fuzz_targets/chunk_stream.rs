//! The server session's chunk and message parsing, as the ingest server drives it (the server
//! catches panics of this parser per connection; the fuzzer finds them).
#![no_main]

use libfuzzer_sys::fuzz_target;
use rml_rtmp::sessions::{ServerSession, ServerSessionConfig};

fuzz_target!(|data: &[u8]| {
    let Ok((mut session, _)) = ServerSession::new(ServerSessionConfig::new()) else {
        return;
    };
    // Feed in uneven slices, as TCP reads arrive.
    for piece in data.chunks(97) {
        if session.handle_input(piece).is_err() {
            break;
        }
    }
});
