//! Property tests: the SIP and SDP parsers never panic, and well-formed messages built from
//! arbitrary field values parse back to those values.

use bifrons_sip::message::{self, header_value, parse_cseq};
use bifrons_sip::sdp::Sdp;
use proptest::prelude::*;
use rsip::message::HasHeaders;

fn valid(user: &str, call_id: &str, cseq: u32, body: &str) -> Vec<u8> {
    format!(
        "MESSAGE sip:{user}@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK{cseq}\r\nFrom: <sip:a@127.0.0.1>;tag=x\r\nTo: <sip:{user}@127.0.0.1>\r\nCall-ID: {call_id}\r\nCSeq: {cseq} MESSAGE\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

proptest! {
    #[test]
    fn display_names_never_panic_and_quoted_ones_round_trip(raw in ".{0,80}", name in "[A-Za-z0-9 \"\\\\]{1,30}") {
        let _ = message::display_name(&raw);
        let quoted = name.replace('\\', "\\\\").replace('"', "\\\"");
        let got = message::display_name(&format!("\"{quoted}\" <sip:a@b>;tag=1"));
        let want = name.trim();
        prop_assert_eq!(got.as_deref(), (!want.is_empty()).then_some(want));
    }

    #[test]
    fn sip_parser_never_panics_on_bytes(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = message::parse(&data);
        let _ = message::stream_frame_len(&data);
        let _ = message::raw_bad_request(&data, "x");
    }

    #[test]
    fn sip_parser_never_panics_on_mutated_messages(pos in 0usize..300, byte in any::<u8>(), cut in 0usize..400) {
        let mut m = valid("bob", "abc", 7, "hello");
        let p = pos % m.len();
        m[p] = byte;
        m.truncate(cut.max(1).min(m.len()));
        let _ = message::parse(&m);
    }

    #[test]
    fn valid_messages_round_trip(user in "[a-z][a-z0-9]{0,15}", call_id in "[A-Za-z0-9]{1,30}", cseq in 1u32..1_000_000, body in "[ -~]{0,200}") {
        let m = message::parse(&valid(&user, &call_id, cseq, &body)).expect("valid message parses");
        prop_assert_eq!(header_value(m.headers(), "call-id"), Some(call_id));
        prop_assert_eq!(header_value(m.headers(), "cseq").and_then(|c| parse_cseq(&c)), Some((cseq, "MESSAGE".to_string())));
        prop_assert_eq!(m.body().as_slice(), body.as_bytes());
    }

    #[test]
    fn sdp_parser_never_panics(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = Sdp::parse(&data);
    }

    #[test]
    fn sdp_parser_never_panics_on_line_soup(lines in proptest::collection::vec("[vocmatsb]=[ -~]{0,60}", 0..30)) {
        let text = lines.join("\r\n");
        if let Ok(s) = Sdp::parse(text.as_bytes()) {
            let _ = s.audio_addr();
            let _ = Sdp::parse(&s.to_bytes());
        }
    }
}
