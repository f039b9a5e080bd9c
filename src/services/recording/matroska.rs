//! A Matroska (`.mkv`) writer for one H.264 video track (RFC 9559 for the container, the
//! Matroska codec mapping `V_MPEG4/ISO/AVC` with an `AVCDecoderConfigurationRecord` as
//! CodecPrivate, ISO/IEC 14496-15 §5.3.3.1).
//!
//! Layout: EBML header, one Segment of unknown size (so nothing before the media needs
//! rewriting), Info (1 ms timestamps; Duration written when the file is finished), Tracks, then
//! one Cluster per GOP (a new one at each keyframe, or when a cluster would span more than
//! 30 s) holding SimpleBlocks of length-prefixed NAL units. A cluster is written whole once the
//! next one starts, so a crash loses at most the GOP being written and leaves a file that
//! plays up to there.

use std::io::{self, Seek, SeekFrom, Write};

const EBML: u32 = 0x1A45_DFA3;
const SEGMENT: u32 = 0x1853_8067;
const INFO: u32 = 0x1549_A966;
const TIMESTAMP_SCALE: u32 = 0x2A_D7B1;
const DURATION: u32 = 0x4489;
const MUXING_APP: u32 = 0x4D80;
const WRITING_APP: u32 = 0x5741;
const TRACKS: u32 = 0x1654_AE6B;
const TRACK_ENTRY: u32 = 0xAE;
const TRACK_NUMBER: u32 = 0xD7;
const TRACK_UID: u32 = 0x73C5;
const TRACK_TYPE: u32 = 0x83;
const FLAG_LACING: u32 = 0x9C;
const CODEC_ID: u32 = 0x86;
const CODEC_PRIVATE: u32 = 0x63A2;
const VIDEO: u32 = 0xE0;
const PIXEL_WIDTH: u32 = 0xB0;
const PIXEL_HEIGHT: u32 = 0xBA;
const CLUSTER: u32 = 0x1F43_B675;
const CLUSTER_TIMESTAMP: u32 = 0xE7;
const SIMPLE_BLOCK: u32 = 0xA3;

/// Longest a cluster may span, in ms (block timestamps are 16-bit relative to the cluster's).
const MAX_CLUSTER_MS: u64 = 30_000;

/// Appends an element ID (its bytes as the spec lists them, leading zeros dropped).
fn put_id(out: &mut Vec<u8>, id: u32) {
    let bytes = id.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count();
    out.extend_from_slice(&bytes[skip..]);
}

/// Appends a data size as an 8-byte EBML variable-size integer.
fn put_size(out: &mut Vec<u8>, size: u64) {
    out.push(0x01);
    out.extend_from_slice(&size.to_be_bytes()[1..]);
}

fn element(out: &mut Vec<u8>, id: u32, body: &[u8]) {
    put_id(out, id);
    put_size(out, body.len() as u64);
    out.extend_from_slice(body);
}

fn uint(out: &mut Vec<u8>, id: u32, value: u64) {
    let bytes = value.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count().min(7);
    element(out, id, &bytes[skip..]);
}

/// The `AVCDecoderConfigurationRecord` of `sps` and `pps` (NAL units, header byte first) with
/// 4-byte NAL unit lengths. `None` when the SPS is shorter than its 4-byte header part.
pub fn avc_decoder_configuration(sps: &[u8], pps: &[u8]) -> Option<Vec<u8>> {
    if sps.len() < 4 || sps.len() > usize::from(u16::MAX) || pps.len() > usize::from(u16::MAX) {
        return None;
    }
    let mut out = vec![1, sps[1], sps[2], sps[3], 0xFF, 0xE1];
    out.extend_from_slice(&(sps.len() as u16).to_be_bytes());
    out.extend_from_slice(sps);
    out.push(1);
    out.extend_from_slice(&(pps.len() as u16).to_be_bytes());
    out.extend_from_slice(pps);
    Some(out)
}

/// Writes one H.264 track to a Matroska file.
pub struct MatroskaH264Writer<W: Write + Seek> {
    out: W,
    /// Where the Duration's 8-byte float sits.
    duration_at: u64,
    /// The cluster being filled: its timestamp and its blocks.
    cluster: Option<(u64, Vec<u8>)>,
    first_ms: Option<u64>,
    last_ms: u64,
    frames: u64,
    written: u64,
}

impl<W: Write + Seek> MatroskaH264Writer<W> {
    /// Writes the header of a file whose track is `width`×`height` pixels with the decoder
    /// configuration `avcc` (see [`avc_decoder_configuration`]).
    pub fn new(mut out: W, width: u32, height: u32, avcc: &[u8]) -> io::Result<Self> {
        let mut head = Vec::with_capacity(256 + avcc.len());
        let mut ebml = Vec::new();
        uint(&mut ebml, 0x4286, 1);
        uint(&mut ebml, 0x42F7, 1);
        uint(&mut ebml, 0x42F2, 4);
        uint(&mut ebml, 0x42F3, 8);
        element(&mut ebml, 0x4282, b"matroska");
        uint(&mut ebml, 0x4287, 4);
        uint(&mut ebml, 0x4285, 2);
        element(&mut head, EBML, &ebml);
        put_id(&mut head, SEGMENT);
        head.extend_from_slice(&[0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]);
        let mut info = Vec::new();
        uint(&mut info, TIMESTAMP_SCALE, 1_000_000);
        element(&mut info, MUXING_APP, b"bifrons");
        element(&mut info, WRITING_APP, b"bifrons");
        put_id(&mut info, DURATION);
        put_size(&mut info, 8);
        let duration_in_info = info.len();
        info.extend_from_slice(&0f64.to_be_bytes());
        put_id(&mut head, INFO);
        put_size(&mut head, info.len() as u64);
        let duration_at = (head.len() + duration_in_info) as u64;
        head.extend_from_slice(&info);
        let mut video = Vec::new();
        uint(&mut video, PIXEL_WIDTH, u64::from(width));
        uint(&mut video, PIXEL_HEIGHT, u64::from(height));
        let mut track = Vec::new();
        uint(&mut track, TRACK_NUMBER, 1);
        uint(&mut track, TRACK_UID, 1);
        uint(&mut track, TRACK_TYPE, 1);
        uint(&mut track, FLAG_LACING, 0);
        element(&mut track, CODEC_ID, b"V_MPEG4/ISO/AVC");
        element(&mut track, CODEC_PRIVATE, avcc);
        element(&mut track, VIDEO, &video);
        let mut tracks = Vec::new();
        element(&mut tracks, TRACK_ENTRY, &track);
        element(&mut head, TRACKS, &tracks);
        let start = out.stream_position()?;
        out.write_all(&head)?;
        Ok(Self {
            out,
            duration_at: start + duration_at,
            cluster: None,
            first_ms: None,
            last_ms: 0,
            frames: 0,
            written: head.len() as u64,
        })
    }

    /// Adds one access unit presented at `timestamp_ms` (any origin: the first frame is 0 in
    /// the file; earlier timestamps than the first are clamped to it) made of `nalus` (NAL
    /// units, header byte first). A keyframe starts a new cluster.
    pub fn write_frame(
        &mut self,
        timestamp_ms: u64,
        keyframe: bool,
        nalus: &[&[u8]],
    ) -> io::Result<()> {
        let first = *self.first_ms.get_or_insert(timestamp_ms);
        let t = timestamp_ms.saturating_sub(first).max(self.last_ms);
        let new_cluster = match &self.cluster {
            None => true,
            Some((start, blocks)) => {
                (keyframe && !blocks.is_empty() && t > *start) || t - start > MAX_CLUSTER_MS
            }
        };
        if new_cluster {
            self.flush_cluster()?;
            let mut blocks = Vec::with_capacity(64 * 1024);
            uint(&mut blocks, CLUSTER_TIMESTAMP, t);
            self.cluster = Some((t, blocks));
        }
        let Some((start, blocks)) = &mut self.cluster else {
            return Ok(());
        };
        let size: usize = 4 + nalus.iter().map(|n| 4 + n.len()).sum::<usize>();
        put_id(blocks, SIMPLE_BLOCK);
        put_size(blocks, size as u64);
        blocks.push(0x81);
        blocks.extend_from_slice(&((t - *start) as i16).to_be_bytes());
        blocks.push(if keyframe { 0x80 } else { 0 });
        for n in nalus {
            blocks.extend_from_slice(&(n.len() as u32).to_be_bytes());
            blocks.extend_from_slice(n);
        }
        self.last_ms = t;
        self.frames += 1;
        Ok(())
    }

    fn flush_cluster(&mut self) -> io::Result<()> {
        let Some((_, blocks)) = self.cluster.take() else {
            return Ok(());
        };
        let mut head = Vec::with_capacity(12);
        put_id(&mut head, CLUSTER);
        put_size(&mut head, blocks.len() as u64);
        self.out.write_all(&head)?;
        self.out.write_all(&blocks)?;
        self.written += (head.len() + blocks.len()) as u64;
        Ok(())
    }

    /// Frames written so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Writes the last cluster and the Duration (`frame_ms` more than the last frame's
    /// timestamp); returns the output, the duration in ms and the bytes written.
    pub fn finish(mut self, frame_ms: u64) -> io::Result<(W, u64, u64)> {
        self.flush_cluster()?;
        let duration = if self.frames == 0 {
            0
        } else {
            self.last_ms + frame_ms
        };
        let end = self.out.stream_position()?;
        self.out.seek(SeekFrom::Start(self.duration_at))?;
        self.out.write_all(&(duration as f64).to_be_bytes())?;
        self.out.seek(SeekFrom::Start(end))?;
        self.out.flush()?;
        Ok((self.out, duration, self.written))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    const SPS: &[u8] = &[0x67, 0x42, 0xc0, 0x1e, 0xd9];
    const PPS: &[u8] = &[0x68, 0xce, 0x3c, 0x80];

    #[test]
    fn header_frames_and_duration() {
        let avcc = avc_decoder_configuration(SPS, PPS).unwrap();
        assert_eq!(&avcc[..6], &[1, 0x42, 0xc0, 0x1e, 0xff, 0xe1]);
        let mut w = MatroskaH264Writer::new(Cursor::new(Vec::new()), 640, 360, &avcc).unwrap();
        w.write_frame(1000, true, &[SPS, PPS, &[0x65, 1, 2]])
            .unwrap();
        w.write_frame(1033, false, &[&[0x41, 3]]).unwrap();
        w.write_frame(3000, true, &[&[0x65, 4]]).unwrap();
        let (out, duration, written) = w.finish(33).unwrap();
        let bytes = out.into_inner();
        assert_eq!(duration, 2033);
        assert_eq!(written, bytes.len() as u64);
        assert_eq!(&bytes[..4], &[0x1A, 0x45, 0xDF, 0xA3]);
        let find = |pat: &[u8]| bytes.windows(pat.len()).position(|w| w == pat);
        assert!(find(b"V_MPEG4/ISO/AVC").is_some());
        assert!(find(&avcc).is_some());
        // Two clusters: one per keyframe.
        assert_eq!(
            bytes
                .windows(4)
                .filter(|w| *w == [0x1F, 0x43, 0xB6, 0x75])
                .count(),
            2
        );
        // The Duration float.
        let d = find(&[0x44, 0x89]).unwrap();
        let value = f64::from_be_bytes(bytes[d + 10..d + 18].try_into().unwrap());
        assert_eq!(value, 2033.0);
    }

    #[test]
    fn no_configuration_from_a_short_sps() {
        assert_eq!(avc_decoder_configuration(&[0x67, 0x42], PPS), None);
    }
}
