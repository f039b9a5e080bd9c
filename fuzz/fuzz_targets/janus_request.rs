//! Janus API request frames: parsing and field access never panic, whatever the bytes.
#![no_main]

use bifrons::api::request::{parse_request, Fields};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(map) = parse_request(&text) {
        let fields = Fields::new(&map);
        let _ = fields.string("janus");
        let _ = fields.string("transaction");
        let _ = fields.opt_u64("session_id");
        let _ = fields.opt_u64("handle_id");
        let _ = fields.object("body");
        let _ = fields.opt_string_array("plugins");
        if let Ok(jsep) = fields.object("jsep") {
            let jsep = Fields::with_context(jsep, "JSEP error: ");
            if let Ok(sdp) = jsep.string("sdp") {
                let _ = bifrons::media::validate_sdp(sdp);
            }
        }
    }
});
