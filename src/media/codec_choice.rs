//! Picks, from a remote offer, the codec a plugin's outgoing track must use: with no
//! preference, the first offered codec the engine supports, so that the answer stays
//! symmetric (the browser sends with it too); with a plan's ordered list, the first codec of
//! the list that the offer has.

use std::collections::HashMap;

use super::plan::Codec;
use super::MediaKind;

/// A codec named in an SDP media section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferedCodec {
    /// `kind/name` with Bifrons' spelling of the name whatever the offer's case, e.g.
    /// `audio/opus`, `video/VP8`, `video/H264`.
    pub mime_type: String,
    /// The `a=rtpmap` clock rate, Hz (48000 for Opus, 8000 for G.711, 90000 for video);
    /// 0 when the line has none.
    pub clock_rate: u32,
    /// The `a=rtpmap` channel count (2 for Opus); 0 when the line has none, as for video.
    pub channels: u16,
    /// The `a=fmtp` parameters of its payload type, e.g. `minptime=10;useinbandfec=1`;
    /// empty when there is no such line.
    pub fmtp: String,
}

const AUDIO: &[&str] = &["opus", "G722", "PCMU", "PCMA"];
const VIDEO: &[&str] = &["VP8", "VP9", "H264", "AV1"];

impl OfferedCodec {
    /// `codec` as an SDP would name it (for a track created before any offer names it).
    pub fn of(codec: &Codec) -> Self {
        Self {
            mime_type: codec.mime_type(),
            clock_rate: codec.clock_rate(),
            channels: codec.channels(),
            fmtp: codec.fmtp(),
        }
    }

    /// The codec in Bifrons' terms.
    pub fn codec(&self) -> Option<Codec> {
        let name = self.mime_type.split_once('/').map_or("", |(_, n)| n);
        Codec::from_sdp(name, self.clock_rate, &self.fmtp)
    }
}

/// The codec to send on `kind`: the first of `wanted` (most preferred first) that the offer
/// has, or with `wanted` empty the offer's own first supported codec. `None` when nothing fits
/// or the offer has no section of `kind`.
pub fn choose_codec(sdp: &str, kind: MediaKind, wanted: &[Codec]) -> Option<OfferedCodec> {
    let offered = supported_codecs(sdp, kind);
    if wanted.is_empty() {
        return offered.into_iter().next();
    }
    wanted.iter().find_map(|w| {
        offered
            .iter()
            .find(|o| o.codec().is_some_and(|c| w.accepts(&c)))
            .cloned()
    })
}

/// Whether `sdp` has a media section of `kind`.
pub fn has_section(sdp: &str, kind: MediaKind) -> bool {
    let prefix = match kind {
        MediaKind::Audio => "m=audio ",
        MediaKind::Video => "m=video ",
    };
    sdp.lines().any(|l| l.starts_with(prefix))
}

/// One payload type of an offer's media section: what the loop engine puts back in its
/// codec preferences, so that an answer leads with the plan's codec under the offer's own
/// payload type (RFC 3264 §6.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferedFormat {
    /// The offer's payload type.
    pub pt: u8,
    /// The codec, as its `a=rtpmap` and `a=fmtp` say.
    pub codec: OfferedCodec,
    /// Its `a=rtcp-fb` values (`nack`, `nack pli`, `transport-cc`...).
    pub feedback: Vec<String>,
}

/// Every payload type of the first media section of `kind` in `sdp` whose encoding Bifrons
/// knows ([`Codec::from_sdp`]: telephone-event included, rtx/red/ulpfec not), in offer order.
pub fn offered_formats(sdp: &str, kind: MediaKind) -> Vec<OfferedFormat> {
    let section_prefix = match kind {
        MediaKind::Audio => "m=audio ",
        MediaKind::Video => "m=video ",
    };
    let mut lines = sdp
        .lines()
        .map(str::trim_end)
        .skip_while(|l| !l.starts_with(section_prefix));
    let Some(media_line) = lines.next() else {
        return Vec::new();
    };
    let order: Vec<&str> = media_line.split_whitespace().skip(3).collect();
    let mut rtpmap: HashMap<&str, (&str, u32, u16)> = HashMap::new();
    let mut fmtp: HashMap<&str, &str> = HashMap::new();
    let mut feedback: HashMap<&str, Vec<String>> = HashMap::new();
    for line in lines.take_while(|l| !l.starts_with("m=")) {
        if let Some(rest) = line.strip_prefix("a=rtpmap:") {
            let Some((pt, desc)) = rest.split_once(' ') else {
                continue;
            };
            let mut parts = desc.split('/');
            let name = parts.next().unwrap_or_default();
            let rate = parts.next().and_then(|r| r.parse().ok()).unwrap_or(0);
            let channels = parts.next().and_then(|c| c.parse().ok()).unwrap_or(0);
            rtpmap.insert(pt, (name, rate, channels));
        } else if let Some(rest) = line.strip_prefix("a=fmtp:") {
            if let Some((pt, params)) = rest.split_once(' ') {
                fmtp.insert(pt, params);
            }
        } else if let Some(rest) = line.strip_prefix("a=rtcp-fb:") {
            if let Some((pt, value)) = rest.split_once(' ') {
                feedback
                    .entry(pt)
                    .or_default()
                    .push(value.trim().to_owned());
            }
        }
    }
    order
        .into_iter()
        .filter_map(|pt| {
            let (name, rate, channels) = *rtpmap.get(pt)?;
            let params = fmtp.get(pt).copied().unwrap_or_default();
            let codec = Codec::from_sdp(name, rate, params)?;
            let name = match codec {
                Codec::TelephoneEvent { .. } => "telephone-event",
                _ => *AUDIO
                    .iter()
                    .chain(VIDEO)
                    .find(|s| s.eq_ignore_ascii_case(name))?,
            };
            Some(OfferedFormat {
                pt: pt.parse().ok()?,
                codec: OfferedCodec {
                    mime_type: format!("{}/{}", kind.as_str(), name),
                    clock_rate: rate,
                    channels,
                    fmtp: params.to_string(),
                },
                feedback: feedback.remove(pt).unwrap_or_default(),
            })
        })
        .collect()
}

/// The supported codecs of the first media section of `kind` in `sdp`, in offer order.
fn supported_codecs(sdp: &str, kind: MediaKind) -> Vec<OfferedCodec> {
    offered_formats(sdp, kind)
        .into_iter()
        .map(|f| f.codec)
        // Only packetization-mode 1 H.264 is forwarded (what browsers send and RTMP gives us).
        .filter(|c| {
            !c.mime_type.ends_with("/telephone-event")
                && (!c.mime_type.ends_with("/H264") || c.fmtp.contains("packetization-mode=1"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 63 111 0\r\na=rtpmap:63 red/48000/2\r\na=rtpmap:111 opus/48000/2\r\n\
a=fmtp:111 minptime=10;useinbandfec=1\r\na=rtpmap:0 PCMU/8000\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 102 96 97\r\na=rtpmap:102 H264/90000\r\na=fmtp:102 profile-level-id=42e01f\r\n\
a=rtpmap:96 VP8/90000\r\na=rtpmap:97 rtx/90000\r\n";

    proptest::proptest! {
        #[test]
        fn offered_formats_never_panic_and_name_only_listed_payload_types(
            pts in proptest::collection::vec(0u8..128, 0..6),
            names in proptest::collection::vec("[A-Za-z0-9-]{0,12}", 0..6),
            noise in ".{0,64}",
        ) {
            let mut sdp = format!(
                "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF {}\r\n",
                pts.iter().map(u8::to_string).collect::<Vec<_>>().join(" ")
            );
            for (pt, name) in pts.iter().zip(&names) {
                sdp.push_str(&format!("a=rtpmap:{pt} {name}/48000/2\r\na=rtcp-fb:{pt} {noise}\r\n"));
            }
            sdp.push_str(&noise);
            for format in offered_formats(&sdp, MediaKind::Audio) {
                proptest::prop_assert!(pts.contains(&format.pt));
                proptest::prop_assert!(format.codec.codec().is_some());
            }
        }
    }

    #[test]
    fn offered_formats_keep_payload_types_feedback_and_telephone_event() {
        let offer = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111 0 126\r\na=rtpmap:111 opus/48000/2\r\n\
a=rtcp-fb:111 transport-cc\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:126 telephone-event/8000\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\na=rtpmap:96 VP8/90000\r\na=rtcp-fb:96 nack pli\r\n\
a=rtpmap:97 rtx/90000\r\n";
        let audio = offered_formats(offer, MediaKind::Audio);
        let pts: Vec<u8> = audio.iter().map(|f| f.pt).collect();
        assert_eq!(pts, vec![111, 0, 126]);
        assert_eq!(audio[0].feedback, vec!["transport-cc".to_owned()]);
        assert_eq!(
            audio[2].codec.codec(),
            Some(Codec::TelephoneEvent { clock_rate: 8000 })
        );
        let video = offered_formats(offer, MediaKind::Video);
        assert_eq!(video.len(), 1, "rtx is not a codec of ours");
        assert_eq!(
            (video[0].pt, video[0].feedback.clone()),
            (96, vec!["nack pli".to_owned()])
        );
        assert!(
            choose_codec(
                offer,
                MediaKind::Audio,
                &[Codec::TelephoneEvent { clock_rate: 8000 }]
            )
            .is_none(),
            "telephone-event is never the codec a track sends"
        );
    }

    #[test]
    fn skips_unsupported_and_keeps_offer_order() {
        let audio = choose_codec(OFFER, MediaKind::Audio, &[]).unwrap();
        assert_eq!(audio.mime_type, "audio/opus");
        assert_eq!((audio.clock_rate, audio.channels), (48000, 2));
        assert_eq!(audio.fmtp, "minptime=10;useinbandfec=1");
        // H.264 without packetization-mode=1 is passed over for VP8.
        let video = choose_codec(OFFER, MediaKind::Video, &[]).unwrap();
        assert_eq!(video.mime_type, "video/VP8");
    }

    #[test]
    fn a_preference_list_picks_its_first_offered_codec() {
        let pcmu = choose_codec(
            OFFER,
            MediaKind::Audio,
            &[Codec::G722, Codec::Pcmu, Codec::Opus],
        )
        .unwrap();
        assert_eq!(pcmu.mime_type, "audio/PCMU");
        assert!(choose_codec(OFFER, MediaKind::Audio, &[Codec::Pcma]).is_none());
        assert_eq!(
            choose_codec(OFFER, MediaKind::Video, &[])
                .unwrap()
                .mime_type,
            "video/VP8"
        );
        assert!(has_section(OFFER, MediaKind::Video));
    }

    #[test]
    fn absent_kind_gives_none() {
        let audio_only = OFFER.split("m=video").next().unwrap();
        assert!(choose_codec(audio_only, MediaKind::Video, &[]).is_none());
        assert!(choose_codec("garbage", MediaKind::Audio, &[]).is_none());
    }
}
