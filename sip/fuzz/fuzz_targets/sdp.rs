#![no_main]
//! Arbitrary bytes through the SDP parser and offer/answer negotiation.

use bifrons_sip::sdp::{negotiate, Codec, Direction, Sdp};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(sdp) = Sdp::parse(data) {
        let _ = negotiate(&sdp, &[Codec::Opus, Codec::Pcmu, Codec::Pcma], Direction::SendRecv, true);
        let _ = Sdp::parse(&sdp.to_bytes());
    }
});
