//! Which RTP packets start a video keyframe, per codec: what the keyframe cache keys on.

/// Video payload formats the keyframe cache understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VideoFormat {
    /// H.264, RFC 6184 packetization mode 1 (single NAL unit, STAP-A, FU-A).
    H264,
    /// VP8, RFC 7741.
    Vp8,
    /// VP9, draft-ietf-payload-vp9 / RFC 9628.
    Vp9,
}

const NAL_IDR: u8 = 5;
const NAL_SPS: u8 = 7;
const STAP_A: u8 = 24;
const FU_A: u8 = 28;

impl VideoFormat {
    /// Whether `payload` is the first packet of a keyframe (or of the parameter sets that open
    /// one). Malformed payloads are not keyframes.
    pub fn starts_keyframe(self, payload: &[u8]) -> bool {
        match self {
            VideoFormat::H264 => h264_starts_keyframe(payload),
            VideoFormat::Vp8 => vp8_starts_keyframe(payload),
            VideoFormat::Vp9 => vp9_starts_keyframe(payload),
        }
    }
}

fn h264_starts_keyframe(payload: &[u8]) -> bool {
    let Some(&first) = payload.first() else {
        return false;
    };
    match first & 0x1f {
        NAL_IDR | NAL_SPS => true,
        STAP_A => {
            let mut rest = &payload[1..];
            while rest.len() >= 3 {
                let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
                if len == 0 || rest.len() < 2 + len {
                    return false;
                }
                if matches!(rest[2] & 0x1f, NAL_IDR | NAL_SPS) {
                    return true;
                }
                rest = &rest[2 + len..];
            }
            false
        }
        FU_A => payload
            .get(1)
            .is_some_and(|h| h & 0x80 != 0 && h & 0x1f == NAL_IDR),
        _ => false,
    }
}

fn vp8_starts_keyframe(payload: &[u8]) -> bool {
    // RFC 7741 §4.2: X|R|N|S|R|PID, then the optional extension bytes.
    let Some(&b0) = payload.first() else {
        return false;
    };
    if b0 & 0x10 == 0 || b0 & 0x07 != 0 {
        return false;
    }
    let mut i = 1;
    if b0 & 0x80 != 0 {
        let Some(&x) = payload.get(1) else {
            return false;
        };
        i = 2;
        if x & 0x80 != 0 {
            let Some(&pid) = payload.get(i) else {
                return false;
            };
            i += if pid & 0x80 != 0 { 2 } else { 1 };
        }
        if x & 0x40 != 0 {
            i += 1;
        }
        if x & 0x30 != 0 {
            i += 1;
        }
    }
    // RFC 6386 §9.1: P (bit 0 of the frame tag) is 0 for a key frame.
    payload.get(i).is_some_and(|tag| tag & 0x01 == 0)
}

fn vp9_starts_keyframe(payload: &[u8]) -> bool {
    // I|P|L|F|B|E|V|Z: B starts a frame, P says it is predicted from another picture.
    payload
        .first()
        .is_some_and(|b| b & 0x08 != 0 && b & 0x40 == 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn h264_idr_sps_stap_and_fu_starts() {
        let f = VideoFormat::H264;
        assert!(f.starts_keyframe(&[0x65, 1, 2]));
        assert!(f.starts_keyframe(&[0x67, 0x42]));
        assert!(!f.starts_keyframe(&[0x41, 1]));
        assert!(f.starts_keyframe(&[0x78, 0, 2, 0x67, 1, 0, 1, 0x68]));
        assert!(!f.starts_keyframe(&[0x78, 0, 2, 0x41, 1]));
        assert!(f.starts_keyframe(&[0x7c, 0x85, 9]));
        assert!(
            !f.starts_keyframe(&[0x7c, 0x05, 9]),
            "not the first fragment"
        );
        assert!(!f.starts_keyframe(&[0x7c, 0x81, 9]), "a P slice");
        assert!(!f.starts_keyframe(&[]));
    }

    #[test]
    fn vp8_key_and_delta_frames() {
        let f = VideoFormat::Vp8;
        // S=1 PID=0, no extension, frame tag with P=0.
        assert!(f.starts_keyframe(&[0x10, 0x50, 0x02]));
        assert!(!f.starts_keyframe(&[0x10, 0x51, 0x02]), "inter frame");
        assert!(!f.starts_keyframe(&[0x00, 0x50]), "not a partition start");
        // X with a 15-bit picture id.
        assert!(f.starts_keyframe(&[0x90, 0x80, 0x81, 0x23, 0x50]));
        assert!(!f.starts_keyframe(&[0x90, 0x80, 0x81]));
    }

    proptest! {
        #[test]
        fn never_panics(codec in 0..3u8, payload in proptest::collection::vec(any::<u8>(), 0..64)) {
            let f = [VideoFormat::H264, VideoFormat::Vp8, VideoFormat::Vp9][codec as usize];
            let _ = f.starts_keyframe(&payload);
        }
    }
}
