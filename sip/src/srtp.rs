//! SDES-SRTP: the `a=crypto` attribute of SDP security descriptions (RFC 4568 §9.1) and the
//! SRTP/SRTCP transforms (RFC 3711) of one media stream.
//!
//! Suites: `AES_CM_128_HMAC_SHA1_80` and `AES_CM_128_HMAC_SHA1_32` (RFC 4568 §6.2), a
//! 16-byte master key and a 14-byte master salt each, key derivation rate 0. Lines with an
//! MKI, several keys, or session parameters that change the transform (`UNENCRYPTED_SRTP`,
//! `FEC_ORDER`, a non-zero `KDR`...) are refused by the parser ([`CryptoError`]): the
//! negotiation skips them, and a stream left with none is refused (488, as Janus does).
//!
//! Master keys come from the operating system's CSPRNG and never appear in `Debug` output or
//! logs ([`MasterKey`] prints as `MasterKey(..)`).

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use rand::RngCore as _;
use webrtc_srtp::context::Context;
use webrtc_srtp::option::{srtcp_no_replay_protection, srtp_no_replay_protection};
use webrtc_srtp::protection_profile::ProtectionProfile;

/// Master key length of the AES-128 suites, bytes (RFC 3711 §8.2).
pub const KEY_LEN: usize = 16;
/// Master salt length, bytes (RFC 3711 §8.2).
pub const SALT_LEN: usize = 14;
/// SRTP and SRTCP replay window, packets (RFC 3711 §3.3.2: at least 64).
const REPLAY_WINDOW: u64 = 128;
/// SRTCP: E flag and 31-bit index, then the 80-bit tag, after the RTCP packet (§3.4).
const SRTCP_TRAILER: usize = 4 + 10;

/// Whether a call protects its media with SDES-SRTP, as Janus' `srtp` field of `call` and
/// `accept` (and of `incomingcall`) says it. Ordered: `Optional < Mandatory`, so the
/// stronger of two demands is their `max` (`None`, no demand, is below both).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SrtpMode {
    /// `sdes_optional`: offer `RTP/AVP` with crypto lines; a peer without SRTP still gets
    /// plain RTP.
    Optional,
    /// `sdes_mandatory`: offer `RTP/SAVP`; a peer without SRTP fails the call (488).
    Mandatory,
}

impl SrtpMode {
    /// Parses Janus' name (`sdes_optional`, `sdes_mandatory`).
    pub fn from_janus(name: &str) -> Option<Self> {
        match name {
            "sdes_optional" => Some(SrtpMode::Optional),
            "sdes_mandatory" => Some(SrtpMode::Mandatory),
            _ => None,
        }
    }

    /// Janus' name of the mode.
    pub fn janus_name(self) -> &'static str {
        match self {
            SrtpMode::Optional => "sdes_optional",
            SrtpMode::Mandatory => "sdes_mandatory",
        }
    }
}

/// The crypto suites we speak (RFC 4568 §6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CryptoSuite {
    /// AES-128 counter mode, HMAC-SHA1 with an 80-bit tag.
    AesCm128HmacSha1_80,
    /// AES-128 counter mode, HMAC-SHA1 with a 32-bit SRTP tag (80 bits for SRTCP).
    AesCm128HmacSha1_32,
}

impl CryptoSuite {
    /// Every suite, in our order of preference.
    pub const ALL: [CryptoSuite; 2] = [
        CryptoSuite::AesCm128HmacSha1_80,
        CryptoSuite::AesCm128HmacSha1_32,
    ];

    /// The name in `a=crypto`.
    pub fn name(self) -> &'static str {
        match self {
            CryptoSuite::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            CryptoSuite::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
        }
    }

    /// The suite of a name (case-insensitive, as some stacks write it lower case).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|s| s.name().eq_ignore_ascii_case(name))
    }

    fn profile(self) -> ProtectionProfile {
        match self {
            CryptoSuite::AesCm128HmacSha1_80 => ProtectionProfile::Aes128CmHmacSha1_80,
            CryptoSuite::AesCm128HmacSha1_32 => ProtectionProfile::Aes128CmHmacSha1_32,
        }
    }
}

/// A master key and salt (`key||salt`, 30 bytes). Its `Debug` output hides the bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct MasterKey([u8; KEY_LEN + SALT_LEN]);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

impl MasterKey {
    /// A fresh key and salt from the operating system's CSPRNG.
    pub fn generate() -> Self {
        let mut b = [0u8; KEY_LEN + SALT_LEN];
        rand::rngs::OsRng.fill_bytes(&mut b);
        Self(b)
    }

    /// A key from its 30 bytes (`key||salt`).
    pub fn from_bytes(bytes: [u8; KEY_LEN + SALT_LEN]) -> Self {
        Self(bytes)
    }

    fn key(&self) -> &[u8] {
        &self.0[..KEY_LEN]
    }

    fn salt(&self) -> &[u8] {
        &self.0[KEY_LEN..]
    }
}

/// Why an `a=crypto` value cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// The value does not follow RFC 4568 §9.1 (what is wrong, in words).
    #[error("malformed crypto attribute: {0}")]
    Malformed(&'static str),
    /// A suite we do not implement (AES-256, GCM, F8...).
    #[error("unsupported crypto suite {0}")]
    UnsupportedSuite(String),
    /// A key that is not 30 bytes once decoded.
    #[error("key||salt of {0} bytes, 30 expected")]
    KeyLength(usize),
    /// An MKI (we send and expect packets without one).
    #[error("MKI not supported")]
    Mki,
    /// More than one `inline:` key (only meaningful with MKIs).
    #[error("several keys not supported")]
    SeveralKeys,
    /// A lifetime above 2^48 packets (RFC 3711 §9.2) or not a number.
    #[error("bad key lifetime")]
    Lifetime,
    /// A session parameter that changes the transform (`UNENCRYPTED_SRTP`, `KDR=n`...).
    #[error("unsupported session parameter {0}")]
    SessionParam(String),
}

/// One `a=crypto` line: `<tag> <suite> inline:<base64 key||salt>[|<lifetime>]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crypto {
    /// Tag (1 to 9 digits): the answer names the offer's line it picked by it.
    pub tag: u32,
    /// Crypto suite.
    pub suite: CryptoSuite,
    /// Master key and salt of the side that wrote the line (what it sends with).
    pub key: MasterKey,
    /// Key lifetime in packets, if given (`2^31` or `2147483648`); accepted, not enforced
    /// (a call ends long before 2^31 packets, the usual value).
    pub lifetime: Option<u64>,
}

impl Crypto {
    /// A line with a fresh key (see [`MasterKey::generate`]).
    pub fn generate(tag: u32, suite: CryptoSuite) -> Self {
        Self {
            tag,
            suite,
            key: MasterKey::generate(),
            lifetime: None,
        }
    }

    /// Parses the value of an `a=crypto:` attribute (after the colon), RFC 4568 §9.1.
    ///
    /// Errors: [`CryptoError`] for anything we cannot use, malformed or not.
    pub fn parse(value: &str) -> Result<Self, CryptoError> {
        let mut fields = value.split_ascii_whitespace();
        let tag = fields.next().ok_or(CryptoError::Malformed("empty"))?;
        if tag.is_empty() || tag.len() > 9 || !tag.bytes().all(|b| b.is_ascii_digit()) {
            return Err(CryptoError::Malformed("tag is not 1 to 9 digits"));
        }
        let tag: u32 = tag
            .parse()
            .map_err(|_| CryptoError::Malformed("tag is not 1 to 9 digits"))?;
        let suite = fields.next().ok_or(CryptoError::Malformed("no suite"))?;
        let suite = CryptoSuite::from_name(suite)
            .ok_or_else(|| CryptoError::UnsupportedSuite(suite.chars().take(40).collect()))?;
        let key_params = fields.next().ok_or(CryptoError::Malformed("no key"))?;
        if key_params.contains(';') {
            return Err(CryptoError::SeveralKeys);
        }
        let (method, info) = key_params
            .split_once(':')
            .ok_or(CryptoError::Malformed("key without a method"))?;
        if !method.eq_ignore_ascii_case("inline") {
            return Err(CryptoError::Malformed("key method is not inline"));
        }
        let mut parts = info.split('|');
        let encoded = parts.next().unwrap_or_default();
        let decoded = STANDARD
            .decode(encoded)
            .map_err(|_| CryptoError::Malformed("key is not base64"))?;
        let bytes: [u8; KEY_LEN + SALT_LEN] = decoded
            .as_slice()
            .try_into()
            .map_err(|_| CryptoError::KeyLength(decoded.len()))?;
        let mut lifetime = None;
        for (i, part) in parts.enumerate() {
            if part.contains(':') {
                return Err(CryptoError::Mki);
            }
            if i > 0 || lifetime.is_some() {
                return Err(CryptoError::Malformed("too many key fields"));
            }
            lifetime = Some(parse_lifetime(part)?);
        }
        for param in fields {
            session_param(param)?;
        }
        Ok(Self {
            tag,
            suite,
            key: MasterKey(bytes),
            lifetime,
        })
    }

    /// The attribute's value as written in SDP (`a=crypto:` + this); carries the key.
    pub fn to_value(&self) -> String {
        let mut s = format!(
            "{} {} inline:{}",
            self.tag,
            self.suite.name(),
            STANDARD.encode(self.key.0)
        );
        if let Some(l) = self.lifetime {
            s.push('|');
            match l.is_power_of_two() {
                true => s.push_str(&format!("2^{}", l.trailing_zeros())),
                false => s.push_str(&l.to_string()),
            }
        }
        s
    }
}

fn parse_lifetime(s: &str) -> Result<u64, CryptoError> {
    let value = match s.strip_prefix("2^") {
        Some(exp) => {
            let exp: u32 = exp.parse().map_err(|_| CryptoError::Lifetime)?;
            1u64.checked_shl(exp).ok_or(CryptoError::Lifetime)?
        }
        None => s.parse().map_err(|_| CryptoError::Lifetime)?,
    };
    if value == 0 || value > 1 << 48 {
        return Err(CryptoError::Lifetime);
    }
    Ok(value)
}

/// Session parameters (RFC 4568 §6.3): the window size hint and `KDR=0` change nothing, a
/// `-` prefix marks one the receiver may ignore (§6.3.7); anything else is refused.
fn session_param(p: &str) -> Result<(), CryptoError> {
    let name = p.split('=').next().unwrap_or_default();
    if p.starts_with('-') || name.eq_ignore_ascii_case("WSH") || p.eq_ignore_ascii_case("KDR=0") {
        return Ok(());
    }
    Err(CryptoError::SessionParam(p.chars().take(40).collect()))
}

/// What an SDES exchange settled for one stream: the suite and the key each side sends with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrtpKeys {
    /// The suite both sides use.
    pub suite: CryptoSuite,
    /// Our key: we protect what we send with it (it went out in our SDP).
    pub local: MasterKey,
    /// The peer's key: we unprotect what it sends with it (it came in its SDP).
    pub remote: MasterKey,
}

/// Why a packet could not be protected or unprotected (bad authentication tag, replay, too
/// short, not RTP).
#[derive(Debug, thiserror::Error)]
#[error("srtp: {0}")]
pub struct SrtpError(String);

/// The replay list of one direction (RFC 3711 §3.3.2): a sliding window of
/// [`REPLAY_WINDOW`] indices behind the highest one authenticated. It only learns from
/// packets that passed authentication, so a forged or stray packet cannot move it; a new
/// SSRC (the peer restarted its stream) starts it again.
#[derive(Default)]
struct ReplayWindow {
    ssrc: Option<u32>,
    highest: u64,
    mask: u128,
}

impl ReplayWindow {
    /// Whether `index` (modulo `modulus`: 2^16 for RTP sequence numbers, 2^31 for SRTCP
    /// indices) is new; records it when it is.
    fn accept(&mut self, ssrc: u32, index: u64, modulus: u64) -> bool {
        if self.ssrc != Some(ssrc) {
            *self = ReplayWindow {
                ssrc: Some(ssrc),
                highest: index,
                mask: 1,
            };
            return true;
        }
        let behind = self.highest.wrapping_sub(index) % modulus;
        if behind == 0 {
            return false;
        }
        if behind < modulus / 2 {
            // Older than the highest: inside the window and not seen yet.
            if behind >= REPLAY_WINDOW || self.mask & (1 << behind) != 0 {
                return false;
            }
            self.mask |= 1 << behind;
        } else {
            let ahead = modulus - behind;
            self.mask = if ahead >= REPLAY_WINDOW {
                1
            } else {
                (self.mask << ahead) | 1
            };
            self.highest = index;
        }
        true
    }
}

/// The SRTP and SRTCP transform of one direction of one stream (RFC 3711 §3.3, §3.4): a
/// sending one protects, a receiving one unprotects (with replay protection, §3.3.2).
pub struct SrtpTransform {
    suite: CryptoSuite,
    key: MasterKey,
    ctx: Context,
    rtp_replay: ReplayWindow,
    rtcp_replay: ReplayWindow,
}

impl SrtpTransform {
    /// A transform with the session keys derived from `key` (key derivation rate 0).
    ///
    /// Errors: none for the suites above (the key lengths are fixed by the type).
    pub fn new(suite: CryptoSuite, key: &MasterKey) -> Result<Self, SrtpError> {
        let ctx = Context::new(
            key.key(),
            key.salt(),
            suite.profile(),
            // Replays are checked here, after authentication (see `ReplayWindow`).
            Some(srtp_no_replay_protection()),
            Some(srtcp_no_replay_protection()),
        )
        .map_err(|e| SrtpError(e.to_string()))?;
        Ok(Self {
            suite,
            key: key.clone(),
            ctx,
            rtp_replay: ReplayWindow::default(),
            rtcp_replay: ReplayWindow::default(),
        })
    }

    /// The transform's suite.
    pub fn suite(&self) -> CryptoSuite {
        self.suite
    }

    /// Whether this transform already runs with `suite` and `key` (a re-offer that repeats
    /// them keeps the rollover counters).
    pub fn uses(&self, suite: CryptoSuite, key: &MasterKey) -> bool {
        self.suite == suite && &self.key == key
    }

    /// Encrypts an RTP packet's payload and appends the authentication tag (10 or 4 bytes).
    ///
    /// Errors: not an RTP packet.
    pub fn protect_rtp(&mut self, packet: &[u8]) -> Result<impl AsRef<[u8]>, SrtpError> {
        self.ctx
            .encrypt_rtp(packet)
            .map_err(|e| SrtpError(e.to_string()))
    }

    /// Checks the tag and the replay window, then decrypts: the plain RTP packet.
    ///
    /// Errors: a wrong tag (another key, a forged or plain packet), a replay, too short.
    pub fn unprotect_rtp(&mut self, packet: &[u8]) -> Result<impl AsRef<[u8]>, SrtpError> {
        let plain = self
            .ctx
            .decrypt_rtp(packet)
            .map_err(|e| SrtpError(e.to_string()))?;
        // Authenticated, so at least a 12-byte header.
        let seq = u16::from_be_bytes([packet[2], packet[3]]);
        let ssrc = u32::from_be_bytes([packet[8], packet[9], packet[10], packet[11]]);
        if !self.rtp_replay.accept(ssrc, seq.into(), 1 << 16) {
            return Err(SrtpError(format!("replayed packet ssrc={ssrc} seq={seq}")));
        }
        Ok(plain)
    }

    /// Encrypts an RTCP compound packet and appends the E flag, SRTCP index and 80-bit tag.
    ///
    /// Errors: shorter than an RTCP header.
    pub fn protect_rtcp(&mut self, packet: &[u8]) -> Result<impl AsRef<[u8]>, SrtpError> {
        self.ctx
            .encrypt_rtcp(packet)
            .map_err(|e| SrtpError(e.to_string()))
    }

    /// Checks and decrypts an SRTCP packet.
    ///
    /// Errors: a wrong tag, a replay, shorter than an RTCP header and the SRTCP trailer, or
    /// the E flag clear (unencrypted SRTCP is not negotiated, and is refused before the SRTP
    /// layer, which would pass it unauthenticated).
    pub fn unprotect_rtcp(&mut self, packet: &[u8]) -> Result<impl AsRef<[u8]>, SrtpError> {
        let Some(tail) = packet.len().checked_sub(SRTCP_TRAILER).filter(|t| *t >= 8) else {
            return Err(SrtpError(format!(
                "{} bytes: too short for SRTCP",
                packet.len()
            )));
        };
        let e_index = u32::from_be_bytes([
            packet[tail],
            packet[tail + 1],
            packet[tail + 2],
            packet[tail + 3],
        ]);
        if e_index >> 31 == 0 {
            return Err(SrtpError("SRTCP without the E flag".into()));
        }
        let plain = self
            .ctx
            .decrypt_rtcp(packet)
            .map_err(|e| SrtpError(e.to_string()))?;
        let ssrc = u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]);
        let index = e_index & 0x7fff_ffff;
        if !self.rtcp_replay.accept(ssrc, index.into(), 1 << 31) {
            return Err(SrtpError(format!(
                "replayed SRTCP ssrc={ssrc} index={index}"
            )));
        }
        Ok(plain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// The AES_CM_128_HMAC_SHA1_80 reference packet of libsrtp's test driver (master key
    /// and salt as in RFC 3711 Appendix B.3): SSRC 0xcafebabe, sequence 0x1234.
    #[test]
    fn protects_the_reference_packet_and_back() {
        let key = MasterKey::from_bytes(
            hex("e1f97a0d3e018be0d64fa32c06de4139 0ec675ad498afeebb6960b3aabe6")
                .try_into()
                .unwrap(),
        );
        let plain = hex("800f1234decafbad cafebabe abababab abababab abababab abababab");
        let cipher = hex(
            "800f1234decafbad cafebabe 4e55dc4c e79978d8 8ca4d215 949d2402 b78d6acc 99ea179b 8dbb",
        );
        let mut tx = SrtpTransform::new(CryptoSuite::AesCm128HmacSha1_80, &key).unwrap();
        assert_eq!(tx.protect_rtp(&plain).unwrap().as_ref(), cipher.as_slice());
        let mut rx = SrtpTransform::new(CryptoSuite::AesCm128HmacSha1_80, &key).unwrap();
        assert_eq!(
            rx.unprotect_rtp(&cipher).unwrap().as_ref(),
            plain.as_slice()
        );
        // The same packet again is a replay.
        assert!(rx.unprotect_rtp(&cipher).is_err());
        // One flipped bit fails authentication.
        let mut forged = cipher.clone();
        forged[14] ^= 1;
        forged[3] = 0x35;
        assert!(rx.unprotect_rtp(&forged).is_err());
    }

    #[test]
    fn both_suites_round_trip_rtp_and_rtcp_and_other_keys_fail() {
        for suite in CryptoSuite::ALL {
            let key = MasterKey::generate();
            let mut tx = SrtpTransform::new(suite, &key).unwrap();
            let mut rx = SrtpTransform::new(suite, &key).unwrap();
            let mut wrong = SrtpTransform::new(suite, &MasterKey::generate()).unwrap();
            for seq in [65534u16, 65535, 0, 1] {
                let mut plain = vec![0x80, 0x00, 0, 0, 0, 0, 0, 160, 1, 2, 3, 4];
                plain[2..4].copy_from_slice(&seq.to_be_bytes());
                plain.extend_from_slice(&[0x55; 160]);
                let sealed = tx.protect_rtp(&plain).unwrap().as_ref().to_vec();
                let tag = if suite == CryptoSuite::AesCm128HmacSha1_80 {
                    10
                } else {
                    4
                };
                assert_eq!(sealed.len(), plain.len() + tag);
                assert_ne!(&sealed[12..172], &plain[12..]);
                assert!(wrong.unprotect_rtp(&sealed).is_err());
                assert_eq!(rx.unprotect_rtp(&sealed).unwrap().as_ref(), plain);
            }
            let rr = [0x80, 201, 0, 1, 1, 2, 3, 4];
            let sealed = tx.protect_rtcp(&rr).unwrap().as_ref().to_vec();
            assert_eq!(sealed.len(), rr.len() + 4 + 10, "E|index and an 80-bit tag");
            assert!(wrong.unprotect_rtcp(&sealed).is_err());
            assert_eq!(rx.unprotect_rtcp(&sealed).unwrap().as_ref(), rr);
        }
    }

    /// Stray or forged packets first do not block the real ones after them; replays within
    /// the window are refused, old ones beyond it too; SRTCP without the E flag is refused.
    #[test]
    fn replay_window_learns_only_from_authenticated_packets() {
        let key = MasterKey::generate();
        let suite = CryptoSuite::AesCm128HmacSha1_80;
        let mut tx = SrtpTransform::new(suite, &key).unwrap();
        let mut rx = SrtpTransform::new(suite, &key).unwrap();
        let rtp = |seq: u16| {
            let mut p = vec![0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7];
            p[2..4].copy_from_slice(&seq.to_be_bytes());
            p.extend_from_slice(&[1; 20]);
            p
        };
        // A forged packet with a far-away sequence number, then the real stream.
        let mut forged = tx.protect_rtp(&rtp(30000)).unwrap().as_ref().to_vec();
        forged[20] ^= 0xff;
        assert!(rx.unprotect_rtp(&forged).is_err());
        let mut sealed = Vec::new();
        for seq in [65530u16, 65531, 65535, 2, 1] {
            sealed.push(tx.protect_rtp(&rtp(seq)).unwrap().as_ref().to_vec());
        }
        for p in &sealed {
            assert!(
                rx.unprotect_rtp(p).is_ok(),
                "reordered across the wrap is fine"
            );
        }
        assert!(rx.unprotect_rtp(&sealed[1]).is_err(), "a replay");
        // RTCP: a short stray packet, then reports with indices 1, 2; 1 again is a replay.
        assert!(rx
            .unprotect_rtcp(&[0x80, 201, 0, 1, 0, 0, 0, 7, 1, 2, 3, 4, 5, 6, 7, 8])
            .is_err());
        let rr = [0x80, 201, 0, 1, 0, 0, 0, 7];
        let one = tx.protect_rtcp(&rr).unwrap().as_ref().to_vec();
        let two = tx.protect_rtcp(&rr).unwrap().as_ref().to_vec();
        assert!(rx.unprotect_rtcp(&one).is_ok());
        assert!(rx.unprotect_rtcp(&two).is_ok());
        assert!(rx.unprotect_rtcp(&one).is_err());
        // The E flag cleared: the SRTP layer would take it unauthenticated; we do not.
        let mut clear = two.clone();
        let tail = clear.len() - SRTCP_TRAILER;
        clear[tail] &= 0x7f;
        clear[tail + 3] = 9;
        assert!(rx.unprotect_rtcp(&clear).is_err());
        for n in 0..30 {
            let _ = rx.unprotect_rtcp(&vec![0x80; n]);
            let _ = rx.unprotect_rtp(&vec![0x80; n]);
        }
    }

    #[test]
    fn window_arithmetic() {
        let mut w = ReplayWindow::default();
        assert!(w.accept(1, 10, 1 << 16));
        assert!(!w.accept(1, 10, 1 << 16));
        assert!(w.accept(1, 200, 1 << 16));
        assert!(!w.accept(1, 10, 1 << 16), "older than the window");
        assert!(w.accept(1, 199, 1 << 16));
        assert!(w.accept(2, 10, 1 << 16), "a new SSRC starts over");
        assert!(w.accept(2, 65535, 1 << 16), "just before, across the wrap");
        assert!(!w.accept(2, 65535, 1 << 16));
    }

    const KEY: &str = "WnD7c1ksDGs+dIefCEo8omPg4uO8DYIinNGL5yxQ";

    #[test]
    fn parses_rfc4568_forms() {
        let c = Crypto::parse(&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}")).unwrap();
        assert_eq!(
            (c.tag, c.suite, c.lifetime),
            (1, CryptoSuite::AesCm128HmacSha1_80, None)
        );
        assert_eq!(
            c.to_value(),
            format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}")
        );
        let c = Crypto::parse(&format!(
            "2 aes_cm_128_hmac_sha1_32 inline:{KEY}|2^31 WSH=64"
        ))
        .unwrap();
        assert_eq!(
            (c.tag, c.suite, c.lifetime),
            (2, CryptoSuite::AesCm128HmacSha1_32, Some(1 << 31))
        );
        assert_eq!(
            c.to_value(),
            format!("2 AES_CM_128_HMAC_SHA1_32 inline:{KEY}|2^31")
        );
        assert_eq!(
            Crypto::parse(&format!(
                "3 AES_CM_128_HMAC_SHA1_80 inline:{KEY}|1048576 KDR=0"
            ))
            .unwrap()
            .lifetime,
            Some(1 << 20)
        );
        assert!(Crypto::parse(&format!("4 AES_CM_128_HMAC_SHA1_80 inline:{KEY} -FOO")).is_ok());
    }

    #[test]
    fn refuses_what_we_cannot_do() {
        let bad = |v: String| Crypto::parse(&v).unwrap_err();
        assert_eq!(
            bad(format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}|2^20|1:4")),
            CryptoError::Mki
        );
        assert_eq!(
            bad(format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}|1:4")),
            CryptoError::Mki
        );
        assert_eq!(
            bad(format!(
                "1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}|2^20|1:4;inline:{KEY}|2^20|2:4"
            )),
            CryptoError::SeveralKeys
        );
        assert!(matches!(
            bad(format!("1 AES_256_CM_HMAC_SHA1_80 inline:{KEY}")),
            CryptoError::UnsupportedSuite(_)
        ));
        assert!(matches!(
            bad(format!(
                "1 AES_CM_128_HMAC_SHA1_80 inline:{KEY} UNENCRYPTED_SRTP"
            )),
            CryptoError::SessionParam(_)
        ));
        assert!(matches!(
            bad(format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY} KDR=24")),
            CryptoError::SessionParam(_)
        ));
        assert_eq!(
            bad("1 AES_CM_128_HMAC_SHA1_80 inline:AAAA".into()),
            CryptoError::KeyLength(3)
        );
        assert_eq!(
            bad(format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}|2^49")),
            CryptoError::Lifetime
        );
        assert_eq!(
            bad(format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}|2^999")),
            CryptoError::Lifetime
        );
        for v in [
            "",
            "x AES_CM_128_HMAC_SHA1_80 inline:x",
            "1234567890 AES_CM_128_HMAC_SHA1_80",
            "1",
            "1 AES_CM_128_HMAC_SHA1_80",
            "1 AES_CM_128_HMAC_SHA1_80 uri:x",
            "1 AES_CM_128_HMAC_SHA1_80 inline:!!!",
        ] {
            assert!(Crypto::parse(v).is_err(), "{v:?}");
        }
    }

    #[test]
    fn keys_are_random_and_never_printed() {
        let a = Crypto::generate(1, CryptoSuite::AesCm128HmacSha1_80);
        let b = Crypto::generate(1, CryptoSuite::AesCm128HmacSha1_80);
        assert_ne!(a.key, b.key);
        let printed = format!("{a:?}");
        let encoded = a.to_value();
        let inline = encoded.split("inline:").nth(1).unwrap();
        assert!(!printed.contains(inline), "{printed}");
        assert!(printed.contains("MasterKey(..)"));
    }
}
