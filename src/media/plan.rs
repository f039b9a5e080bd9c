//! What a plugin asks of a negotiation: per stream, the direction and the codecs it accepts,
//! in order of preference ([`AnswerPlan`] for a client's offer, [`OfferPlan`] for a gateway
//! offer). The outcome is a [`super::Negotiated`].

use super::MediaKind;

/// A codec Bifrons can negotiate, with the parameters that make two codecs different.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Codec {
    /// Opus (RFC 7587): 48 kHz clock, 2 channels in SDP whatever is sent.
    Opus,
    /// G.711 μ-law (RFC 3551 §4.5.14), static payload type 0, 8 kHz.
    Pcmu,
    /// G.711 A-law (RFC 3551 §4.5.14), static payload type 8, 8 kHz.
    Pcma,
    /// G.722 (RFC 3551 §4.5.2), static payload type 9; 16 kHz audio on an 8 kHz RTP clock.
    G722,
    /// RFC 4733 DTMF events; `clock_rate` follows the audio codec it travels with (8000 or 48000).
    TelephoneEvent {
        /// RTP clock rate, Hz.
        clock_rate: u32,
    },
    /// VP8 (RFC 7741), 90 kHz.
    Vp8,
    /// VP9, 90 kHz.
    Vp9,
    /// H.264 (RFC 6184), 90 kHz.
    H264 {
        /// `profile-level-id` as six hex digits (e.g. `42e01f`, constrained baseline 3.1);
        /// `None` accepts any profile.
        profile_level_id: Option<String>,
        /// `packetization-mode` (RFC 6184 §6.2); browsers and RTMP need 1 (non-interleaved).
        packetization_mode: u8,
    },
    /// AV1, 90 kHz.
    Av1,
}

impl Codec {
    /// H.264 constrained baseline 3.1, packetization-mode 1: what every browser decodes.
    pub fn h264_baseline() -> Self {
        Codec::H264 {
            profile_level_id: Some("42e01f".into()),
            packetization_mode: 1,
        }
    }

    /// Whether this is an audio or a video codec.
    pub fn kind(&self) -> MediaKind {
        match self {
            Codec::Opus
            | Codec::Pcmu
            | Codec::Pcma
            | Codec::G722
            | Codec::TelephoneEvent { .. } => MediaKind::Audio,
            _ => MediaKind::Video,
        }
    }

    /// The encoding name of `a=rtpmap` (RFC 4566 §6), as browsers write it.
    pub fn encoding_name(&self) -> &'static str {
        match self {
            Codec::Opus => "opus",
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
            Codec::G722 => "G722",
            Codec::TelephoneEvent { .. } => "telephone-event",
            Codec::Vp8 => "VP8",
            Codec::Vp9 => "VP9",
            Codec::H264 { .. } => "H264",
            Codec::Av1 => "AV1",
        }
    }

    /// `audio/opus`, `video/H264`...: the MIME type of the codec.
    pub fn mime_type(&self) -> String {
        format!("{}/{}", self.kind().as_str(), self.encoding_name())
    }

    /// RTP clock rate in Hz.
    pub fn clock_rate(&self) -> u32 {
        match self {
            Codec::Opus => 48_000,
            Codec::Pcmu | Codec::Pcma | Codec::G722 => 8_000,
            Codec::TelephoneEvent { clock_rate } => *clock_rate,
            _ => 90_000,
        }
    }

    /// Channels written in `a=rtpmap` (2 for Opus, RFC 7587 §7; 1 for the other audio codecs,
    /// 0 for video, which has none).
    pub fn channels(&self) -> u16 {
        match self {
            Codec::Opus => 2,
            c if c.kind() == MediaKind::Audio => 1,
            _ => 0,
        }
    }

    /// The static payload type of RFC 3551 §6, if the codec has one.
    pub fn static_pt(&self) -> Option<u8> {
        match self {
            Codec::Pcmu => Some(0),
            Codec::Pcma => Some(8),
            Codec::G722 => Some(9),
            _ => None,
        }
    }

    /// The `a=fmtp` parameters we write when offering this codec.
    pub fn fmtp(&self) -> String {
        match self {
            Codec::Opus => "minptime=10;useinbandfec=1".into(),
            Codec::TelephoneEvent { .. } => "0-16".into(),
            Codec::H264 {
                profile_level_id,
                packetization_mode,
            } => {
                let mut params =
                    format!("level-asymmetry-allowed=1;packetization-mode={packetization_mode}");
                if let Some(p) = profile_level_id {
                    params.push_str(";profile-level-id=");
                    params.push_str(p);
                }
                params
            }
            _ => String::new(),
        }
    }

    /// Reads a codec from its `a=rtpmap` encoding name, clock rate and `a=fmtp` parameters;
    /// `None` for codecs Bifrons does not negotiate (red, rtx, ulpfec...).
    pub fn from_sdp(name: &str, clock_rate: u32, fmtp: &str) -> Option<Self> {
        let codec = match name.to_ascii_lowercase().as_str() {
            "opus" => Codec::Opus,
            "pcmu" => Codec::Pcmu,
            "pcma" => Codec::Pcma,
            "g722" => Codec::G722,
            "telephone-event" => Codec::TelephoneEvent { clock_rate },
            "vp8" => Codec::Vp8,
            "vp9" => Codec::Vp9,
            "av1" => Codec::Av1,
            "h264" => {
                let param = |key: &str| {
                    fmtp.split(';')
                        .filter_map(|kv| kv.trim().split_once('='))
                        .find(|(k, _)| k.eq_ignore_ascii_case(key))
                        .map(|(_, v)| v.trim().to_string())
                };
                Codec::H264 {
                    profile_level_id: param("profile-level-id").map(|p| p.to_ascii_lowercase()),
                    packetization_mode: param("packetization-mode")
                        .and_then(|m| m.parse().ok())
                        .unwrap_or(0),
                }
            }
            _ => return None,
        };
        Some(codec)
    }

    /// Whether an offered codec satisfies this wanted one: same codec and clock; for H.264
    /// the same packetization mode and profile (RFC 6184 §8.2.2: the profile must match,
    /// the level may differ), unless no profile is asked for.
    pub fn accepts(&self, offered: &Codec) -> bool {
        match (self, offered) {
            (
                Codec::H264 {
                    profile_level_id: want,
                    packetization_mode: want_mode,
                },
                Codec::H264 {
                    profile_level_id: got,
                    packetization_mode: got_mode,
                },
            ) => {
                want_mode == got_mode
                    && match (want, got) {
                        (None, _) => true,
                        (Some(w), Some(g)) => w.get(..4) == g.get(..4),
                        (Some(_), None) => false,
                    }
            }
            (a, b) => a == b,
        }
    }
}

/// Which way media flows on a stream, from the gateway's side (RFC 3264 §6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Direction {
    /// Both ways (echo, calls, rooms).
    #[default]
    SendRecv,
    /// Gateway to peer only (streaming viewers, WHEP).
    SendOnly,
    /// Peer to gateway only (WHIP, publishers).
    RecvOnly,
    /// Negotiated but no media.
    Inactive,
}

impl Direction {
    /// The SDP attribute name (`sendrecv`...).
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    /// Reads an SDP direction attribute.
    pub fn from_sdp(attribute: &str) -> Option<Self> {
        Some(match attribute {
            "sendrecv" => Direction::SendRecv,
            "sendonly" => Direction::SendOnly,
            "recvonly" => Direction::RecvOnly,
            "inactive" => Direction::Inactive,
            _ => return None,
        })
    }

    /// The same flow seen from the other side.
    pub fn reversed(self) -> Self {
        match self {
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            d => d,
        }
    }

    /// Whether the gateway sends media in this direction.
    pub fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    /// Whether the gateway receives media in this direction.
    pub fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }
}

/// One stream of a plan: whether it is wanted, which way, and with which codecs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StreamPlan {
    /// Which way media should flow, from the gateway's side. An answer never flows more ways
    /// than the offer allows (RFC 3264 §6.1): a `sendrecv` plan answering a `sendonly` offer
    /// comes out `recvonly`.
    pub direction: Direction,
    /// Codecs accepted, most preferred first. Empty: every codec the engine supports, in
    /// the order of the remote offer (what keeps an echo symmetric).
    pub codecs: Vec<Codec>,
}

impl StreamPlan {
    /// Both ways, with any codec the engine supports.
    pub fn sendrecv() -> Self {
        Self::default()
    }

    /// A plan with `direction` and these codecs in this order.
    pub fn new(direction: Direction, codecs: Vec<Codec>) -> Self {
        Self { direction, codecs }
    }
}

/// How to answer a client's offer, per kind. `None` for a kind the plugin does not send:
/// offered streams of that kind are answered `recvonly` (the gateway still receives them).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AnswerPlan {
    /// Audio: direction and codecs.
    pub audio: Option<StreamPlan>,
    /// Video: direction and codecs.
    pub video: Option<StreamPlan>,
}

impl AnswerPlan {
    /// Sends back on every offered stream, in the offer's preferred codec (the echo test).
    pub fn echo() -> Self {
        Self {
            audio: Some(StreamPlan::sendrecv()),
            video: Some(StreamPlan::sendrecv()),
        }
    }

    /// The plan of `kind`.
    pub fn stream(&self, kind: MediaKind) -> Option<&StreamPlan> {
        match kind {
            MediaKind::Audio => self.audio.as_ref(),
            MediaKind::Video => self.video.as_ref(),
        }
    }
}

/// What a gateway offer carries (streaming `watch`, SIP `incomingcall`): per kind, the
/// direction and codecs to offer (empty codecs: Opus for audio, VP8 for video), and whether
/// to open a data channel.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OfferPlan {
    /// Audio stream to offer, if any.
    pub audio: Option<StreamPlan>,
    /// Video stream to offer, if any.
    pub video: Option<StreamPlan>,
    /// Whether to open the `JanusDataChannel` data channel.
    pub data: bool,
}

impl OfferPlan {
    /// The plan of `kind`.
    pub fn stream(&self, kind: MediaKind) -> Option<&StreamPlan> {
        match kind {
            MediaKind::Audio => self.audio.as_ref(),
            MediaKind::Video => self.video.as_ref(),
        }
    }
}

/// What a gateway offer puts on each kind of `plan`: the stream's direction, its codecs in
/// order (the plan's, or [`default_offer_codecs`]), and the first of them that is not
/// telephone-event, the codec a sending track is created in. Kinds the plan leaves out, or
/// whose codecs are all telephone-event, are skipped.
pub(super) fn offer_streams(plan: &OfferPlan) -> Vec<(MediaKind, Direction, Vec<Codec>, Codec)> {
    MediaKind::ALL
        .into_iter()
        .filter_map(|kind| {
            let stream = plan.stream(kind)?;
            let codecs = if stream.codecs.is_empty() {
                default_offer_codecs(kind)
            } else {
                stream.codecs.clone()
            };
            let first = codecs
                .iter()
                .find(|c| !matches!(c, Codec::TelephoneEvent { .. }))?
                .clone();
            Some((kind, stream.direction, codecs, first))
        })
        .collect()
}

/// Codecs offered for `kind` when a plan names none.
pub(super) fn default_offer_codecs(kind: MediaKind) -> Vec<Codec> {
    match kind {
        MediaKind::Audio => vec![Codec::Opus],
        MediaKind::Video => vec![Codec::Vp8],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdp_names_read_back_with_their_parameters() {
        assert_eq!(Codec::from_sdp("OPUS", 48000, ""), Some(Codec::Opus));
        assert_eq!(
            Codec::from_sdp("telephone-event", 8000, "0-16"),
            Some(Codec::TelephoneEvent { clock_rate: 8000 })
        );
        assert_eq!(Codec::from_sdp("red", 48000, ""), None);
        let h264 = Codec::from_sdp(
            "H264",
            90000,
            "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42E01F",
        )
        .unwrap();
        assert_eq!(h264, Codec::h264_baseline());
        for codec in [Codec::Opus, Codec::Pcmu, Codec::Vp8, Codec::h264_baseline()] {
            let back = Codec::from_sdp(codec.encoding_name(), codec.clock_rate(), &codec.fmtp());
            assert_eq!(back.as_ref(), Some(&codec));
        }
    }

    #[test]
    fn h264_matches_on_profile_and_mode_not_level() {
        let want = Codec::h264_baseline();
        let level_52 = Codec::from_sdp(
            "H264",
            90000,
            "packetization-mode=1;profile-level-id=42e034",
        )
        .unwrap();
        let mode_0 = Codec::from_sdp("H264", 90000, "profile-level-id=42e01f").unwrap();
        let high = Codec::from_sdp(
            "H264",
            90000,
            "packetization-mode=1;profile-level-id=640c1f",
        )
        .unwrap();
        assert!(want.accepts(&level_52));
        assert!(!want.accepts(&mode_0));
        assert!(!want.accepts(&high));
        let any = Codec::H264 {
            profile_level_id: None,
            packetization_mode: 1,
        };
        assert!(any.accepts(&high));
    }

    #[test]
    fn directions_reverse_and_tell_what_flows() {
        assert_eq!(Direction::SendOnly.reversed(), Direction::RecvOnly);
        assert_eq!(Direction::SendRecv.reversed(), Direction::SendRecv);
        assert!(Direction::SendOnly.sends() && !Direction::SendOnly.receives());
        assert_eq!(Direction::from_sdp("recvonly"), Some(Direction::RecvOnly));
    }
}
