//! Shapes our answer after the offer it answers (RFC 3264 §6, RFC 8829 §5.3.1): one media
//! section per offered section, in the same order, with the same mid and transport profile;
//! sections we do not take (or the offerer already rejected) present with port 0; directions
//! the intersection of what the offer allows and what we want; the BUNDLE group limited to
//! offered and accepted mids. The WebRTC engine's answer is the input: whatever it dropped or
//! got wrong is put right here, for every plugin that answers.
//!
//! Pure text in, text out: SDP lines are kept as written, only the fields above change.

/// One SDP media section: its `m=` line and the lines up to the next one.
#[derive(Debug, Clone)]
struct Section<'a> {
    m_line: &'a str,
    lines: Vec<&'a str>,
}

impl<'a> Section<'a> {
    fn field(&self, n: usize) -> &'a str {
        self.m_line
            .trim_start_matches("m=")
            .split_whitespace()
            .nth(n)
            .unwrap_or_default()
    }

    fn media(&self) -> &'a str {
        self.field(0)
    }

    fn port(&self) -> &'a str {
        self.field(1)
    }

    fn proto(&self) -> &'a str {
        self.field(2)
    }

    fn rejected(&self) -> bool {
        self.port() == "0"
    }

    fn mid(&self) -> Option<&'a str> {
        self.lines.iter().find_map(|l| l.strip_prefix("a=mid:"))
    }

    fn direction(&self) -> Option<&'a str> {
        self.lines.iter().find_map(|l| match *l {
            "a=sendrecv" | "a=sendonly" | "a=recvonly" | "a=inactive" => Some(&l[2..]),
            _ => None,
        })
    }
}

/// Session-level lines and media sections of an SDP.
fn split(sdp: &str) -> (Vec<&str>, Vec<Section<'_>>) {
    let mut session = Vec::new();
    let mut sections: Vec<Section> = Vec::new();
    for line in sdp.lines().map(|l| l.trim_end_matches('\r')) {
        if line.is_empty() {
            continue;
        }
        if line.starts_with("m=") {
            sections.push(Section {
                m_line: line,
                lines: Vec::new(),
            });
        } else if let Some(section) = sections.last_mut() {
            section.lines.push(line);
        } else {
            session.push(line);
        }
    }
    (session, sections)
}

/// The direction an answer may take (RFC 3264 §6.1), from ours and the offer's.
fn intersect(ours: &str, offered: &str) -> &'static str {
    let (we_send, we_recv) = match ours {
        "sendonly" => (true, false),
        "recvonly" => (false, true),
        "inactive" => (false, false),
        _ => (true, true),
    };
    let (they_send, they_recv) = match offered {
        "sendonly" => (true, false),
        "recvonly" => (false, true),
        "inactive" => (false, false),
        _ => (true, true),
    };
    match (we_send && they_recv, we_recv && they_send) {
        (true, true) => "sendrecv",
        (true, false) => "sendonly",
        (false, true) => "recvonly",
        (false, false) => "inactive",
    }
}

/// A section that rejects `offered`: port 0, its media and profile, its first format (with its
/// `a=rtpmap`), its mid, `inactive`.
fn rejection(offered: &Section) -> String {
    let format = offered.field(3);
    let format = if format.is_empty() { "0" } else { format };
    let mut out = format!(
        "m={} 0 {} {}\r\nc=IN IP4 0.0.0.0\r\n",
        offered.media(),
        offered.proto(),
        format
    );
    if let Some(mid) = offered.mid() {
        out.push_str(&format!("a=mid:{mid}\r\n"));
    }
    if offered.media() != "application" {
        out.push_str("a=inactive\r\n");
        // The format's mapping too: some stacks look every listed payload type up.
        let rtpmap = format!("a=rtpmap:{format} ");
        if let Some(line) = offered.lines.iter().find(|l| l.starts_with(&rtpmap)) {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    out
}

/// `answer` reshaped to mirror `offer` (see the module documentation). Both are SDP texts;
/// the result uses CRLF line ends.
pub fn mirror_offer(offer: &str, answer: &str) -> String {
    let (_, offered) = split(offer);
    let (session, answered) = split(answer);
    let offered_bundle: Vec<&str> = offer
        .lines()
        .find_map(|l| l.trim_end().strip_prefix("a=group:BUNDLE "))
        .map(|g| g.split_whitespace().collect())
        .unwrap_or_default();
    let mut used = vec![false; answered.len()];
    let mut sections = Vec::new();
    let mut accepted_mids = Vec::new();
    for (index, offer_section) in offered.iter().enumerate() {
        // The answer's section for this one: same mid, or same position when mids are absent.
        let found = match offer_section.mid() {
            Some(mid) => answered.iter().position(|a| a.mid() == Some(mid)),
            None => (index < answered.len() && answered[index].mid().is_none()).then_some(index),
        };
        let candidate = found.filter(|&i| !used[i]).map(|i| (i, &answered[i]));
        let Some((i, ours)) = candidate.filter(|(_, a)| {
            !offer_section.rejected() && !a.rejected() && a.media() == offer_section.media()
        }) else {
            if let Some((i, _)) = candidate {
                used[i] = true;
            }
            sections.push(rejection(offer_section));
            continue;
        };
        used[i] = true;
        let mut text = String::new();
        let mut fields: Vec<&str> = ours.m_line.split(' ').collect();
        if fields.len() > 2 {
            // The profile is the offer's (RFC 3264 §6): `UDP/TLS/RTP/SAVPF` stays so, an old
            // `RTP/SAVPF` offer gets `RTP/SAVPF` back.
            fields[2] = offer_section.proto();
        }
        text.push_str(&fields.join(" "));
        text.push_str("\r\n");
        let direction = offer_section.direction().unwrap_or("sendrecv");
        let is_media = ours.media() != "application";
        let mut wrote_direction = false;
        for line in &ours.lines {
            if let Some(d) = line
                .strip_prefix("a=")
                .filter(|d| matches!(*d, "sendrecv" | "sendonly" | "recvonly" | "inactive"))
            {
                text.push_str("a=");
                text.push_str(intersect(d, direction));
                wrote_direction = true;
            } else {
                text.push_str(line);
            }
            text.push_str("\r\n");
        }
        if is_media && !wrote_direction {
            text.push_str("a=");
            text.push_str(intersect("sendrecv", direction));
            text.push_str("\r\n");
        }
        if let Some(mid) = offer_section.mid() {
            accepted_mids.push(mid);
        }
        sections.push(text);
    }
    let bundle: Vec<&str> = offered_bundle
        .iter()
        .filter(|m| accepted_mids.contains(m))
        .copied()
        .collect();
    let mut out = String::new();
    for line in session {
        if line.starts_with("a=group:BUNDLE") {
            if !bundle.is_empty() {
                out.push_str("a=group:BUNDLE ");
                out.push_str(&bundle.join(" "));
                out.push_str("\r\n");
            }
            continue;
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    if !bundle.is_empty() && !out.contains("a=group:BUNDLE") {
        out.push_str("a=group:BUNDLE ");
        out.push_str(&bundle.join(" "));
        out.push_str("\r\n");
    }
    for section in sections {
        out.push_str(&section);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const HEAD: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n";

    fn m_lines(sdp: &str) -> Vec<String> {
        sdp.lines()
            .filter(|l| l.starts_with("m="))
            .map(str::to_string)
            .collect()
    }

    fn mids(sdp: &str) -> Vec<String> {
        sdp.lines()
            .filter_map(|l| l.strip_prefix("a=mid:"))
            .map(str::to_string)
            .collect()
    }

    fn bundle(sdp: &str) -> Option<String> {
        sdp.lines()
            .find_map(|l| l.strip_prefix("a=group:BUNDLE "))
            .map(str::to_string)
    }

    fn section<'a>(sdp: &'a str, mid: &str) -> Vec<&'a str> {
        let mut lines = Vec::new();
        let mut current: Vec<&str> = Vec::new();
        for l in sdp.lines() {
            if l.starts_with("m=") {
                if current.contains(&format!("a=mid:{mid}").as_str()) {
                    lines = current.clone();
                }
                current.clear();
            }
            current.push(l);
        }
        if current.contains(&format!("a=mid:{mid}").as_str()) {
            lines = current;
        }
        lines
    }

    /// The browser's offer of the issue: audio, a video section it rejected itself (port 0,
    /// no direction, outside BUNDLE), a data channel.
    fn offer() -> String {
        format!(
            "{HEAD}a=group:BUNDLE 0 2\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendrecv\r\na=rtpmap:111 opus/48000/2\r\n\
m=video 0 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\na=rtpmap:96 VP8/90000\r\n\
m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=mid:2\r\na=sctp-port:5000\r\n"
        )
    }

    /// What the engine answered: the rejected section left out.
    fn engine_answer() -> String {
        format!(
            "{HEAD}a=group:BUNDLE 0 2\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendrecv\r\na=rtpmap:111 opus/48000/2\r\n\
m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=mid:2\r\na=sctp-port:5000\r\n"
        )
    }

    #[test]
    fn a_rejected_offer_section_stays_in_the_answer_with_port_0() {
        let fixed = mirror_offer(&offer(), &engine_answer());
        assert_eq!(
            m_lines(&fixed),
            vec![
                "m=audio 9 UDP/TLS/RTP/SAVPF 111",
                "m=video 0 UDP/TLS/RTP/SAVPF 96",
                "m=application 9 UDP/DTLS/SCTP webrtc-datachannel"
            ]
        );
        assert_eq!(mids(&fixed), vec!["0", "1", "2"]);
        assert_eq!(bundle(&fixed).as_deref(), Some("0 2"));
        assert!(section(&fixed, "1").contains(&"a=inactive"));
    }

    #[test]
    fn an_answer_that_already_mirrors_is_unchanged() {
        let offer = offer()
            .replace("m=video 0", "m=video 9")
            .replace("BUNDLE 0 2", "BUNDLE 0 1 2");
        let answer = format!(
            "{HEAD}a=group:BUNDLE 0 1 2\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendrecv\r\na=rtpmap:111 opus/48000/2\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\na=sendrecv\r\na=rtpmap:96 VP8/90000\r\n\
m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=mid:2\r\na=sctp-port:5000\r\n"
        );
        assert_eq!(mirror_offer(&offer, &answer), answer);
    }

    #[test]
    fn order_follows_the_offer_and_unknown_answer_sections_are_dropped() {
        let answer = format!(
            "{HEAD}a=group:BUNDLE 2 0 7\r\n\
m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=mid:2\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendrecv\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:7\r\na=sendrecv\r\n"
        );
        let fixed = mirror_offer(&offer(), &answer);
        assert_eq!(mids(&fixed), vec!["0", "1", "2"]);
        assert_eq!(
            bundle(&fixed).as_deref(),
            Some("0 2"),
            "only offered and accepted mids"
        );
    }

    #[test]
    fn directions_are_intersected_with_the_offer() {
        for (offered, ours, expected) in [
            ("sendonly", "sendrecv", "recvonly"),
            ("recvonly", "sendrecv", "sendonly"),
            ("inactive", "sendrecv", "inactive"),
            ("sendrecv", "sendonly", "sendonly"),
            ("recvonly", "recvonly", "inactive"),
        ] {
            let offer =
                offer().replace("a=mid:0\r\na=sendrecv", &format!("a=mid:0\r\na={offered}"));
            let answer =
                engine_answer().replace("a=mid:0\r\na=sendrecv", &format!("a=mid:0\r\na={ours}"));
            let fixed = mirror_offer(&offer, &answer);
            assert!(
                section(&fixed, "0").contains(&format!("a={expected}").as_str()),
                "{offered}/{ours}: {fixed}"
            );
        }
    }

    #[test]
    fn an_accepted_section_the_offerer_rejected_is_rejected_and_profiles_follow_the_offer() {
        let answer = engine_answer().replace(
            "m=application",
            "m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\na=sendrecv\r\nm=application",
        );
        let fixed = mirror_offer(&offer(), &answer);
        assert_eq!(m_lines(&fixed)[1], "m=video 0 UDP/TLS/RTP/SAVPF 96");
        let old = offer().replace("m=audio 9 UDP/TLS/RTP/SAVPF", "m=audio 9 RTP/SAVPF");
        assert_eq!(
            m_lines(&mirror_offer(&old, &engine_answer()))[0],
            "m=audio 9 RTP/SAVPF 111"
        );
    }

    #[test]
    fn sections_without_mids_pair_by_position() {
        let offer =
            format!("{HEAD}m=audio 9 RTP/AVP 0\r\nc=IN IP4 0.0.0.0\r\nm=video 9 RTP/AVP 96\r\n");
        let answer = format!("{HEAD}m=audio 4000 RTP/AVP 0\r\nc=IN IP4 127.0.0.1\r\n");
        let fixed = mirror_offer(&offer, &answer);
        assert_eq!(
            m_lines(&fixed),
            vec!["m=audio 4000 RTP/AVP 0", "m=video 0 RTP/AVP 96"]
        );
    }

    proptest! {
        /// Whatever the engine answers, the result has the offer's sections in its order.
        #[test]
        fn always_one_section_per_offered_one(keep in proptest::collection::vec(any::<bool>(), 3), rejected in proptest::collection::vec(any::<bool>(), 3)) {
            let medias = ["audio", "video", "video"];
            let mut offer = format!("{HEAD}a=group:BUNDLE 0 1 2\r\n");
            let mut answer = format!("{HEAD}a=group:BUNDLE 0 1 2\r\n");
            for i in 0..3 {
                let port = if rejected[i] { 0 } else { 9 };
                offer.push_str(&format!("m={} {port} UDP/TLS/RTP/SAVPF 96\r\na=mid:{i}\r\n", medias[i]));
                if keep[i] {
                    answer.push_str(&format!("m={} 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:{i}\r\na=sendrecv\r\n", medias[i]));
                }
            }
            let fixed = mirror_offer(&offer, &answer);
            prop_assert_eq!(mids(&fixed), vec!["0", "1", "2"]);
            for i in 0..3 {
                let port_zero = m_lines(&fixed)[i].split(' ').nth(1) == Some("0");
                prop_assert_eq!(port_zero, rejected[i] || !keep[i]);
            }
        }
    }
}
