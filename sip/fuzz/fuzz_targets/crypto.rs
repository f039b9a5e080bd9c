#![no_main]
//! Arbitrary bytes through the `a=crypto` parser (RFC 4568), alone and inside an SDP offer
//! answered with SDES-SRTP.

use bifrons_sip::sdp::{Codec, Direction, Sdp};
use bifrons_sip::srtp::Crypto;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(c) = Crypto::parse(text) {
        assert_eq!(Crypto::parse(&c.to_value()), Ok(c));
    }
    let sdp = format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/SAVP 0\r\na=crypto:{text}\r\n"
    );
    if let Ok(offer) = Sdp::parse(sdp.as_bytes()) {
        let addr = "127.0.0.1:5000".parse().unwrap();
        if let Ok((mut answer, _)) = Sdp::answer(&offer, &[Codec::Pcmu], addr, Direction::SendRecv, 1) {
            let _ = Sdp::answer_srtp(&mut answer, &offer, None);
        }
    }
});
