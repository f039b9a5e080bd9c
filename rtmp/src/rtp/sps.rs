//! Reads an H.264 sequence parameter set (ITU-T H.264 §7.3.2.1.1, VUI §E.1.1): the picture size
//! it announces ([`picture_size`], for a recording's track header), and rewrites it so that it
//! says no picture is ever held back for reordering (`max_num_reorder_frames = 0`).
//!
//! WebRTC receivers decode one frame per frame received and treat a decoder that holds a
//! picture back (which it does for B-frames when the SPS announces reordering) as an error,
//! asking for a keyframe again and again. With the reordering bound set to 0 the decoder
//! outputs every picture as soon as it is decoded: the stream decodes, B-frames are shown in
//! decode order (up to the composition offset early). Streams without B-frames are unchanged
//! in what they display.

use bytes::{BufMut, Bytes, BytesMut};

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn bit(&mut self) -> Option<u32> {
        let byte = *self.data.get(self.pos / 8)?;
        let bit = (byte >> (7 - self.pos % 8)) & 1;
        self.pos += 1;
        Some(u32::from(bit))
    }

    fn bits(&mut self, n: u32) -> Option<u32> {
        let mut v = 0u32;
        for _ in 0..n {
            v = (v << 1) | self.bit()?;
        }
        Some(v)
    }

    fn ue(&mut self) -> Option<u32> {
        let mut zeros = 0;
        while self.bit()? == 0 {
            zeros += 1;
            if zeros > 31 {
                return None;
            }
        }
        let rest = self.bits(zeros)?;
        Some(((1u64 << zeros) - 1 + u64::from(rest)) as u32)
    }

    /// A signed Exp-Golomb value (§9.1.1).
    fn se(&mut self) -> Option<i64> {
        let k = i64::from(self.ue()?);
        Some(if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) })
    }

    /// Reads past a scaling list of `size` entries (§7.3.2.1.1.1).
    fn skip_scaling_list(&mut self, size: usize) -> Option<()> {
        let (mut last, mut next) = (8i64, 8i64);
        for _ in 0..size {
            if next != 0 {
                next = (last + self.se()? + 256) % 256;
            }
            if next != 0 {
                last = next;
            }
        }
        Some(())
    }
}

#[derive(Default)]
struct Writer {
    bytes: Vec<u8>,
    bits: u32,
}

impl Writer {
    fn bit(&mut self, b: u32) {
        if self.bits % 8 == 0 {
            self.bytes.push(0);
        }
        if b != 0 {
            let last = self.bytes.len() - 1;
            self.bytes[last] |= 1 << (7 - self.bits % 8);
        }
        self.bits += 1;
    }

    fn bits(&mut self, n: u32, v: u32) {
        for i in (0..n).rev() {
            self.bit((v >> i) & 1);
        }
    }

    fn ue(&mut self, v: u32) {
        let v = u64::from(v) + 1;
        let len = 64 - v.leading_zeros();
        for _ in 0..len - 1 {
            self.bit(0);
        }
        for i in (0..len).rev() {
            self.bit(((v >> i) & 1) as u32);
        }
    }
}

/// Copies fields from the reader to the writer.
struct Copy<'a> {
    r: Reader<'a>,
    w: Writer,
}

impl Copy<'_> {
    fn bits(&mut self, n: u32) -> Option<u32> {
        let v = self.r.bits(n)?;
        self.w.bits(n, v);
        Some(v)
    }

    fn ue(&mut self) -> Option<u32> {
        let v = self.r.ue()?;
        self.w.ue(v);
        Some(v)
    }

    /// A signed Exp-Golomb value has the same code as the unsigned one.
    fn se(&mut self) -> Option<()> {
        self.ue().map(drop)
    }

    fn scaling_list(&mut self, size: usize) -> Option<()> {
        let (mut last, mut next) = (8i32, 8i32);
        for _ in 0..size {
            if next != 0 {
                let code = self.ue()?;
                let delta = if code % 2 == 1 {
                    (code / 2 + 1) as i32
                } else {
                    -((code / 2) as i32)
                };
                next = (last + delta + 256) % 256;
            }
            if next != 0 {
                last = next;
            }
        }
        Some(())
    }

    fn hrd(&mut self) -> Option<()> {
        let count = self.ue()?;
        if count > 31 {
            return None;
        }
        self.bits(8)?;
        for _ in 0..=count {
            self.ue()?;
            self.ue()?;
            self.bits(1)?;
        }
        self.bits(20)?;
        Some(())
    }
}

fn unescape(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut zeros = 0;
    for &b in data {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

fn escape(rbsp: &[u8], out: &mut BytesMut) {
    let mut zeros = 0;
    for &b in rbsp {
        if zeros >= 2 && b <= 3 {
            out.put_u8(3);
            zeros = 0;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.put_u8(b);
    }
}

const HIGH_PROFILES: &[u32] = &[100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135];

/// The SPS NAL unit `sps` (header byte first) with `max_num_reorder_frames` set to 0, adding
/// the VUI or its bitstream restriction when missing. `None` when `sps` is not an SPS or
/// cannot be parsed (the caller keeps the original).
pub fn without_reordering(sps: &[u8]) -> Option<Bytes> {
    match walk(sps)? {
        (_, Some(0)) => None,
        (out, _) => Some(out),
    }
}

/// The `max_num_reorder_frames` an SPS announces; `None` when it has no bitstream
/// restriction (or cannot be parsed).
pub fn max_num_reorder_frames(sps: &[u8]) -> Option<u32> {
    walk(sps)?.1
}

/// Width and height in pixels of the SPS NAL unit `sps` (header byte first); `None` when it
/// is not an SPS or does not parse.
pub fn picture_size(sps: &[u8]) -> Option<(u32, u32)> {
    if sps.first()? & 0x1f != 7 {
        return None;
    }
    let data = unescape(&sps[1..]);
    let mut r = Reader {
        data: &data,
        pos: 0,
    };
    let profile = r.bits(8)?;
    r.bits(16)?;
    r.ue()?;
    let mut chroma_format = 1;
    let mut separate_planes = 0;
    if HIGH_PROFILES.contains(&profile) {
        chroma_format = r.ue()?;
        if chroma_format == 3 {
            separate_planes = r.bit()?;
        }
        r.ue()?;
        r.ue()?;
        r.bit()?;
        if r.bit()? == 1 {
            for i in 0..if chroma_format == 3 { 12 } else { 8 } {
                if r.bit()? == 1 {
                    r.skip_scaling_list(if i < 6 { 16 } else { 64 })?;
                }
            }
        }
    }
    r.ue()?;
    match r.ue()? {
        0 => {
            r.ue()?;
        }
        1 => {
            r.bit()?;
            r.se()?;
            r.se()?;
            let n = r.ue()?;
            if n > 255 {
                return None;
            }
            for _ in 0..n {
                r.se()?;
            }
        }
        _ => {}
    }
    r.ue()?;
    r.bit()?;
    let width_mbs = u64::from(r.ue()?) + 1;
    let height_units = u64::from(r.ue()?) + 1;
    let frame_mbs_only = u64::from(r.bit()?);
    if frame_mbs_only == 0 {
        r.bit()?;
    }
    r.bit()?;
    let (mut left, mut right, mut top, mut bottom) = (0u64, 0u64, 0u64, 0u64);
    if r.bit()? == 1 {
        left = r.ue()?.into();
        right = r.ue()?.into();
        top = r.ue()?.into();
        bottom = r.ue()?.into();
    }
    let (crop_x, crop_y) = match (chroma_format, separate_planes) {
        (0, _) | (3, 1) => (1, 2 - frame_mbs_only),
        (1, _) => (2, 2 * (2 - frame_mbs_only)),
        (2, _) => (2, 2 - frame_mbs_only),
        _ => (1, 2 - frame_mbs_only),
    };
    let width = (width_mbs * 16).checked_sub(crop_x * (left + right))?;
    let height = ((2 - frame_mbs_only) * height_units * 16).checked_sub(crop_y * (top + bottom))?;
    Some((u32::try_from(width).ok()?, u32::try_from(height).ok()?))
}

/// Parses `sps` and writes it again with no reordering; also gives the reordering bound it
/// had, if it said one.
fn walk(sps: &[u8]) -> Option<(Bytes, Option<u32>)> {
    if sps.len() < 4 || sps[0] & 0x1f != 7 {
        return None;
    }
    let rbsp = unescape(&sps[1..]);
    let mut c = Copy {
        r: Reader {
            data: &rbsp,
            pos: 0,
        },
        w: Writer::default(),
    };
    let profile = c.bits(8)?;
    c.bits(16)?;
    c.ue()?;
    if HIGH_PROFILES.contains(&profile) {
        let chroma = c.ue()?;
        if chroma == 3 {
            c.bits(1)?;
        }
        c.ue()?;
        c.ue()?;
        c.bits(1)?;
        if c.bits(1)? == 1 {
            for i in 0..if chroma == 3 { 12 } else { 8 } {
                if c.bits(1)? == 1 {
                    c.scaling_list(if i < 6 { 16 } else { 64 })?;
                }
            }
        }
    }
    c.ue()?;
    match c.ue()? {
        0 => {
            c.ue()?;
        }
        1 => {
            c.bits(1)?;
            c.se()?;
            c.se()?;
            let n = c.ue()?;
            if n > 255 {
                return None;
            }
            for _ in 0..n {
                c.se()?;
            }
        }
        _ => {}
    }
    let max_refs = c.ue()?;
    c.bits(1)?;
    c.ue()?;
    c.ue()?;
    if c.bits(1)? == 0 {
        c.bits(1)?;
    }
    c.bits(1)?;
    if c.bits(1)? == 1 {
        for _ in 0..4 {
            c.ue()?;
        }
    }
    let vui = c.r.bits(1)?;
    c.w.bit(1);
    let restriction = if vui == 1 {
        if c.bits(1)? == 1 && c.bits(8)? == 255 {
            c.bits(32)?;
        }
        if c.bits(1)? == 1 {
            c.bits(1)?;
        }
        if c.bits(1)? == 1 {
            c.bits(4)?;
            if c.bits(1)? == 1 {
                c.bits(24)?;
            }
        }
        if c.bits(1)? == 1 {
            c.ue()?;
            c.ue()?;
        }
        if c.bits(1)? == 1 {
            c.bits(32)?;
            c.bits(32)?;
            c.bits(1)?;
        }
        let nal_hrd = c.bits(1)?;
        if nal_hrd == 1 {
            c.hrd()?;
        }
        let vcl_hrd = c.bits(1)?;
        if vcl_hrd == 1 {
            c.hrd()?;
        }
        if nal_hrd == 1 || vcl_hrd == 1 {
            c.bits(1)?;
        }
        c.bits(1)?;
        c.r.bits(1)?
    } else {
        // No VUI: every flag of it 0 but the bitstream restriction.
        c.w.bits(8, 0);
        0
    };
    c.w.bit(1);
    let mut old_reorder = None;
    let dec_buffering = if restriction == 1 {
        c.bits(1)?;
        c.ue()?;
        c.ue()?;
        c.ue()?;
        c.ue()?;
        old_reorder = Some(c.r.ue()?);
        c.r.ue()?
    } else {
        c.w.bit(1);
        c.w.ue(2);
        c.w.ue(1);
        c.w.ue(16);
        c.w.ue(16);
        max_refs
    };
    c.w.ue(0);
    c.w.ue(dec_buffering.max(max_refs));
    // rbsp_trailing_bits
    c.w.bit(1);
    while c.w.bits % 8 != 0 {
        c.w.bit(0);
    }
    let mut out = BytesMut::with_capacity(c.w.bytes.len() + 4);
    out.put_u8(sps[0]);
    escape(&c.w.bytes, &mut out);
    Some((out.freeze(), old_reorder))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn sizes_of_real_parameter_sets() {
        // x264, High 3.0, 640x360 (cropped from 640x368).
        let high = [
            0x67, 0x64, 0x00, 0x1e, 0xac, 0xd9, 0x40, 0xa0, 0x2f, 0xf9, 0x70, 0x11, 0x00, 0x00,
            0x03, 0x00, 0x01, 0x00, 0x00, 0x03, 0x00, 0x3c, 0x0f, 0x16, 0x2d, 0x96,
        ];
        assert_eq!(picture_size(&high), Some((640, 360)));
        // x264, constrained baseline 1.3, 320x240.
        let baseline = [
            0x67, 0x42, 0xc0, 0x0d, 0xd9, 0x01, 0x41, 0xfb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00,
            0x10, 0x00, 0x00, 0x03, 0x03, 0xc0, 0xf1, 0x42, 0xa4, 0x80,
        ];
        assert_eq!(picture_size(&baseline), Some((320, 240)));
        assert_eq!(picture_size(&[0x68, 0xce]), None);
    }

    /// x264's SPS of a 640x360 high-profile stream with `-bf 2` (max_num_reorder_frames 2).
    const X264_HIGH_BF2: &[u8] = &[
        0x67, 0x64, 0x00, 0x1e, 0xac, 0xd9, 0x40, 0xa0, 0x2f, 0xf9, 0x70, 0x11, 0x00, 0x00, 0x03,
        0x00, 0x01, 0x00, 0x00, 0x03, 0x00, 0x3c, 0x0f, 0x16, 0x2d, 0x96,
    ];

    #[test]
    fn x264_b_frame_sps_gets_no_reordering_and_keeps_its_start() {
        assert_eq!(max_num_reorder_frames(X264_HIGH_BF2), Some(2));
        let out = without_reordering(X264_HIGH_BF2).expect("rewritten");
        assert_eq!(&out[..4], &X264_HIGH_BF2[..4]);
        assert_eq!(max_num_reorder_frames(&out), Some(0));
        assert!(
            without_reordering(&out).is_none(),
            "already without reordering"
        );
    }

    #[test]
    fn sps_without_vui_gets_a_restriction() {
        // Baseline 3.0, 320x240, no VUI (as the rtmp tests' encoders write it).
        let mut w = Writer::default();
        w.bits(8, 66);
        w.bits(8, 0xc0);
        w.bits(8, 30);
        w.ue(0); // sps id
        w.ue(0); // log2_max_frame_num - 4
        w.ue(2); // poc type 2
        w.ue(1); // max refs
        w.bit(0);
        w.ue(19); // width in mbs - 1
        w.ue(14); // height in map units - 1
        w.bit(1); // frame_mbs_only
        w.bit(1); // direct_8x8
        w.bit(0); // cropping
        w.bit(0); // vui
        w.bit(1);
        while w.bits % 8 != 0 {
            w.bit(0);
        }
        let mut sps = vec![0x67];
        sps.extend(&w.bytes);
        assert_eq!(max_num_reorder_frames(&sps), None);
        let out = without_reordering(&sps).unwrap();
        assert_eq!(max_num_reorder_frames(&out), Some(0));
        assert_eq!(&out[..4], &sps[..4]);
    }

    #[test]
    fn not_an_sps() {
        assert!(without_reordering(&[0x68, 1, 2, 3]).is_none());
        assert!(without_reordering(&[0x67]).is_none());
    }

    proptest! {
        #[test]
        fn picture_size_never_panics(data in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut sps = vec![0x67];
            sps.extend(data);
            let _ = picture_size(&sps);
        }

        #[test]
        fn never_panics(d in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut sps = vec![0x67];
            sps.extend(d);
            let _ = without_reordering(&sps);
        }
    }
}
