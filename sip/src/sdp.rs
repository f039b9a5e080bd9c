//! SDP (RFC 4566) for plain RTP/AVP audio and the offer/answer rules of RFC 3264 we need:
//! codec choice (Opus, PCMU, PCMA, G.722, telephone-event), ptime, direction and hold.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

/// Why an SDP body was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SdpError {
    /// Not UTF-8 or a line without `x=`.
    #[error("malformed SDP line: {0}")]
    Malformed(String),
    /// No audio stream in the offer/answer.
    #[error("no audio media")]
    NoAudio,
    /// No codec in common.
    #[error("no common codec")]
    NoCommonCodec,
    /// No usable connection address.
    #[error("no connection address")]
    NoConnection,
}

/// Media direction attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    /// `a=sendrecv` (default).
    #[default]
    SendRecv,
    /// `a=sendonly` (we put the peer on hold).
    SendOnly,
    /// `a=recvonly`.
    RecvOnly,
    /// `a=inactive`.
    Inactive,
}

impl Direction {
    fn attr(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    /// The direction to answer with (RFC 3264 §6.1).
    pub fn answer_to(self, local: Direction) -> Direction {
        let (they_send, they_recv) = self.flags();
        let (we_send, we_recv) = local.flags();
        Direction::from_flags(we_send && they_recv, we_recv && they_send)
    }

    /// (sends, receives) from the point of view of the side that wrote it.
    pub fn flags(self) -> (bool, bool) {
        match self {
            Direction::SendRecv => (true, true),
            Direction::SendOnly => (true, false),
            Direction::RecvOnly => (false, true),
            Direction::Inactive => (false, false),
        }
    }

    fn from_flags(send: bool, recv: bool) -> Direction {
        match (send, recv) {
            (true, true) => Direction::SendRecv,
            (true, false) => Direction::SendOnly,
            (false, true) => Direction::RecvOnly,
            (false, false) => Direction::Inactive,
        }
    }
}

/// Audio codecs the endpoint can describe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// Opus, 48 kHz, 2 channels in SDP.
    Opus,
    /// G.711 μ-law, static PT 0.
    Pcmu,
    /// G.711 A-law, static PT 8.
    Pcma,
    /// G.722, static PT 9 (RTP clock 8000 by the RFC 3551 erratum).
    G722,
}

impl Codec {
    /// Encoding name as in `a=rtpmap`.
    pub fn name(self) -> &'static str {
        match self {
            Codec::Opus => "opus",
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
            Codec::G722 => "G722",
        }
    }
    /// RTP clock rate in Hz as in `a=rtpmap` (8000 for G.722 too, RFC 3551 §4.5.2).
    pub fn clock_rate(self) -> u32 {
        match self {
            Codec::Opus => 48_000,
            _ => 8000,
        }
    }
    fn default_pt(self) -> u8 {
        match self {
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
            Codec::G722 => 9,
            Codec::Opus => 111,
        }
    }
    fn from_name(name: &str) -> Option<Codec> {
        [Codec::Opus, Codec::Pcmu, Codec::Pcma, Codec::G722]
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(name))
    }
}

/// One `a=rtpmap` entry (or an implied static payload type).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpMap {
    /// Payload type.
    pub pt: u8,
    /// Encoding name.
    pub name: String,
    /// Clock rate.
    pub rate: u32,
}

/// One `m=` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    /// `audio`, `video`, ...
    pub kind: String,
    /// Transport port (0 = rejected stream).
    pub port: u16,
    /// `RTP/AVP` etc.
    pub proto: String,
    /// Payload types in preference order.
    pub formats: Vec<u8>,
    /// Payload type descriptions.
    pub rtpmaps: Vec<RtpMap>,
    /// Direction attribute.
    pub direction: Direction,
    /// `a=ptime`.
    pub ptime: Option<u32>,
    /// Media-level `c=` address.
    pub connection: Option<IpAddr>,
}

/// A session description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sdp {
    /// `o=` session id.
    pub session_id: u64,
    /// `o=` version, incremented on every re-offer.
    pub version: u64,
    /// Session-level `c=` address.
    pub connection: Option<IpAddr>,
    /// Media sections.
    pub media: Vec<Media>,
}

/// What an offer/answer exchange settled for the audio stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// Codec to send.
    pub codec: Codec,
    /// Its payload type.
    pub pt: u8,
    /// Payload type of telephone-event at the codec's rate, if both sides have it.
    pub dtmf_pt: Option<u8>,
    /// Where to send RTP.
    pub remote: SocketAddr,
    /// Our direction (what we may do).
    pub direction: Direction,
    /// Packet time in ms.
    pub ptime: u32,
}

fn static_map(pt: u8) -> Option<RtpMap> {
    let (name, rate) = match pt {
        0 => ("PCMU", 8000),
        8 => ("PCMA", 8000),
        9 => ("G722", 8000),
        _ => return None,
    };
    Some(RtpMap {
        pt,
        name: name.into(),
        rate,
    })
}

impl Sdp {
    /// Parses an SDP body.
    pub fn parse(body: &[u8]) -> Result<Sdp, SdpError> {
        let text =
            std::str::from_utf8(body).map_err(|_| SdpError::Malformed("not UTF-8".into()))?;
        let mut sdp = Sdp {
            session_id: 0,
            version: 0,
            connection: None,
            media: Vec::new(),
        };
        for raw in text.lines() {
            let line = raw.trim_end_matches('\r');
            if line.is_empty() {
                continue;
            }
            let (k, v) = line
                .split_once('=')
                .ok_or_else(|| SdpError::Malformed(line.chars().take(80).collect()))?;
            match k {
                "o" => {
                    let f: Vec<&str> = v.split_whitespace().collect();
                    sdp.session_id = f.get(1).and_then(|s| s.parse().ok()).unwrap_or(0);
                    sdp.version = f.get(2).and_then(|s| s.parse().ok()).unwrap_or(0);
                }
                "c" => {
                    let addr = v
                        .split_whitespace()
                        .nth(2)
                        .and_then(|a| a.split('/').next()?.parse::<IpAddr>().ok());
                    match sdp.media.last_mut() {
                        Some(m) => m.connection = addr,
                        None => sdp.connection = addr,
                    }
                }
                "m" => {
                    let f: Vec<&str> = v.split_whitespace().collect();
                    if f.len() < 3 {
                        return Err(SdpError::Malformed(line.chars().take(80).collect()));
                    }
                    let port = f[1]
                        .split('/')
                        .next()
                        .and_then(|p| p.parse().ok())
                        .ok_or_else(|| SdpError::Malformed(line.chars().take(80).collect()))?;
                    let formats: Vec<u8> = f[3..].iter().filter_map(|p| p.parse().ok()).collect();
                    let rtpmaps = formats.iter().filter_map(|&p| static_map(p)).collect();
                    sdp.media.push(Media {
                        kind: f[0].into(),
                        port,
                        proto: f[2].into(),
                        formats,
                        rtpmaps,
                        direction: Direction::SendRecv,
                        ptime: None,
                        connection: None,
                    });
                }
                "a" => {
                    let Some(m) = sdp.media.last_mut() else {
                        continue;
                    };
                    let (name, val) = v.split_once(':').unwrap_or((v, ""));
                    match name {
                        "rtpmap" => {
                            let mut it = val.split_whitespace();
                            let pt = it.next().and_then(|p| p.parse::<u8>().ok());
                            let enc = it.next().unwrap_or("");
                            let mut e = enc.split('/');
                            let ename = e.next().unwrap_or("").to_string();
                            let rate = e.next().and_then(|r| r.parse().ok()).unwrap_or(8000);
                            if let Some(pt) = pt {
                                m.rtpmaps.retain(|r| r.pt != pt);
                                m.rtpmaps.push(RtpMap {
                                    pt,
                                    name: ename,
                                    rate,
                                });
                            }
                        }
                        "ptime" => m.ptime = val.trim().parse().ok(),
                        "sendrecv" => m.direction = Direction::SendRecv,
                        "sendonly" => m.direction = Direction::SendOnly,
                        "recvonly" => m.direction = Direction::RecvOnly,
                        "inactive" => m.direction = Direction::Inactive,
                        _ => {}
                    }
                }
                _ => {}
            }
        }
        Ok(sdp)
    }

    /// The first audio section.
    pub fn audio(&self) -> Option<&Media> {
        self.media.iter().find(|m| m.kind == "audio")
    }

    /// Where the audio stream wants RTP (media `c=` over session `c=`).
    pub fn audio_addr(&self) -> Result<SocketAddr, SdpError> {
        let m = self.audio().ok_or(SdpError::NoAudio)?;
        let ip = m
            .connection
            .or(self.connection)
            .ok_or(SdpError::NoConnection)?;
        Ok(SocketAddr::new(ip, m.port))
    }

    /// Builds an audio offer listing `codecs` in preference order, plus telephone-event.
    pub fn offer(
        addr: SocketAddr,
        codecs: &[Codec],
        direction: Direction,
        session_id: u64,
        version: u64,
    ) -> Sdp {
        let mut rtpmaps: Vec<RtpMap> = codecs
            .iter()
            .map(|c| RtpMap {
                pt: c.default_pt(),
                name: c.name().into(),
                rate: c.clock_rate(),
            })
            .collect();
        rtpmaps.push(RtpMap {
            pt: 101,
            name: "telephone-event".into(),
            rate: 8000,
        });
        if codecs.contains(&Codec::Opus) {
            rtpmaps.push(RtpMap {
                pt: 110,
                name: "telephone-event".into(),
                rate: 48_000,
            });
        }
        Sdp {
            session_id,
            version,
            connection: Some(addr.ip()),
            media: vec![Media {
                kind: "audio".into(),
                port: addr.port(),
                proto: "RTP/AVP".into(),
                formats: rtpmaps.iter().map(|r| r.pt).collect(),
                rtpmaps,
                direction,
                ptime: Some(20),
                connection: None,
            }],
        }
    }

    /// Answers `offer` with the first offered codec we support; returns the answer and the result.
    pub fn answer(
        offer: &Sdp,
        ours: &[Codec],
        addr: SocketAddr,
        local_dir: Direction,
        session_id: u64,
    ) -> Result<(Sdp, Negotiated), SdpError> {
        let neg = negotiate(offer, ours, local_dir, true)?;
        let m = offer.audio().ok_or(SdpError::NoAudio)?;
        let mut rtpmaps = vec![m
            .rtpmaps
            .iter()
            .find(|r| r.pt == neg.pt)
            .cloned()
            .ok_or(SdpError::NoCommonCodec)?];
        if let Some(d) = neg.dtmf_pt {
            rtpmaps.push(RtpMap {
                pt: d,
                name: "telephone-event".into(),
                rate: neg.codec.clock_rate(),
            });
        }
        let answer = Sdp {
            session_id,
            version: 1,
            connection: Some(addr.ip()),
            media: vec![Media {
                kind: "audio".into(),
                port: addr.port(),
                proto: m.proto.clone(),
                formats: rtpmaps.iter().map(|r| r.pt).collect(),
                rtpmaps,
                direction: neg.direction,
                ptime: Some(neg.ptime),
                connection: None,
            }],
        };
        Ok((answer, neg))
    }

    /// Serializes to the wire form.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut s = String::new();
        let ip = self
            .connection
            .or_else(|| self.media.first().and_then(|m| m.connection));
        let (fam, addr) = match ip {
            Some(IpAddr::V6(a)) => ("IP6", a.to_string()),
            Some(IpAddr::V4(a)) => ("IP4", a.to_string()),
            None => ("IP4", "0.0.0.0".into()),
        };
        let _ = write!(
            s,
            "v=0\r\no=bifrons {} {} IN {fam} {addr}\r\ns=bifrons\r\nc=IN {fam} {addr}\r\nt=0 0\r\n",
            self.session_id, self.version
        );
        for m in &self.media {
            let fmts: Vec<String> = m.formats.iter().map(|f| f.to_string()).collect();
            let _ = write!(
                s,
                "m={} {} {} {}\r\n",
                m.kind,
                m.port,
                m.proto,
                fmts.join(" ")
            );
            for r in &m.rtpmaps {
                let ch = if r.name.eq_ignore_ascii_case("opus") {
                    "/2"
                } else {
                    ""
                };
                let _ = write!(s, "a=rtpmap:{} {}/{}{ch}\r\n", r.pt, r.name, r.rate);
                if r.name.eq_ignore_ascii_case("telephone-event") {
                    let _ = write!(s, "a=fmtp:{} 0-16\r\n", r.pt);
                }
            }
            if let Some(p) = m.ptime {
                let _ = write!(s, "a=ptime:{p}\r\n");
            }
            let _ = write!(s, "a={}\r\n", m.direction.attr());
        }
        s.into_bytes()
    }
}

/// Picks codec, DTMF payload type, remote address and direction from a remote description.
/// `remote_is_offer` selects the offerer's preference order (RFC 3264 §6.1) either way: the
/// first remote format we support.
pub fn negotiate(
    remote: &Sdp,
    ours: &[Codec],
    local_dir: Direction,
    remote_is_offer: bool,
) -> Result<Negotiated, SdpError> {
    let m = remote.audio().ok_or(SdpError::NoAudio)?;
    let _ = remote_is_offer;
    let (codec, pt) = m
        .formats
        .iter()
        .filter_map(|pt| m.rtpmaps.iter().find(|r| r.pt == *pt))
        .find_map(|r| {
            Codec::from_name(&r.name)
                .filter(|c| ours.contains(c))
                .map(|c| (c, r.pt))
        })
        .ok_or(SdpError::NoCommonCodec)?;
    let dtmf_pt = m
        .rtpmaps
        .iter()
        .find(|r| r.name.eq_ignore_ascii_case("telephone-event") && r.rate == codec.clock_rate())
        .map(|r| r.pt);
    Ok(Negotiated {
        codec,
        pt,
        dtmf_pt,
        remote: remote.audio_addr()?,
        direction: m.direction.answer_to(local_dir),
        ptime: m.ptime.unwrap_or(20).clamp(10, 120),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const BARESIP_OFFER: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\na=sendrecv\r\n";

    #[test]
    fn answers_pcmu_with_telephone_event() {
        let offer = Sdp::parse(BARESIP_OFFER.as_bytes()).unwrap();
        let (ans, neg) = Sdp::answer(
            &offer,
            &[Codec::Opus, Codec::Pcmu],
            "127.0.0.1:5000".parse().unwrap(),
            Direction::SendRecv,
            7,
        )
        .unwrap();
        assert_eq!(
            (neg.codec, neg.pt, neg.dtmf_pt),
            (Codec::Pcmu, 0, Some(101))
        );
        assert_eq!(neg.remote, "127.0.0.1:4000".parse().unwrap());
        let text = String::from_utf8(ans.to_bytes()).unwrap();
        assert!(text.contains("m=audio 5000 RTP/AVP 0 101\r\n"), "{text}");
        let again = Sdp::parse(text.as_bytes()).unwrap();
        assert_eq!(again.audio().unwrap().formats, vec![0, 101]);
    }

    #[test]
    fn hold_offer_is_answered_recvonly() {
        let offer = Sdp::parse(BARESIP_OFFER.replace("sendrecv", "sendonly").as_bytes()).unwrap();
        let neg = negotiate(&offer, &[Codec::Pcmu], Direction::SendRecv, true).unwrap();
        assert_eq!(neg.direction, Direction::RecvOnly);
        let inactive =
            Sdp::parse(BARESIP_OFFER.replace("sendrecv", "inactive").as_bytes()).unwrap();
        assert_eq!(
            negotiate(&inactive, &[Codec::Pcmu], Direction::SendRecv, true)
                .unwrap()
                .direction,
            Direction::Inactive
        );
    }

    #[test]
    fn no_common_codec_is_an_error() {
        let offer = Sdp::parse(BARESIP_OFFER.as_bytes()).unwrap();
        assert_eq!(
            negotiate(&offer, &[Codec::Opus], Direction::SendRecv, true),
            Err(SdpError::NoCommonCodec)
        );
        assert!(matches!(
            Sdp::parse(b"garbage"),
            Err(SdpError::Malformed(_))
        ));
    }

    #[test]
    fn opus_offer_round_trips() {
        let o = Sdp::offer(
            "127.0.0.1:6000".parse().unwrap(),
            &[Codec::Opus, Codec::Pcmu],
            Direction::SendRecv,
            1,
            1,
        );
        let p = Sdp::parse(&o.to_bytes()).unwrap();
        let neg = negotiate(&p, &[Codec::Opus], Direction::SendRecv, true).unwrap();
        assert_eq!(
            (neg.codec, neg.pt, neg.dtmf_pt),
            (Codec::Opus, 111, Some(110))
        );
    }
}
