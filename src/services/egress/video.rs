//! The video of an egress: H.264 RTP passed through as access units, or VP8 RTP decoded and
//! encoded to H.264 (one encoder per mountpoint, shared by all its targets). Either way the
//! output is H.264 access units with their RTP timestamp; the parameter sets (SPS/PPS) are
//! taken out of the access units for the AVC sequence header.
//!
//! Runs on a codec worker (see [`super::job`]), never on the async runtime.

use bifrons_rtmp::rtp::{DepacketizedFrame, H264Depacketizer, H264RtpPacket};
use bifrons_transcoding::pipeline::Vp8ToH264;
use bifrons_transcoding::video::h264::H264EncoderConfig;
use bytes::Bytes;

use super::still::StillVideo;
use super::vp8_depacketizer::Vp8Depacketizer;
use crate::media::RtpPacket;

/// Packets the H.264 depacketizer waits for a late one.
const REORDER_WINDOW: u16 = 64;

/// Longest time between IDR pictures of the transcoded H.264 (ms, 90 kHz media time):
/// RTMP services and players join on an IDR, and most ask for one every 2 s at most.
pub const MAX_KEYFRAME_INTERVAL_MS: u32 = 2_000;

/// One H.264 access unit ready for FLV.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessUnit {
    /// RTP timestamp (90 kHz) of the picture.
    pub timestamp: u32,
    /// An IDR picture.
    pub keyframe: bool,
    /// Picture NAL units, without SPS, PPS or access unit delimiters.
    pub nalus: Vec<Bytes>,
    /// The SPS and PPS that came with it (in band), if any.
    pub parameter_sets: Option<(Vec<Bytes>, Vec<Bytes>)>,
}

/// Which video route an egress takes.
pub enum VideoRoute {
    /// H.264 from the mountpoint, as it is.
    Passthrough {
        /// RTP → access units.
        depacketizer: H264Depacketizer,
        /// Reused output of the depacketizer.
        frames: Vec<DepacketizedFrame>,
    },
    /// VP8 from the mountpoint, transcoded.
    Transcode {
        /// RTP → VP8 frames.
        depacketizer: Vp8Depacketizer,
        /// VP8 decoder and H.264 encoder.
        pipeline: Box<Vp8ToH264>,
        /// A frame was lost or did not decode: wait for a VP8 keyframe.
        waiting_for_keyframe: bool,
        /// RTP timestamp of the last IDR produced.
        last_idr: Option<u32>,
    },
    /// No video in the mountpoint: a still picture ([`super::still`]), paced by the audio.
    /// Its `push` takes the picture's 90 kHz timestamp (from [`StillVideo::due`]) as a
    /// packet without payload.
    Still(Box<StillVideo>),
}

impl VideoRoute {
    /// H.264 passthrough.
    pub fn passthrough() -> Self {
        VideoRoute::Passthrough {
            depacketizer: H264Depacketizer::new(REORDER_WINDOW),
            frames: Vec::with_capacity(4),
        }
    }

    /// VP8 → H.264 at `bitrate` bit/s and a nominal `fps`, an IDR at least every
    /// [`MAX_KEYFRAME_INTERVAL_MS`]. Errors when the codecs cannot start.
    pub fn transcode(bitrate: u32, fps: f32) -> Result<Self, String> {
        let config = H264EncoderConfig {
            bitrate,
            fps,
            keyframe_interval: ((fps * MAX_KEYFRAME_INTERVAL_MS as f32 / 1000.0) as u32).max(1),
        };
        let pipeline = Vp8ToH264::new(config).map_err(|e| e.to_string())?;
        Ok(VideoRoute::Transcode {
            depacketizer: Vp8Depacketizer::new(),
            pipeline: Box::new(pipeline),
            waiting_for_keyframe: true,
            last_idr: None,
        })
    }

    /// The video of an audio-only mountpoint: a still picture when `still` (`[egress]
    /// audio_only_video = "still"`), else none.
    pub fn for_audio_only(still: bool) -> Option<Self> {
        still.then(|| VideoRoute::Still(Box::default()))
    }

    /// The still picture's pacing, when the route is one.
    pub fn still(&mut self) -> Option<&mut StillVideo> {
        match self {
            VideoRoute::Still(s) => Some(s),
            _ => None,
        }
    }

    /// Whether the route encodes (VP8 transcoded, or the still picture).
    pub fn transcodes(&self) -> bool {
        matches!(self, VideoRoute::Transcode { .. } | VideoRoute::Still(_))
    }

    /// Makes the next transcoded picture an IDR (a target just connected); nothing for
    /// passthrough, whose targets wait for the source's next keyframe.
    pub fn request_keyframe(&mut self) {
        match self {
            VideoRoute::Transcode { pipeline, .. } => pipeline.request_keyframe(),
            VideoRoute::Still(still) => still.request_keyframe(),
            VideoRoute::Passthrough { .. } => {}
        }
    }

    /// Takes one RTP packet; appends the access units it completes to `out`.
    pub fn push(&mut self, packet: &RtpPacket, out: &mut Vec<AccessUnit>) {
        match self {
            VideoRoute::Still(still) => out.extend(still.picture(packet.timestamp)),
            VideoRoute::Passthrough {
                depacketizer,
                frames,
            } => {
                depacketizer.push(
                    H264RtpPacket {
                        seq: packet.sequence_number,
                        timestamp: packet.timestamp,
                        marker: packet.marker,
                        payload: packet.payload.clone(),
                    },
                    frames,
                );
                for f in frames.drain(..) {
                    out.push(split_parameter_sets(f.timestamp, f.keyframe, f.nalus));
                }
            }
            VideoRoute::Transcode {
                depacketizer,
                pipeline,
                waiting_for_keyframe,
                last_idr,
            } => {
                let Some(frame) = depacketizer.push(
                    packet.sequence_number,
                    packet.timestamp,
                    packet.marker,
                    &packet.payload,
                ) else {
                    return;
                };
                if *waiting_for_keyframe && !frame.keyframe {
                    return;
                }
                *waiting_for_keyframe = false;
                let due = last_idr.is_none_or(|t| {
                    frame.timestamp.wrapping_sub(t) >= MAX_KEYFRAME_INTERVAL_MS * 90 - 90 * 20
                });
                if due {
                    pipeline.request_keyframe();
                }
                match pipeline.push(&frame.data, frame.timestamp) {
                    Ok(Some(encoded)) => {
                        if encoded.keyframe {
                            *last_idr = Some(encoded.timestamp);
                        }
                        let nalus = annex_b_nalus(&encoded.data);
                        out.push(split_parameter_sets(
                            encoded.timestamp,
                            encoded.keyframe,
                            nalus,
                        ));
                    }
                    Ok(None) => {}
                    Err(e) => {
                        tracing::debug!(error = %e, "VP8 frame not transcoded; waiting for a keyframe");
                        *waiting_for_keyframe = true;
                    }
                }
            }
        }
    }
}

/// Moves SPS (7) and PPS (8) out of an access unit and drops delimiters (9).
pub(super) fn split_parameter_sets(
    timestamp: u32,
    keyframe: bool,
    nalus: Vec<Bytes>,
) -> AccessUnit {
    let (mut sps, mut pps, mut picture) = (Vec::new(), Vec::new(), Vec::with_capacity(nalus.len()));
    for n in nalus {
        match n.first().map(|h| h & 0x1f) {
            Some(7) => sps.push(n),
            Some(8) => pps.push(n),
            Some(9) | None => {}
            Some(_) => picture.push(n),
        }
    }
    AccessUnit {
        timestamp,
        keyframe,
        nalus: picture,
        parameter_sets: (!sps.is_empty() && !pps.is_empty()).then_some((sps, pps)),
    }
}

/// The NAL units of an Annex-B stream (start codes of 3 or 4 bytes).
pub fn annex_b_nalus(data: &[u8]) -> Vec<Bytes> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= data.len() {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut nalus = Vec::with_capacity(starts.len());
    for (k, &s) in starts.iter().enumerate() {
        let mut end = starts.get(k + 1).map_or(data.len(), |&n| n - 3);
        // A 4-byte start code leaves a zero before the next 3-byte one.
        while end > s && starts.get(k + 1).is_some() && data[end - 1] == 0 {
            end -= 1;
        }
        if end > s {
            nalus.push(Bytes::copy_from_slice(&data[s..end]));
        }
    }
    nalus
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annex_b_splits_on_both_start_codes() {
        let data = [
            0, 0, 0, 1, 0x67, 1, 0, 0, 1, 0x68, 2, 0, 0, 0, 1, 0x65, 3, 4,
        ];
        let nalus = annex_b_nalus(&data);
        assert_eq!(
            nalus,
            vec![
                Bytes::from_static(&[0x67, 1]),
                Bytes::from_static(&[0x68, 2]),
                Bytes::from_static(&[0x65, 3, 4])
            ]
        );
        let au = split_parameter_sets(5, true, nalus);
        assert_eq!(au.nalus, vec![Bytes::from_static(&[0x65, 3, 4])]);
        assert!(au.parameter_sets.is_some());
    }

    #[test]
    fn transcoded_vp8_comes_out_as_h264_with_an_idr_every_two_seconds() {
        use bifrons_transcoding::video::vp8::{Vp8Encoder, Vp8EncoderConfig};
        use bifrons_transcoding::video::VideoFrame;
        let mut encoder = Vp8Encoder::new(Vp8EncoderConfig {
            width: 160,
            height: 120,
            ..Vp8EncoderConfig::default()
        })
        .unwrap();
        let mut route = VideoRoute::transcode(300_000, 30.0).unwrap();
        let mut out = Vec::new();
        let mut seq = 0u16;
        for i in 0..150usize {
            let ts = (i as u32) * 3000;
            let pixels = (0..VideoFrame::i420_len(160, 120))
                .map(|p| ((p + i * 3) % 251) as u8)
                .collect();
            let picture = VideoFrame::new(160, 120, pixels, ts).unwrap();
            for encoded in encoder.encode(&picture).unwrap() {
                let mut payload = vec![0x10];
                payload.extend_from_slice(&encoded.data);
                seq = seq.wrapping_add(1);
                route.push(
                    &RtpPacket {
                        payload_type: 96,
                        sequence_number: seq,
                        timestamp: ts,
                        ssrc: 1,
                        marker: true,
                        payload: Bytes::from(payload),
                    },
                    &mut out,
                );
            }
        }
        assert!(out.len() > 140, "{} access units", out.len());
        assert!(out[0].keyframe && out[0].parameter_sets.is_some());
        let idrs: Vec<u32> = out
            .iter()
            .filter(|a| a.keyframe)
            .map(|a| a.timestamp)
            .collect();
        assert!(idrs.len() >= 3, "IDRs at {idrs:?}");
        for pair in idrs.windows(2) {
            assert!(
                pair[1] - pair[0] <= MAX_KEYFRAME_INTERVAL_MS * 90,
                "{idrs:?}"
            );
        }
    }
}
