//! Property tests of SDES-SRTP: the `a=crypto` parser never panics, every line we can write
//! parses back to itself, SDP carrying it round-trips, and protect/unprotect is the identity
//! for any RTP packet.

use bifrons_sip::sdp::Sdp;
use bifrons_sip::srtp::{Crypto, CryptoSuite, MasterKey, SrtpTransform};
use proptest::prelude::*;

fn suite() -> impl Strategy<Value = CryptoSuite> {
    prop_oneof![
        Just(CryptoSuite::AesCm128HmacSha1_80),
        Just(CryptoSuite::AesCm128HmacSha1_32)
    ]
}

proptest! {
    #[test]
    fn crypto_parser_never_panics(s in "\\PC{0,200}") {
        let _ = Crypto::parse(&s);
    }

    #[test]
    fn crypto_parser_never_panics_on_near_misses(
        tag in "[0-9]{0,11}",
        suite in "(AES_CM_128_HMAC_SHA1_(80|32)|aes_cm_128_hmac_sha1_80|[A-Z_0-9]{0,30})",
        key in "[A-Za-z0-9+/=]{0,48}",
        tail in "(\\|(2\\^[0-9]{1,3}|[0-9]{1,20}))?(\\|[0-9]{0,4}:[0-9]{0,3})?( [A-Z_=0-9-]{0,12}){0,3}",
    ) {
        let _ = Crypto::parse(&format!("{tag} {suite} inline:{key}{tail}"));
    }

    #[test]
    fn written_lines_parse_back(tag in 0u32..=999_999_999, s in suite(), key in any::<[u8; 30]>(), exp in proptest::option::of(1u32..=48)) {
        let line = Crypto {
            tag,
            suite: s,
            key: MasterKey::from_bytes(key),
            lifetime: exp.map(|e| 1u64 << e),
        };
        prop_assert_eq!(Crypto::parse(&line.to_value()), Ok(line));
    }

    #[test]
    fn sdp_with_crypto_round_trips(key in any::<[u8; 30]>(), tag in 1u32..100) {
        let line = Crypto { tag, suite: CryptoSuite::AesCm128HmacSha1_80, key: MasterKey::from_bytes(key), lifetime: None };
        let text = format!(
            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/SAVP 0\r\na=crypto:{}\r\n",
            line.to_value()
        );
        let sdp = Sdp::parse(text.as_bytes()).unwrap();
        prop_assert_eq!(&sdp.audio().unwrap().crypto, &vec![line.clone()]);
        let again = Sdp::parse(&sdp.to_bytes()).unwrap();
        prop_assert_eq!(&again.audio().unwrap().crypto, &vec![line]);
    }

    #[test]
    fn unprotect_never_panics(data in proptest::collection::vec(any::<u8>(), 0..300), key in any::<[u8; 30]>()) {
        for s in CryptoSuite::ALL {
            let mut rx = SrtpTransform::new(s, &MasterKey::from_bytes(key)).unwrap();
            let _ = rx.unprotect_rtp(&data);
            let _ = rx.unprotect_rtcp(&data);
        }
    }

    #[test]
    fn protect_then_unprotect_is_identity(
        s in suite(),
        key in any::<[u8; 30]>(),
        seq in any::<u16>(),
        ts in any::<u32>(),
        ssrc in any::<u32>(),
        pt in 0u8..128,
        payload in proptest::collection::vec(any::<u8>(), 0..1200),
    ) {
        let key = MasterKey::from_bytes(key);
        let mut packet = vec![0x80, pt];
        packet.extend_from_slice(&seq.to_be_bytes());
        packet.extend_from_slice(&ts.to_be_bytes());
        packet.extend_from_slice(&ssrc.to_be_bytes());
        packet.extend_from_slice(&payload);
        let mut tx = SrtpTransform::new(s, &key).unwrap();
        let mut rx = SrtpTransform::new(s, &key).unwrap();
        let sealed = tx.protect_rtp(&packet).unwrap().as_ref().to_vec();
        let opened = rx.unprotect_rtp(&sealed).unwrap().as_ref().to_vec();
        prop_assert_eq!(opened, packet);
        // Any single flipped bit in the protected part is caught.
        let mut forged = sealed.clone();
        let i = 12 + (seq as usize % (forged.len() - 12));
        forged[i] ^= 0x01;
        let mut fresh = SrtpTransform::new(s, &key).unwrap();
        prop_assert!(fresh.unprotect_rtp(&forged).is_err());
    }
}
