//! Stereo in spatial rooms (`"spatial_audio": true`, 48 kHz): a participant whose offer asks
//! for stereo Opus (`stereo=1` in the `a=fmtp` of its Opus payload type, RFC 7587 §7.1, as
//! janus.js' audiobridge demo munges it) receives the room's stereo mix, each voice panned by
//! its `spatial_position` (0 left, 50 centre, 100 right); the answer then carries `stereo=1`
//! too, as Janus' answer does. Everybody else receives the mono mix.

/// The Opus payload types of an SDP (`a=rtpmap:<pt> opus/48000...`, any case).
fn opus_payload_types(sdp: &str) -> Vec<&str> {
    sdp.lines()
        .filter_map(|l| l.trim_end().strip_prefix("a=rtpmap:"))
        .filter_map(|rest| {
            let (pt, codec) = rest.split_once(' ')?;
            codec
                .to_ascii_lowercase()
                .starts_with("opus/")
                .then_some(pt)
        })
        .collect()
}

/// Whether the offer asks to receive stereo Opus.
pub fn offer_wants_stereo(sdp: &str) -> bool {
    let pts = opus_payload_types(sdp);
    sdp.lines()
        .filter_map(|l| l.trim_end().strip_prefix("a=fmtp:"))
        .filter_map(|rest| rest.split_once(' '))
        .filter(|(pt, _)| pts.contains(pt))
        .any(|(_, params)| {
            params
                .split(';')
                .any(|p| p.trim().eq_ignore_ascii_case("stereo=1"))
        })
}

/// The answer with `stereo=1` added to the `a=fmtp` of its Opus payload type (a line is added
/// when it has none).
pub fn answer_with_stereo(sdp: &str) -> String {
    let pts: Vec<String> = opus_payload_types(sdp)
        .into_iter()
        .map(str::to_owned)
        .collect();
    let mut out = String::with_capacity(sdp.len() + 32);
    let mut has_fmtp: Vec<&String> = Vec::new();
    for line in sdp.split_inclusive('\n') {
        let body = line.trim_end_matches(['\r', '\n']);
        let ending = &line[body.len()..];
        if let Some((pt, params)) = body.strip_prefix("a=fmtp:").and_then(|r| r.split_once(' ')) {
            if let Some(p) = pts.iter().find(|p| p.as_str() == pt) {
                has_fmtp.push(p);
                if !params
                    .split(';')
                    .any(|x| x.trim().eq_ignore_ascii_case("stereo=1"))
                {
                    out.push_str(body);
                    out.push_str(";stereo=1");
                    out.push_str(ending);
                    continue;
                }
            }
        }
        out.push_str(line);
    }
    // An Opus payload type without fmtp gets one right after its rtpmap.
    for pt in &pts {
        if !has_fmtp.contains(&pt) {
            let marker = format!("a=rtpmap:{pt} ");
            if let Some(start) = out.find(&marker) {
                let end = out[start..].find('\n').map_or(out.len(), |e| start + e + 1);
                out.insert_str(end, &format!("a=fmtp:{pt} stereo=1\r\n"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const OFFER: &str = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111 0\r\na=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1;stereo=1\r\na=rtpmap:0 PCMU/8000\r\n";

    #[test]
    fn stereo_is_read_from_the_opus_fmtp_only() {
        assert!(offer_wants_stereo(OFFER));
        assert!(!offer_wants_stereo(&OFFER.replace(";stereo=1", "")));
        let other_pt =
            "m=audio 9 RTP/AVP 96 111\r\na=rtpmap:111 opus/48000/2\r\na=fmtp:96 stereo=1\r\n";
        assert!(!offer_wants_stereo(other_pt));
    }

    #[test]
    fn the_answer_gets_stereo_on_its_opus_fmtp() {
        let answer = "v=0\r\na=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\na=sendrecv\r\n";
        let out = answer_with_stereo(answer);
        assert!(
            out.contains("a=fmtp:111 minptime=10;useinbandfec=1;stereo=1\r\n"),
            "{out}"
        );
        assert_eq!(answer_with_stereo(&out), out, "added once");
        let bare = "v=0\r\na=rtpmap:111 opus/48000/2\r\na=sendrecv\r\n";
        assert_eq!(
            answer_with_stereo(bare),
            "v=0\r\na=rtpmap:111 opus/48000/2\r\na=fmtp:111 stereo=1\r\na=sendrecv\r\n"
        );
    }

    proptest! {
        #[test]
        fn any_text_is_handled_without_panicking(sdp in "(?s).{0,400}") {
            let _ = offer_wants_stereo(&sdp);
            let out = answer_with_stereo(&sdp);
            prop_assert!(out.len() >= sdp.len());
        }

        #[test]
        fn stereo_lines_round_trip(pt in 96u8..128, extra in "[a-z=0-9;]{0,20}") {
            let sdp = format!("a=rtpmap:{pt} opus/48000/2\r\na=fmtp:{pt} {extra}\r\n");
            prop_assert!(offer_wants_stereo(&answer_with_stereo(&sdp)));
        }
    }
}
