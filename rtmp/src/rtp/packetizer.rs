//! Access unit → RTP payloads.

use bytes::{BufMut, Bytes, BytesMut};

use super::{flv_ms_to_rtp, H264RtpPacket};
use crate::media::{AvcConfig, VideoFrame};

const NAL_SPS: u8 = 7;
const NAL_AUD: u8 = 9;
const STAP_A: u8 = 24;
const FU_A: u8 = 28;

/// Splits access units into RTP packets no larger than a payload budget.
#[derive(Debug)]
pub struct H264Packetizer {
    max_payload: usize,
    next_seq: u16,
    sps: Vec<Bytes>,
    pps: Vec<Bytes>,
}

impl H264Packetizer {
    /// A packetizer producing payloads of at most `max_payload` bytes (≥ 16), numbering packets
    /// from `initial_seq`.
    pub fn new(max_payload: usize, initial_seq: u16) -> Self {
        Self {
            max_payload: max_payload.max(16),
            next_seq: initial_seq,
            sps: Vec::new(),
            pps: Vec::new(),
        }
    }

    /// Remembers the parameter sets to send before every keyframe, so a viewer joining at any
    /// keyframe (or recovering from loss) can decode without a separate signalling channel.
    pub fn set_config(&mut self, config: &AvcConfig) {
        self.sps = config.sps.clone();
        self.pps = config.pps.clone();
    }

    /// Sequence number the next packet will carry.
    pub fn next_seq(&self) -> u16 {
        self.next_seq
    }

    /// Packetizes one access unit, appending its packets to `out`. The RTP timestamp is the
    /// presentation time on the 90 kHz clock; the last packet carries the marker bit.
    pub fn packetize(&mut self, frame: &VideoFrame, out: &mut Vec<H264RtpPacket>) {
        self.packetize_at(frame, flv_ms_to_rtp(frame.pts_ms()), out);
    }

    /// Like [`H264Packetizer::packetize`], but the RTP timestamp is the decode time: for
    /// receivers that need timestamps in decode order, as WebRTC's (a frame older than the
    /// last decoded one is dropped there, which B-frames in presentation time would be).
    /// With B-frames, pictures are then shown up to the composition offset early or late.
    pub fn packetize_decode_order(&mut self, frame: &VideoFrame, out: &mut Vec<H264RtpPacket>) {
        self.packetize_at(frame, flv_ms_to_rtp(frame.dts_ms), out);
    }

    fn packetize_at(&mut self, frame: &VideoFrame, timestamp: u32, out: &mut Vec<H264RtpPacket>) {
        let mut nalus: Vec<Bytes> = Vec::with_capacity(frame.nalus.len() + 2);
        let has_sps = frame
            .nalus
            .iter()
            .any(|n| n.first().map(|b| b & 0x1f) == Some(NAL_SPS));
        if frame.keyframe && !has_sps {
            nalus.extend(self.sps.iter().cloned());
            nalus.extend(self.pps.iter().cloned());
        }
        // Access unit delimiters mean nothing once the marker bit frames the access unit.
        nalus.extend(
            frame
                .nalus
                .iter()
                .filter(|n| !n.is_empty() && n[0] & 0x1f != NAL_AUD)
                .cloned(),
        );
        let first = out.len();

        let mut i = 0;
        while i < nalus.len() {
            // Aggregate as many consecutive small NAL units as fit in one STAP-A.
            let mut size = 1 + 2 + nalus[i].len();
            let mut j = i + 1;
            while j < nalus.len() && size + 2 + nalus[j].len() <= self.max_payload {
                size += 2 + nalus[j].len();
                j += 1;
            }
            if j - i >= 2 && size <= self.max_payload {
                self.push_stap_a(&nalus[i..j], timestamp, out);
                i = j;
            } else if nalus[i].len() <= self.max_payload {
                self.push(nalus[i].clone(), timestamp, out);
                i += 1;
            } else {
                self.push_fu_a(&nalus[i], timestamp, out);
                i += 1;
            }
        }
        if let Some(last) = out[first..].last_mut() {
            last.marker = true;
        }
    }

    fn push(&mut self, payload: Bytes, timestamp: u32, out: &mut Vec<H264RtpPacket>) {
        out.push(H264RtpPacket {
            seq: self.next_seq,
            timestamp,
            marker: false,
            payload,
        });
        self.next_seq = self.next_seq.wrapping_add(1);
    }

    fn push_stap_a(&mut self, nalus: &[Bytes], timestamp: u32, out: &mut Vec<H264RtpPacket>) {
        let mut payload =
            BytesMut::with_capacity(1 + nalus.iter().map(|n| n.len() + 2).sum::<usize>());
        // F is the OR of the aggregated F bits; NRI their maximum (RFC 6184 §5.7).
        let f = nalus.iter().fold(0, |acc, n| acc | (n[0] & 0x80));
        let nri = nalus.iter().map(|n| n[0] & 0x60).max().unwrap_or(0);
        payload.put_u8(f | nri | STAP_A);
        for nalu in nalus {
            payload.put_u16(nalu.len() as u16);
            payload.put_slice(nalu);
        }
        self.push(payload.freeze(), timestamp, out);
    }

    fn push_fu_a(&mut self, nalu: &Bytes, timestamp: u32, out: &mut Vec<H264RtpPacket>) {
        let header = nalu[0];
        let indicator = (header & 0xe0) | FU_A;
        let body = nalu.slice(1..);
        let chunk = self.max_payload - 2;
        let count = body.len().div_ceil(chunk);
        for (k, start) in (0..body.len()).step_by(chunk).enumerate() {
            let end = (start + chunk).min(body.len());
            let mut fu_header = header & 0x1f;
            if k == 0 {
                fu_header |= 0x80;
            }
            if k + 1 == count {
                fu_header |= 0x40;
            }
            let mut payload = BytesMut::with_capacity(2 + end - start);
            payload.put_u8(indicator);
            payload.put_u8(fu_header);
            payload.put_slice(&body[start..end]);
            self.push(payload.freeze(), timestamp, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(keyframe: bool, nalus: Vec<Vec<u8>>) -> VideoFrame {
        VideoFrame {
            dts_ms: 1000,
            cts_ms: 40,
            keyframe,
            nalus: nalus.into_iter().map(Bytes::from).collect(),
        }
    }

    #[test]
    fn keyframe_gets_parameter_sets_in_a_stap_a_and_large_idr_in_fu_a() {
        let mut p = H264Packetizer::new(100, 65534);
        p.set_config(&AvcConfig {
            profile: 66,
            compatibility: 0,
            level: 31,
            nal_length_size: 4,
            sps: vec![Bytes::from_static(&[0x67, 1, 2])],
            pps: vec![Bytes::from_static(&[0x68, 3])],
        });
        let mut idr = vec![0x65];
        idr.extend(std::iter::repeat_n(7, 250));
        let mut out = Vec::new();
        p.packetize(&frame(true, vec![vec![0x09, 0xf0], idr]), &mut out);
        assert_eq!(out[0].payload[0] & 0x1f, STAP_A);
        assert_eq!(&out[0].payload[1..], &[0, 3, 0x67, 1, 2, 0, 2, 0x68, 3]);
        assert!(out[1..]
            .iter()
            .all(|p| p.payload[0] & 0x1f == FU_A && p.payload.len() <= 100));
        assert_eq!(out[1].payload[1], 0x80 | 5);
        assert_eq!(out.last().unwrap().payload[1], 0x40 | 5);
        assert_eq!(out.iter().filter(|p| p.marker).count(), 1);
        assert!(out.last().unwrap().marker);
        assert_eq!(
            out.iter().map(|p| p.seq).collect::<Vec<_>>(),
            vec![65534, 65535, 0, 1]
        );
        assert!(out.iter().all(|p| p.timestamp == 1040 * 90));
    }

    #[test]
    fn decode_order_timestamps_ignore_the_composition_offset() {
        let mut p = H264Packetizer::new(1200, 0);
        let mut out = Vec::new();
        p.packetize_decode_order(&frame(false, vec![vec![0x41, 1]]), &mut out);
        assert_eq!(out[0].timestamp, 1000 * 90);
        p.packetize(&frame(false, vec![vec![0x41, 1]]), &mut out);
        assert_eq!(out[1].timestamp, 1040 * 90);
        assert_eq!(out[1].seq, 1);
    }

    #[test]
    fn small_single_nal_is_sent_as_is() {
        let mut p = H264Packetizer::new(1200, 0);
        let mut out = Vec::new();
        p.packetize(&frame(false, vec![vec![0x41, 1, 2, 3]]), &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(&out[0].payload[..], &[0x41, 1, 2, 3]);
        assert!(out[0].marker);
    }
}
