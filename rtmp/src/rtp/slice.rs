//! The slice type of an H.264 coded slice (ITU-T H.264 §7.3.3), to tell B-frames apart.

/// Whether `nalu` (header byte first) is a coded slice of a B picture (`slice_type` 1 or 6).
/// `false` for other NAL units and for slices too short to tell.
pub fn is_b_slice(nalu: &[u8]) -> bool {
    let Some(&header) = nalu.first() else {
        return false;
    };
    if !matches!(header & 0x1f, 1 | 5) {
        return false;
    }
    // Two Exp-Golomb values fit in the first bytes; undo emulation prevention on those.
    let mut rbsp = Vec::with_capacity(16);
    let mut zeros = 0;
    for &b in nalu.iter().skip(1).take(16) {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        rbsp.push(b);
    }
    let mut pos = 0usize;
    let mut ue = || -> Option<u32> {
        let mut n = 0;
        loop {
            let bit = (rbsp.get(pos / 8)? >> (7 - pos % 8)) & 1;
            pos += 1;
            if bit == 1 {
                break;
            }
            n += 1;
            if n > 31 {
                return None;
            }
        }
        let mut v = 0u64;
        for _ in 0..n {
            v = (v << 1) | u64::from((rbsp.get(pos / 8)? >> (7 - pos % 8)) & 1);
            pos += 1;
        }
        Some(((1u64 << n) - 1 + v) as u32)
    };
    let _first_mb = ue();
    matches!(ue(), Some(t) if t % 5 == 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn slice_types() {
        // first_mb 0 ("1"), slice_type 1 ("010") → 0b1010_0000; nal_ref_idc 0, type 1.
        assert!(is_b_slice(&[0x01, 0b1010_0000]));
        // slice_type 6 = "00111" → 1 00111 → 0b1001_1100.
        assert!(is_b_slice(&[0x21, 0b1001_1100]));
        // P (0: "1") and I (7: "0001000").
        assert!(!is_b_slice(&[0x41, 0b1100_0000]));
        assert!(!is_b_slice(&[0x65, 0b1000_1000, 0]));
        assert!(!is_b_slice(&[0x67, 0b1010_0000]), "not a slice");
        assert!(!is_b_slice(&[]));
    }

    proptest! {
        #[test]
        fn never_panics(d in proptest::collection::vec(any::<u8>(), 0..40)) {
            let _ = is_b_slice(&d);
        }
    }
}
