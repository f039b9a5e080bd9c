//! SDP (RFC 4566) for RTP/AVP audio and the offer/answer rules of RFC 3264 we need:
//! codec choice (Opus, PCMU, PCMA, G.722, telephone-event), ptime, direction and hold; and
//! SDES-SRTP (RFC 4568): `a=crypto` lines, `RTP/SAVP`, and which keys an exchange settled
//! ([`Sdp::secure`], [`Sdp::answer_srtp`], [`srtp_keys`]).

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

use crate::srtp::{Crypto, CryptoSuite, SrtpKeys, SrtpMode};

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
    /// SDES-SRTP was required (our `sdes_mandatory`, or the peer's `RTP/SAVP`) and the other
    /// side has no usable `a=crypto` line (none, only unsupported suites, MKIs...).
    #[error("SDES-SRTP required but no usable crypto attribute")]
    SrtpRequired,
    /// The answer's `a=crypto` names no line of our offer (another tag or suite).
    #[error("crypto attribute answers no offered line")]
    CryptoMismatch,
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
    /// Usable `a=crypto` lines (RFC 4568), in order; their keys never print (`Debug`).
    pub crypto: Vec<Crypto>,
    /// `a=crypto` lines present but refused by [`Crypto::parse`] (malformed, MKI, another
    /// suite...): they still tell that the writer wanted SRTP.
    pub crypto_refused: u32,
}

impl Media {
    /// Whether the proto is a secure RTP profile (`RTP/SAVP`, `RTP/SAVPF`).
    pub fn is_savp(&self) -> bool {
        self.proto.to_ascii_uppercase().contains("SAVP")
    }

    /// The SDES-SRTP the writer of this section asks for: `Mandatory` with `RTP/SAVP`,
    /// `Optional` for `RTP/AVP` with crypto lines (Janus' `srtp` of `incomingcall`).
    pub fn srtp_mode(&self) -> Option<SrtpMode> {
        if self.is_savp() {
            Some(SrtpMode::Mandatory)
        } else if !self.crypto.is_empty() || self.crypto_refused > 0 {
            Some(SrtpMode::Optional)
        } else {
            None
        }
    }
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
    /// Payload type of telephone-event, if both sides have it: at the codec's rate when
    /// offered so, else at another rate (phones often offer only `telephone-event/8000`
    /// beside Opus).
    pub dtmf_pt: Option<u8>,
    /// Clock rate of that telephone-event, Hz (its `duration` field counts in it).
    pub dtmf_rate: u32,
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
                        crypto: Vec::new(),
                        crypto_refused: 0,
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
                        "crypto" => match Crypto::parse(val) {
                            Ok(c) => m.crypto.push(c),
                            Err(e) => {
                                tracing::debug!(error = %e, "a=crypto line not usable");
                                m.crypto_refused = m.crypto_refused.saturating_add(1);
                            }
                        },
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

    /// The first audio section, to change it.
    ///
    /// Panics: never for an SDP with audio; use [`Sdp::audio`] first otherwise.
    #[cfg(test)]
    fn audio_mut(&mut self) -> &mut Media {
        self.media
            .iter_mut()
            .find(|m| m.kind == "audio")
            .expect("audio")
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
                crypto: Vec::new(),
                crypto_refused: 0,
            }],
        }
    }

    /// Adds SDES-SRTP to an offer: one `a=crypto` line per suite of `suites` (tags 1, 2...;
    /// [`CryptoSuite::ALL`] unless the caller picked one, Janus' `srtp_profile`), each with a
    /// fresh key, on every audio section; `RTP/SAVP` for [`SrtpMode::Mandatory`], `RTP/AVP`
    /// with the crypto lines for [`SrtpMode::Optional`] (as Janus offers it). Keep the
    /// offer: [`srtp_keys`] needs our keys when the answer comes.
    pub fn secure(&mut self, mode: SrtpMode, suites: &[CryptoSuite]) {
        for m in self.media.iter_mut().filter(|m| m.kind == "audio") {
            m.proto = match mode {
                SrtpMode::Mandatory => "RTP/SAVP".into(),
                SrtpMode::Optional => "RTP/AVP".into(),
            };
            m.crypto = suites
                .iter()
                .zip(1..)
                .map(|(suite, tag)| Crypto::generate(tag, *suite))
                .collect();
        }
    }

    /// Keys an answer (built by [`Sdp::answer`] for `offer`) for SDES-SRTP: when the offer's
    /// audio has a usable `a=crypto` line, the answer gets the first one's tag and suite with
    /// our own fresh key (RFC 4568 §7.1.2) and the result names both keys; SRTP is answered
    /// whenever offered, as Janus does. `want` is the answerer's own demand (`accept`'s
    /// `srtp`).
    ///
    /// Errors: [`SdpError::SrtpRequired`] when `want` is `Mandatory` or the offer is
    /// `RTP/SAVP` but no offered line is usable (answer 488, or 452 for `accept`).
    pub fn answer_srtp(
        answer: &mut Sdp,
        offer: &Sdp,
        want: Option<SrtpMode>,
    ) -> Result<Option<SrtpKeys>, SdpError> {
        let theirs = offer.audio().ok_or(SdpError::NoAudio)?;
        let mine = answer
            .media
            .iter_mut()
            .find(|m| m.kind == "audio")
            .ok_or(SdpError::NoAudio)?;
        let Some(offered) = theirs.crypto.first() else {
            if want == Some(SrtpMode::Mandatory) || theirs.is_savp() {
                return Err(SdpError::SrtpRequired);
            }
            mine.crypto.clear();
            return Ok(None);
        };
        let ours = Crypto::generate(offered.tag, offered.suite);
        let keys = SrtpKeys {
            suite: offered.suite,
            local: ours.key.clone(),
            remote: offered.key.clone(),
        };
        mine.proto = theirs.proto.clone();
        mine.crypto = vec![ours];
        Ok(Some(keys))
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
                rate: neg.dtmf_rate,
            });
        }
        let audio = Media {
            kind: "audio".into(),
            port: addr.port(),
            proto: m.proto.clone(),
            formats: rtpmaps.iter().map(|r| r.pt).collect(),
            rtpmaps,
            direction: neg.direction,
            ptime: Some(neg.ptime),
            connection: None,
            crypto: Vec::new(),
            crypto_refused: 0,
        };
        // One m-line per offered one, in order (RFC 3264 §6): the audio we take, every other
        // stream (video from a PBX, a second audio) rejected with port 0 and its first format.
        let mut audio = Some(audio);
        let media = offer
            .media
            .iter()
            .map(|o| {
                if std::ptr::eq(o, m) {
                    if let Some(a) = audio.take() {
                        return a;
                    }
                }
                Media {
                    kind: o.kind.clone(),
                    port: 0,
                    proto: o.proto.clone(),
                    formats: o.formats.iter().take(1).copied().collect(),
                    rtpmaps: Vec::new(),
                    direction: Direction::Inactive,
                    ptime: None,
                    connection: None,
                    crypto: Vec::new(),
                    crypto_refused: 0,
                }
            })
            .collect();
        let answer = Sdp {
            session_id,
            version: 1,
            connection: Some(addr.ip()),
            media,
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
            for c in &m.crypto {
                let _ = write!(s, "a=crypto:{}\r\n", c.to_value());
            }
            let _ = write!(s, "a={}\r\n", m.direction.attr());
        }
        s.into_bytes()
    }
}

/// The SDES-SRTP keys our `local` description (an offer made with [`Sdp::secure`], or the
/// answer [`Sdp::answer_srtp`] keyed) and the peer's `remote` one settle: the remote's first
/// `a=crypto` line names the key it sends with, and ours is the line of the same tag and
/// suite (the answer to our offer), else of the same suite (a re-offer from the peer, which
/// [`Sdp::reanswer_srtp`] answers with that key again, RFC 4568 §7.1.4). `Ok(None)`: plain RTP
/// (a plain local description, or an optional one met without crypto).
///
/// Errors: [`SdpError::SrtpRequired`] for our `RTP/SAVP` met without a usable line;
/// [`SdpError::CryptoMismatch`] for a suite we did not offer.
pub fn srtp_keys(local: &Sdp, remote: &Sdp) -> Result<Option<SrtpKeys>, SdpError> {
    let ours = local.audio().ok_or(SdpError::NoAudio)?;
    let theirs = remote.audio().ok_or(SdpError::NoAudio)?;
    if ours.crypto.is_empty() {
        return Ok(None); // a plain description: crypto from the peer means nothing
    }
    let Some(picked) = theirs.crypto.first() else {
        if ours.is_savp() {
            return Err(SdpError::SrtpRequired);
        }
        return Ok(None);
    };
    let line = ours
        .crypto
        .iter()
        .find(|c| c.tag == picked.tag && c.suite == picked.suite)
        .or_else(|| ours.crypto.iter().find(|c| c.suite == picked.suite))
        .ok_or(SdpError::CryptoMismatch)?;
    Ok(Some(SrtpKeys {
        suite: line.suite,
        local: line.key.clone(),
        remote: picked.key.clone(),
    }))
}

impl Sdp {
    /// Keys our answer to an in-dialog offer (a re-INVITE) of a call whose last local
    /// description was `previous`: when `previous` carried crypto, the answer repeats our key
    /// for the suite the offer's first usable line names, under that line's tag (RFC 4568
    /// §7.1.4), so media keeps flowing under the same keys ([`srtp_keys`] derives the same).
    /// A plain previous description leaves the answer as it is.
    ///
    /// Errors: as [`srtp_keys`] (the caller answers 488).
    pub fn reanswer_srtp(
        answer: &mut Sdp,
        offer: &Sdp,
        previous: &Sdp,
    ) -> Result<Option<SrtpKeys>, SdpError> {
        let keys = srtp_keys(previous, offer)?;
        let theirs = offer.audio().ok_or(SdpError::NoAudio)?;
        let mine = answer
            .media
            .iter_mut()
            .find(|m| m.kind == "audio")
            .ok_or(SdpError::NoAudio)?;
        mine.crypto = match (&keys, theirs.crypto.first()) {
            (Some(k), Some(line)) => vec![Crypto {
                tag: line.tag,
                suite: k.suite,
                key: k.local.clone(),
                lifetime: None,
            }],
            _ => Vec::new(),
        };
        Ok(keys)
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
    let events = || {
        m.rtpmaps
            .iter()
            .filter(|r| r.name.eq_ignore_ascii_case("telephone-event"))
    };
    let dtmf = events()
        .find(|r| r.rate == codec.clock_rate())
        .or_else(|| events().next());
    Ok(Negotiated {
        codec,
        pt,
        dtmf_pt: dtmf.map(|r| r.pt),
        dtmf_rate: dtmf.map_or(codec.clock_rate(), |r| r.rate),
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
    fn an_opus_offer_with_an_8_khz_telephone_event_keeps_rtp_dtmf() {
        // baresip with Opus only: telephone-event at 8 kHz, not at Opus' 48 kHz.
        let text = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 96 101\r\na=rtpmap:96 opus/48000/2\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n";
        let offer = Sdp::parse(text.as_bytes()).unwrap();
        let (ans, neg) = Sdp::answer(
            &offer,
            &[Codec::Pcmu, Codec::Opus],
            "127.0.0.1:5000".parse().unwrap(),
            Direction::SendRecv,
            7,
        )
        .unwrap();
        assert_eq!(
            (neg.codec, neg.dtmf_pt, neg.dtmf_rate),
            (Codec::Opus, Some(101), 8000)
        );
        let answer = String::from_utf8(ans.to_bytes()).unwrap();
        assert!(
            answer.contains("a=rtpmap:101 telephone-event/8000\r\n"),
            "{answer}"
        );
        // Offered at both rates: the codec's own wins.
        let both = text.replace(
            "m=audio 4000 RTP/AVP 96 101\r\n",
            "m=audio 4000 RTP/AVP 96 101 102\r\na=rtpmap:102 telephone-event/48000\r\n",
        );
        let (_, neg) = Sdp::answer(
            &Sdp::parse(both.as_bytes()).unwrap(),
            &[Codec::Opus],
            "127.0.0.1:5000".parse().unwrap(),
            Direction::SendRecv,
            7,
        )
        .unwrap();
        assert_eq!((neg.dtmf_pt, neg.dtmf_rate), (Some(102), 48000));
    }

    #[test]
    fn a_video_line_in_the_offer_is_answered_with_port_0_in_its_place() {
        let video = "m=video 4002 RTP/AVP 96 97\r\na=rtpmap:96 H264/90000\r\n";
        let after = format!("{BARESIP_OFFER}{video}");
        let before = BARESIP_OFFER.replacen("m=audio", &format!("{video}m=audio"), 1);
        for (text, want) in [
            (after, vec![("audio", 5000), ("video", 0)]),
            (before, vec![("video", 0), ("audio", 5000)]),
        ] {
            let offer = Sdp::parse(text.as_bytes()).unwrap();
            let (ans, neg) = Sdp::answer(
                &offer,
                &[Codec::Pcma],
                "127.0.0.1:5000".parse().unwrap(),
                Direction::SendRecv,
                7,
            )
            .unwrap();
            assert_eq!(neg.codec, Codec::Pcma);
            let kinds: Vec<_> = ans
                .media
                .iter()
                .map(|m| (m.kind.as_str(), m.port))
                .collect();
            assert_eq!(kinds, want);
            let wire = String::from_utf8(ans.to_bytes()).unwrap();
            assert!(wire.contains("m=video 0 RTP/AVP 96\r\n"), "{wire}");
            let again = Sdp::parse(wire.as_bytes()).unwrap();
            assert_eq!(again.audio().unwrap().port, 5000);
        }
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

    fn offer(mode: Option<SrtpMode>) -> Sdp {
        let mut o = Sdp::offer(
            "127.0.0.1:6000".parse().unwrap(),
            &[Codec::Pcmu],
            Direction::SendRecv,
            1,
            1,
        );
        if let Some(mode) = mode {
            o.secure(mode, &CryptoSuite::ALL);
        }
        Sdp::parse(&o.to_bytes()).unwrap()
    }

    fn answer_to(offer: &Sdp, want: Option<SrtpMode>) -> Result<(Sdp, Option<SrtpKeys>), SdpError> {
        let (mut ans, _) = Sdp::answer(
            offer,
            &[Codec::Pcmu],
            "127.0.0.1:7000".parse().unwrap(),
            Direction::SendRecv,
            2,
        )?;
        let keys = Sdp::answer_srtp(&mut ans, offer, want)?;
        Ok((Sdp::parse(&ans.to_bytes()).unwrap(), keys))
    }

    #[test]
    fn sdes_offer_and_answer_settle_crossed_keys() {
        for mode in [SrtpMode::Mandatory, SrtpMode::Optional] {
            let o = offer(Some(mode));
            let text = String::from_utf8(o.to_bytes()).unwrap();
            let proto = if mode == SrtpMode::Mandatory {
                "RTP/SAVP"
            } else {
                "RTP/AVP"
            };
            assert!(
                text.contains(&format!("m=audio 6000 {proto} 0 101")),
                "{text}"
            );
            assert!(
                text.contains("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"),
                "{text}"
            );
            assert!(
                text.contains("a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:"),
                "{text}"
            );
            assert_eq!(o.audio().unwrap().srtp_mode(), Some(mode));
            let (ans, answered) = answer_to(&o, None).unwrap();
            let answered = answered.expect("SRTP answered whenever offered");
            let m = ans.audio().unwrap();
            assert_eq!((m.proto.as_str(), m.crypto.len()), (proto, 1));
            assert_eq!(m.crypto[0].tag, 1);
            let settled = srtp_keys(&o, &ans).unwrap().unwrap();
            assert_eq!(settled.suite, CryptoSuite::AesCm128HmacSha1_80);
            assert_eq!(
                settled.local, answered.remote,
                "our key is what they decrypt with"
            );
            assert_eq!(settled.remote, answered.local);
            assert_ne!(settled.local, settled.remote);
        }
    }

    #[test]
    fn sdes_refusals() {
        // Our mandatory offer answered in plain RTP: the call cannot go on.
        let o = offer(Some(SrtpMode::Mandatory));
        let plain_answer = Sdp::parse(BARESIP_OFFER.as_bytes()).unwrap();
        assert_eq!(srtp_keys(&o, &plain_answer), Err(SdpError::SrtpRequired));
        // Optional: plain RTP is fine.
        let o = offer(Some(SrtpMode::Optional));
        assert_eq!(srtp_keys(&o, &plain_answer), Ok(None));
        // An answer naming a suite we never offered.
        let mut ours = o.clone();
        ours.audio_mut().crypto.truncate(1);
        let mut odd = offer(Some(SrtpMode::Optional));
        odd.audio_mut().crypto.remove(0);
        assert_eq!(srtp_keys(&ours, &odd), Err(SdpError::CryptoMismatch));
        // A plain offer: `sdes_mandatory` answers cannot be made; others stay plain.
        let plain = offer(None);
        assert_eq!(plain.audio().unwrap().srtp_mode(), None);
        assert_eq!(
            answer_to(&plain, Some(SrtpMode::Mandatory)).unwrap_err(),
            SdpError::SrtpRequired
        );
        assert_eq!(answer_to(&plain, Some(SrtpMode::Optional)).unwrap().1, None);
        // RTP/SAVP with only lines we cannot use (an MKI, AES-256): 488.
        let text = BARESIP_OFFER.replace("RTP/AVP", "RTP/SAVP").replace(
            "a=sendrecv\r\n",
            "a=sendrecv\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WnD7c1ksDGs+dIefCEo8omPg4uO8DYIinNGL5yxQ|2^20|1:4\r\na=crypto:2 AES_256_CM_HMAC_SHA1_80 inline:x\r\n",
        );
        let savp = Sdp::parse(text.as_bytes()).unwrap();
        let m = savp.audio().unwrap();
        assert_eq!((m.crypto.len(), m.crypto_refused), (0, 2));
        assert_eq!(m.srtp_mode(), Some(SrtpMode::Mandatory));
        assert_eq!(answer_to(&savp, None).unwrap_err(), SdpError::SrtpRequired);
        // The same lines in RTP/AVP: optional, answered in plain RTP.
        let avp = Sdp::parse(text.replace("RTP/SAVP", "RTP/AVP").as_bytes()).unwrap();
        assert_eq!(avp.audio().unwrap().srtp_mode(), Some(SrtpMode::Optional));
        assert_eq!(answer_to(&avp, None).unwrap().1, None);
    }

    /// A re-INVITE from the peer of an SRTP call: its new offer (new tag, new key) is
    /// answered with our key of the first exchange, and both sides derive the same keys.
    #[test]
    fn peer_reoffer_keeps_our_key_and_takes_theirs() {
        let first_offer = offer(Some(SrtpMode::Mandatory)); // the peer's
        let (first_answer, first) = answer_to(&first_offer, None).unwrap(); // ours
        let first = first.unwrap();
        let mut reoffer = offer(Some(SrtpMode::Mandatory)); // fresh keys, tags 1 and 2
        reoffer.audio_mut().crypto.reverse(); // the _32 line first now, tag 2
        let reoffer = Sdp::parse(&reoffer.to_bytes()).unwrap();
        let (mut reanswer, _) = Sdp::answer(
            &reoffer,
            &[Codec::Pcmu],
            "127.0.0.1:7000".parse().unwrap(),
            Direction::SendRecv,
            2,
        )
        .unwrap();
        // Our previous answer has only the _80 suite: the re-offer's _32 line is not ours.
        assert_eq!(
            Sdp::reanswer_srtp(&mut reanswer, &reoffer, &first_answer),
            Err(SdpError::CryptoMismatch)
        );
        // The same suite as before under another tag: our key again, their new key.
        let mut reoffer = offer(Some(SrtpMode::Mandatory));
        reoffer.audio_mut().crypto.truncate(1);
        reoffer.audio_mut().crypto[0].tag = 7;
        let keys = Sdp::reanswer_srtp(&mut reanswer, &reoffer, &first_answer)
            .unwrap()
            .unwrap();
        assert_eq!(keys.local, first.local, "our key stays");
        assert_ne!(keys.remote, first.remote, "theirs is the new one");
        let line = &reanswer.audio().unwrap().crypto;
        assert_eq!((line.len(), line[0].tag), (1, 7));
        assert_eq!(srtp_keys(&first_answer, &reoffer).unwrap().unwrap(), keys);
        // A plain call stays plain.
        let plain = offer(None);
        assert_eq!(Sdp::reanswer_srtp(&mut reanswer, &plain, &plain), Ok(None));
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
