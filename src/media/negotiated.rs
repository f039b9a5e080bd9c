//! [`Negotiated`]: what a finished offer/answer exchange settled, per stream, read from the
//! answer SDP (RFC 3264 §6: the answer's first format is the one the answerer will send, and
//! the offerer is bound to the answer's list too).

use super::plan::{Codec, Direction};
use super::MediaKind;
use crate::ids::{Mid, Pt};

/// The URI of the client-to-mixer audio level header extension (RFC 6464 §4).
pub const AUDIO_LEVEL_URI: &str = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";

/// One negotiated media section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegotiatedStream {
    /// The section's `a=mid`.
    pub mid: Mid,
    /// Audio or video.
    pub kind: MediaKind,
    /// The codec both sides use first on this stream; `None` when the section was rejected
    /// (port 0) or holds no codec Bifrons knows.
    pub codec: Option<Codec>,
    /// The payload type of `codec` in this session.
    pub pt: Pt,
    /// RTP clock rate of `codec`, Hz.
    pub clock_rate: u32,
    /// Which way media flows, from the gateway's side.
    pub direction: Direction,
    /// The payload type of RFC 4733 `telephone-event` at the codec's clock rate, if negotiated.
    pub dtmf_pt: Option<Pt>,
    /// The RTP header extension id (RFC 8285) of the client-to-mixer audio level (RFC 6464,
    /// `urn:ietf:params:rtp-hdrext:ssrc-audio-level`), when the answer kept it.
    pub audio_level_id: Option<u8>,
}

/// Every media section of a finished negotiation, in SDP order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Negotiated {
    /// The media sections (data channels are not listed).
    pub streams: Vec<NegotiatedStream>,
}

impl Negotiated {
    /// The first stream of `kind`, if negotiated.
    pub fn first(&self, kind: MediaKind) -> Option<&NegotiatedStream> {
        self.streams.iter().find(|s| s.kind == kind)
    }

    /// Reads the outcome from the answer SDP. `answer_is_ours`: the gateway wrote the answer
    /// (its directions are the gateway's); otherwise the peer did and directions are reversed.
    pub fn from_answer(sdp: &str, answer_is_ours: bool) -> Result<Self, String> {
        let mut reader = std::io::Cursor::new(sdp.as_bytes());
        let parsed =
            webrtc::sdp::SessionDescription::unmarshal(&mut reader).map_err(|e| e.to_string())?;
        let mut streams = Vec::new();
        for media in &parsed.media_descriptions {
            let kind = match media.media_name.media.as_str() {
                "audio" => MediaKind::Audio,
                "video" => MediaKind::Video,
                _ => continue,
            };
            fn values<'a>(
                media: &'a webrtc::sdp::MediaDescription,
                key: &'a str,
            ) -> impl Iterator<Item = &'a str> + 'a {
                media
                    .attributes
                    .iter()
                    .filter(move |a| a.key == key)
                    .filter_map(|a| a.value.as_deref())
            }
            let attr = |key: &'static str| values(media, key);
            let mid = Mid(attr("mid").next().unwrap_or_default().to_string());
            let direction = media
                .attributes
                .iter()
                .find_map(|a| Direction::from_sdp(&a.key))
                .unwrap_or_default();
            let direction = if media.media_name.port.value == 0 {
                Direction::Inactive
            } else if answer_is_ours {
                direction
            } else {
                direction.reversed()
            };
            let rtpmap = |pt: &str| -> Option<(String, u32)> {
                attr("rtpmap").find_map(|v| {
                    let (p, desc) = v.split_once(' ')?;
                    (p == pt).then(|| {
                        let mut parts = desc.split('/');
                        let name = parts.next().unwrap_or_default().to_string();
                        let rate = parts.next().and_then(|r| r.parse().ok()).unwrap_or(0);
                        (name, rate)
                    })
                })
            };
            let fmtp = |pt: &str| -> String {
                attr("fmtp")
                    .find_map(|v| {
                        let (p, params) = v.split_once(' ')?;
                        (p == pt).then(|| params.to_string())
                    })
                    .unwrap_or_default()
            };
            let codec_of = |pt: &str| -> Option<(Codec, u32)> {
                let (name, rate) = match rtpmap(pt) {
                    Some(m) => m,
                    // Static payload types need no rtpmap (RFC 3551 §6).
                    None => match pt {
                        "0" => ("PCMU".into(), 8000),
                        "8" => ("PCMA".into(), 8000),
                        "9" => ("G722".into(), 8000),
                        _ => return None,
                    },
                };
                Codec::from_sdp(&name, rate, &fmtp(pt)).map(|c| (c, rate))
            };
            let mut codec = None;
            let mut dtmf = Vec::new();
            for format in &media.media_name.formats {
                match codec_of(format) {
                    Some((Codec::TelephoneEvent { clock_rate }, _)) => {
                        if let Ok(pt) = format.parse() {
                            dtmf.push((Pt(pt), clock_rate));
                        }
                    }
                    Some((c, rate)) if codec.is_none() => {
                        if let Ok(pt) = format.parse() {
                            codec = Some((c, Pt(pt), rate));
                        }
                    }
                    _ => {}
                }
            }
            let (codec, pt, clock_rate) = match codec {
                Some((c, pt, rate)) => (Some(c), pt, rate),
                None => (None, Pt(0), 0),
            };
            let dtmf_pt = dtmf
                .iter()
                .find(|(_, rate)| *rate == clock_rate)
                .or(dtmf.first())
                .map(|(pt, _)| *pt);
            // `a=extmap:<id>[/<direction>] <uri> [<attributes>]` (RFC 8285 §8).
            let audio_level_id = attr("extmap").find_map(|v| {
                let (id, rest) = v.split_once(' ')?;
                let uri = rest.split_whitespace().next()?;
                (uri == AUDIO_LEVEL_URI)
                    .then(|| id.split('/').next()?.parse::<u8>().ok())
                    .flatten()
                    .filter(|id| (1..=14).contains(id))
            });
            streams.push(NegotiatedStream {
                audio_level_id,
                mid,
                kind,
                codec,
                pt,
                clock_rate,
                direction,
                dtmf_pt,
            });
        }
        Ok(Negotiated { streams })
    }
}

/// A remote stream as the media path knows it, handed with every incoming packet: built once
/// when the stream starts, so passing it costs nothing per packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamInfo {
    /// The section's `a=mid`.
    pub mid: Mid,
    /// Audio or video.
    pub kind: MediaKind,
    /// The codec the peer sends, if Bifrons knows it.
    pub codec: Option<Codec>,
    /// Its payload type.
    pub pt: Pt,
    /// Its RTP clock rate, Hz.
    pub clock_rate: u32,
    /// The RFC 6464 audio level extension's id on this stream, when negotiated.
    pub audio_level_id: Option<u8>,
    /// The audio level carried by the packet this is handed with (RFC 6464), when the
    /// extension was negotiated and the packet has it: the one field that changes per packet.
    pub audio_level: Option<super::AudioLevel>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const ANSWER: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
a=group:BUNDLE 0 1 2\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 0 101\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendonly\r\n\
a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 102 96\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\na=recvonly\r\n\
a=rtpmap:102 H264/90000\r\na=fmtp:102 packetization-mode=1;profile-level-id=42e01f\r\n\
a=rtpmap:96 VP8/90000\r\n\
m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=mid:2\r\n";

    #[test]
    fn reads_first_codec_static_types_dtmf_and_directions() {
        let ours = Negotiated::from_answer(ANSWER, true).unwrap();
        assert_eq!(ours.streams.len(), 2, "data channel not listed");
        let audio = ours.first(MediaKind::Audio).unwrap();
        assert_eq!(audio.mid, Mid::from("0"));
        assert_eq!(audio.codec, Some(Codec::Pcmu));
        assert_eq!((audio.pt, audio.clock_rate), (Pt(0), 8000));
        assert_eq!(audio.dtmf_pt, Some(Pt(101)));
        assert_eq!(audio.direction, Direction::SendOnly);
        let video = ours.first(MediaKind::Video).unwrap();
        assert_eq!(video.codec, Some(Codec::h264_baseline()));
        assert_eq!(video.pt, Pt(102));
        // The peer's answer: its recvonly is our sendonly.
        let theirs = Negotiated::from_answer(ANSWER, false).unwrap();
        assert_eq!(
            theirs.first(MediaKind::Video).unwrap().direction,
            Direction::SendOnly
        );
    }

    #[test]
    fn rejected_sections_are_inactive_and_garbage_is_an_error() {
        let rejected = ANSWER.replace("m=video 9", "m=video 0");
        let n = Negotiated::from_answer(&rejected, true).unwrap();
        assert_eq!(
            n.first(MediaKind::Video).unwrap().direction,
            Direction::Inactive
        );
        assert!(Negotiated::from_answer("not sdp", true).is_err());
    }

    #[test]
    fn reads_the_audio_level_extension_id_of_each_section() {
        let with = ANSWER.replace(
            "a=sendonly\r\n",
            "a=sendonly\r\na=extmap:3 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time\r\n\
             a=extmap:1/recvonly urn:ietf:params:rtp-hdrext:ssrc-audio-level vad=on\r\n",
        );
        let n = Negotiated::from_answer(&with, true).unwrap();
        assert_eq!(n.first(MediaKind::Audio).unwrap().audio_level_id, Some(1));
        assert_eq!(n.first(MediaKind::Video).unwrap().audio_level_id, None);
        let bad = with.replace("extmap:1/recvonly", "extmap:15");
        let n = Negotiated::from_answer(&bad, true).unwrap();
        assert_eq!(n.first(MediaKind::Audio).unwrap().audio_level_id, None);
    }
}
