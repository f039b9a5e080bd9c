//! `janus.plugin.sip` message bodies (every request, including `message`, `info`, `transfer`
//! and their `headers`/`content_type` checks): parsing never panics, whatever the JSON.
#![no_main]

use bifrons::plugins::sip::requests::SipRequest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(body) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = SipRequest::parse(&body);
    }
});
