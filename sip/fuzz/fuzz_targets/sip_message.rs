#![no_main]
//! Arbitrary bytes through the datagram parser, the stream framer, the 400 builder and the
//! display-name reader.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = bifrons_sip::message::parse(data);
    let _ = bifrons_sip::message::stream_frame_len(data);
    let _ = bifrons_sip::message::raw_bad_request(data, "fuzz");
    let _ = bifrons_sip::message::display_name(&String::from_utf8_lossy(data));
});
