//! Picks, from a remote offer, the codec a plugin's outgoing track must use so that the
//! answer stays symmetric: the first offered codec the engine supports, as the browser will
//! also send with it.

use std::collections::HashMap;

use super::MediaKind;

/// A codec named in an SDP media section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferedCodec {
    pub mime_type: String,
    pub clock_rate: u32,
    pub channels: u16,
    pub fmtp: String,
}

const AUDIO: &[&str] = &["opus", "G722", "PCMU", "PCMA"];
const VIDEO: &[&str] = &["VP8", "VP9", "H264", "AV1"];

/// The first supported codec of the first media section of `kind` in `sdp`, if any.
pub fn first_supported_codec(sdp: &str, kind: MediaKind) -> Option<OfferedCodec> {
    let section_prefix = match kind {
        MediaKind::Audio => "m=audio ",
        MediaKind::Video => "m=video ",
    };
    let supported = match kind {
        MediaKind::Audio => AUDIO,
        MediaKind::Video => VIDEO,
    };
    let mut lines = sdp
        .lines()
        .map(str::trim_end)
        .skip_while(|l| !l.starts_with(section_prefix));
    let media_line = lines.next()?;
    let order: Vec<&str> = media_line.split_whitespace().skip(3).collect();
    let mut rtpmap: HashMap<&str, (&str, u32, u16)> = HashMap::new();
    let mut fmtp: HashMap<&str, &str> = HashMap::new();
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
        }
    }
    order.into_iter().find_map(|pt| {
        let (name, rate, channels) = *rtpmap.get(pt)?;
        let canonical = supported.iter().find(|s| s.eq_ignore_ascii_case(name))?;
        let params = fmtp.get(pt).copied().unwrap_or_default();
        // Only packetization-mode 1 H.264 is forwarded (what browsers send and RTMP gives us).
        if *canonical == "H264" && !params.contains("packetization-mode=1") {
            return None;
        }
        Some(OfferedCodec {
            mime_type: format!("{}/{}", kind.as_str(), canonical),
            clock_rate: rate,
            channels,
            fmtp: params.to_string(),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 63 111 0\r\na=rtpmap:63 red/48000/2\r\na=rtpmap:111 opus/48000/2\r\n\
a=fmtp:111 minptime=10;useinbandfec=1\r\na=rtpmap:0 PCMU/8000\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 102 96 97\r\na=rtpmap:102 H264/90000\r\na=fmtp:102 profile-level-id=42e01f\r\n\
a=rtpmap:96 VP8/90000\r\na=rtpmap:97 rtx/90000\r\n";

    #[test]
    fn skips_unsupported_and_keeps_offer_order() {
        let audio = first_supported_codec(OFFER, MediaKind::Audio).unwrap();
        assert_eq!(audio.mime_type, "audio/opus");
        assert_eq!((audio.clock_rate, audio.channels), (48000, 2));
        assert_eq!(audio.fmtp, "minptime=10;useinbandfec=1");
        // H.264 without packetization-mode=1 is passed over for VP8.
        let video = first_supported_codec(OFFER, MediaKind::Video).unwrap();
        assert_eq!(video.mime_type, "video/VP8");
    }

    #[test]
    fn absent_kind_gives_none() {
        let audio_only = OFFER.split("m=video").next().unwrap();
        assert!(first_supported_codec(audio_only, MediaKind::Video).is_none());
        assert!(first_supported_codec("garbage", MediaKind::Audio).is_none());
    }
}
