//! The offer of a browser publisher (WHIP, RFC 9725 §4.2, or the `publish` request): which
//! codecs its audio and video sections list, and the same offer narrowed to the one codec per
//! kind the mountpoint carries, so the answer (written by the media engine from the offer)
//! names only that codec and the browser sends it. Retransmission (`rtx`), `red` and `ulpfec`
//! formats go too: a mountpoint relays the media packets only.
//!
//! Only `m=`, `a=rtpmap:`, `a=fmtp:` and `a=rtcp-fb:` lines are read or dropped; every other
//! line (ICE, DTLS, `a=mid`, extensions) passes unchanged.

use crate::media::{Codec, MediaKind};

/// Longest offer accepted, in bytes (a browser's is 4 to 8 kB).
pub const MAX_OFFER_LEN: usize = 64 * 1024;

/// One format of a media section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferedFormat {
    /// Its payload type (0..=127).
    pub pt: u8,
    /// The codec, `None` for one Bifrons does not relay (rtx, red, ulpfec...).
    pub codec: Option<Codec>,
}

/// One audio or video section of an offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferedSection {
    /// Audio or video.
    pub kind: MediaKind,
    /// Whether the port is 0 (a rejected or stopped section).
    pub disabled: bool,
    /// Its formats in the offer's order (the browser's preference).
    pub formats: Vec<OfferedFormat>,
}

impl OfferedSection {
    /// The first format whose codec `want` accepts (RFC 6184 §8.2.2 for H.264: the profile
    /// must match, the level may differ), or with `want` `None` the first relayable codec of
    /// the kind: Opus for audio, VP8 or H.264 (packetization-mode 1) for video.
    pub fn pick(&self, want: Option<&Codec>) -> Option<&OfferedFormat> {
        self.formats.iter().find(|f| match (&f.codec, want) {
            (Some(c), Some(w)) => w.accepts(c),
            (Some(c), None) => relayable(c),
            (None, _) => false,
        })
    }
}

/// Whether a browser publisher may send `codec` into a mountpoint: Opus, VP8 or H.264 in
/// packetization-mode 1 (what WebRTC viewers and the keyframe cache handle).
pub fn relayable(codec: &Codec) -> bool {
    match codec {
        Codec::Opus | Codec::Vp8 => true,
        Codec::H264 {
            packetization_mode, ..
        } => *packetization_mode == 1,
        _ => false,
    }
}

/// Why an offer cannot be published.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OfferError {
    /// Over [`MAX_OFFER_LEN`], or not starting with `v=0`.
    #[error("not an SDP offer")]
    NotSdp,
    /// No enabled audio or video section.
    #[error("the offer has no audio or video")]
    NoMedia,
    /// A line the reader needs does not parse, with the line (cut to 60 characters).
    #[error("malformed SDP line: {0}")]
    Malformed(String),
    /// A section of `kind` lists none of the codecs wanted.
    #[error("the offer's {kind} has no {codec}")]
    NoCodec {
        /// `audio` or `video`.
        kind: &'static str,
        /// What was wanted, e.g. `VP8`.
        codec: &'static str,
    },
}

fn malformed(line: &str) -> OfferError {
    OfferError::Malformed(line.chars().take(60).collect())
}

fn section_kind(line: &str) -> Option<MediaKind> {
    if line.starts_with("m=audio ") {
        Some(MediaKind::Audio)
    } else if line.starts_with("m=video ") {
        Some(MediaKind::Video)
    } else {
        None
    }
}

/// The payload type a `a=rtpmap:`/`a=fmtp:`/`a=rtcp-fb:` line is about, and the rest.
fn attribute_pt<'a>(line: &'a str, prefix: &str) -> Option<Result<(u8, &'a str), OfferError>> {
    let rest = line.strip_prefix(prefix)?;
    let (pt, value) = rest.split_once(' ').unwrap_or((rest, ""));
    if pt == "*" {
        // `a=rtcp-fb:* ...` applies to every format.
        return None;
    }
    Some(
        pt.parse::<u8>()
            .ok()
            .filter(|p| *p < 128)
            .map(|p| (p, value))
            .ok_or_else(|| malformed(line)),
    )
}

/// Reads the audio and video sections of `sdp` (CRLF or LF), in SDP order. Errors: not SDP,
/// an `m=` line without a port or with a payload type over 127, an `a=rtpmap` that does not
/// parse.
pub fn sections(sdp: &str) -> Result<Vec<OfferedSection>, OfferError> {
    if sdp.len() > MAX_OFFER_LEN || !sdp.starts_with("v=0") {
        return Err(OfferError::NotSdp);
    }
    let mut out: Vec<OfferedSection> = Vec::new();
    // Per section: (pt, name, clock) from rtpmap and (pt, fmtp) until the section ends.
    let mut current: Option<(MediaKind, bool, Vec<u8>)> = None;
    let mut rtpmap: Vec<(u8, String, u32)> = Vec::new();
    let mut fmtp: Vec<(u8, String)> = Vec::new();
    let mut finish = |current: Option<(MediaKind, bool, Vec<u8>)>,
                      rtpmap: &mut Vec<(u8, String, u32)>,
                      fmtp: &mut Vec<(u8, String)>| {
        if let Some((kind, disabled, pts)) = current {
            let formats =
                pts.iter()
                    .map(|&pt| {
                        let codec = rtpmap.iter().find(|(p, _, _)| *p == pt).and_then(
                            |(_, name, clock)| {
                                let params = fmtp
                                    .iter()
                                    .find(|(p, _)| *p == pt)
                                    .map_or("", |(_, f)| f.as_str());
                                Codec::from_sdp(name, *clock, params).filter(|c| c.kind() == kind)
                            },
                        );
                        OfferedFormat { pt, codec }
                    })
                    .collect();
            out.push(OfferedSection {
                kind,
                disabled,
                formats,
            });
        }
        rtpmap.clear();
        fmtp.clear();
    };
    let mut in_other = false;
    for line in sdp.lines().map(str::trim_end) {
        if line.starts_with("m=") {
            finish(current.take(), &mut rtpmap, &mut fmtp);
            in_other = true;
            let Some(kind) = section_kind(line) else {
                continue;
            };
            in_other = false;
            let mut fields = line.split_whitespace().skip(1);
            let port = fields
                .next()
                .and_then(|p| p.split('/').next())
                .and_then(|p| p.parse::<u16>().ok())
                .ok_or_else(|| malformed(line))?;
            let _proto = fields.next().ok_or_else(|| malformed(line))?;
            let pts = fields
                .map(|f| f.parse::<u8>().ok().filter(|p| *p < 128))
                .collect::<Option<Vec<u8>>>()
                .ok_or_else(|| malformed(line))?;
            current = Some((kind, port == 0, pts));
            continue;
        }
        if in_other || current.is_none() {
            continue;
        }
        if let Some(parsed) = attribute_pt(line, "a=rtpmap:") {
            let (pt, value) = parsed?;
            let mut parts = value.trim().split('/');
            let name = parts.next().filter(|n| !n.is_empty());
            let clock = parts.next().and_then(|c| c.parse::<u32>().ok());
            let (Some(name), Some(clock)) = (name, clock) else {
                return Err(malformed(line));
            };
            rtpmap.push((pt, name.to_string(), clock));
        } else if let Some(parsed) = attribute_pt(line, "a=fmtp:") {
            let (pt, value) = parsed?;
            fmtp.push((pt, value.trim().to_string()));
        }
    }
    finish(current.take(), &mut rtpmap, &mut fmtp);
    if !out.iter().any(|s| !s.disabled) {
        return Err(OfferError::NoMedia);
    }
    Ok(out)
}

/// `sdp` with each enabled audio/video section listing only the format `keep` picks for its
/// kind (`keep(kind)`: the payload type to keep, `None` to leave the section as it is), and
/// the `a=rtpmap`/`a=fmtp`/`a=rtcp-fb` lines of the other formats removed. Lines end in CRLF.
pub fn narrow(sdp: &str, keep: impl Fn(MediaKind) -> Option<u8>) -> String {
    let mut out = String::with_capacity(sdp.len());
    let mut kept: Option<u8> = None;
    for line in sdp.lines().map(str::trim_end) {
        if line.starts_with("m=") {
            kept = section_kind(line).and_then(&keep);
            if let Some(pt) = kept {
                let head: Vec<&str> = line.split_whitespace().take(3).collect();
                if head.len() == 3 && head[1].split('/').next() != Some("0") {
                    out.push_str(&head.join(" "));
                    out.push(' ');
                    out.push_str(&pt.to_string());
                    out.push_str("\r\n");
                    continue;
                }
                kept = None;
            }
        } else if let Some(pt) = kept {
            let other = ["a=rtpmap:", "a=fmtp:", "a=rtcp-fb:"]
                .iter()
                .filter_map(|p| attribute_pt(line, p))
                .any(|r| r.map_or(true, |(p, _)| p != pt));
            if other {
                continue;
            }
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Chromium's publishing offer, shortened.
    const OFFER: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendonly\r\n\
a=rtpmap:111 opus/48000/2\r\na=rtcp-fb:111 transport-cc\r\na=fmtp:111 minptime=10;useinbandfec=1\r\n\
a=rtpmap:63 red/48000/2\r\na=fmtp:63 111/111\r\na=rtpmap:9 G722/8000\r\na=rtpmap:0 PCMU/8000\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 96 97 102 103 45\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\na=sendonly\r\n\
a=rtpmap:96 VP8/90000\r\na=rtcp-fb:96 nack\r\na=rtcp-fb:96 nack pli\r\n\
a=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=96\r\n\
a=rtpmap:102 H264/90000\r\na=rtcp-fb:102 nack pli\r\n\
a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n\
a=rtpmap:103 rtx/90000\r\na=fmtp:103 apt=102\r\na=rtpmap:45 AV1/90000\r\na=rtcp-fb:* ccm fir\r\n";

    #[test]
    fn reads_the_sections_and_their_codecs() {
        let s = sections(OFFER).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].kind, MediaKind::Audio);
        assert_eq!(s[0].pick(None).unwrap().pt, 111);
        assert_eq!(s[1].pick(None).unwrap().pt, 96);
        let h264 = Codec::h264_baseline();
        assert_eq!(s[1].pick(Some(&h264)).unwrap().pt, 102);
        assert!(s[1].pick(Some(&Codec::Vp9)).is_none());
    }

    #[test]
    fn narrows_each_section_to_one_format() {
        let n = narrow(OFFER, |k| {
            Some(if k == MediaKind::Audio { 111 } else { 102 })
        });
        assert!(n.contains("m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"));
        assert!(n.contains("m=video 9 UDP/TLS/RTP/SAVPF 102\r\n"));
        assert!(!n.contains("VP8") && !n.contains("rtx") && !n.contains("red/"));
        assert!(n.contains("a=fmtp:102 level-asymmetry"));
        assert!(n.contains("a=rtcp-fb:* ccm fir"));
        assert!(n.contains("a=mid:1"));
        let again = sections(&n).unwrap();
        assert_eq!(again[1].formats.len(), 1);
    }

    #[test]
    fn refuses_what_is_not_a_publishable_offer() {
        assert_eq!(sections("hello"), Err(OfferError::NotSdp));
        assert_eq!(
            sections("v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"),
            Err(OfferError::NoMedia)
        );
        assert!(matches!(
            sections("v=0\r\nm=video x UDP 96\r\n"),
            Err(OfferError::Malformed(_))
        ));
        assert!(matches!(
            sections("v=0\r\nm=video 9 UDP 300\r\n"),
            Err(OfferError::Malformed(_))
        ));
        assert!(matches!(
            sections("v=0\r\nm=audio 9 UDP 111\r\na=rtpmap:111 opus\r\n"),
            Err(OfferError::Malformed(_))
        ));
        assert_eq!(
            sections("v=0\r\nm=audio 0 UDP 111\r\n"),
            Err(OfferError::NoMedia)
        );
    }

    proptest::proptest! {
        #[test]
        fn never_panics(text in "v=0\r\n(\\PC{0,40}\r\n){0,12}") {
            if sections(&text).is_ok() {
                let _ = narrow(&text, |_| Some(96));
            }
        }

        #[test]
        fn narrowing_keeps_exactly_the_chosen_format(
            pts in proptest::collection::btree_set(96u8..128, 1..6),
            pick in 0usize..6,
        ) {
            let pts: Vec<u8> = pts.into_iter().collect();
            let chosen = pts[pick % pts.len()];
            let mut sdp = String::from("v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF");
            for p in &pts {
                sdp.push_str(&format!(" {p}"));
            }
            sdp.push_str("\r\na=mid:0\r\n");
            for p in &pts {
                sdp.push_str(&format!("a=rtpmap:{p} VP8/90000\r\na=rtcp-fb:{p} nack pli\r\n"));
            }
            let n = narrow(&sdp, |_| Some(chosen));
            let s = sections(&n).unwrap();
            proptest::prop_assert_eq!(s[0].formats.len(), 1);
            proptest::prop_assert_eq!(s[0].formats[0].pt, chosen);
            proptest::prop_assert_eq!(s[0].formats[0].codec.clone(), Some(Codec::Vp8));
            proptest::prop_assert_eq!(n.matches("a=rtpmap:").count(), 1);
        }
    }
}
