//! Playing a message to a phone: the audio packets of its Ogg/Opus file ([`opus_packets`],
//! RFC 3533 pages, RFC 7845 header packets skipped) are decoded and resampled to 8 kHz by a
//! job on `services::workers` ([`DecodeJob`]), never on the async runtime; the menu then
//! sends the result as G.711 ([`super::tones::Prompt`]).

use std::time::Duration;

use bifrons_transcoding::opus_codec::OpusDecoder;
use bifrons_transcoding::resample::Resampler;
use tokio::sync::oneshot;

use super::tones::{Prompt, G711_RATE};
use crate::services::workers::{JobStatus, MediaJob};

/// Length of the fixed part of an Ogg page header (RFC 3533 §6), bytes.
const PAGE_HEADER: usize = 27;
/// Opus packets decoded per 20 ms tick: a minute of message in about a second of ticks,
/// without holding the worker long.
const PACKETS_PER_TICK: usize = 64;
/// Longest message played, packets of 20 ms (an hour).
pub const MAX_PACKETS: usize = 180_000;

/// The audio packets of an Ogg Opus stream, in order: pages read up to the first torn or
/// invalid one (a message cut by a crash plays up to there), packets spanning pages joined,
/// the `OpusHead` and `OpusTags` header packets left out. Never panics, whatever the bytes.
pub fn opus_packets(data: &[u8]) -> Vec<Vec<u8>> {
    let mut packets = Vec::new();
    let mut partial: Vec<u8> = Vec::new();
    let mut pos = 0usize;
    while let Some(header) = data.get(pos..pos + PAGE_HEADER) {
        if &header[..4] != b"OggS" || header[4] != 0 || packets.len() >= MAX_PACKETS + 2 {
            break;
        }
        let segments = usize::from(header[26]);
        let Some(lacing) = data.get(pos + PAGE_HEADER..pos + PAGE_HEADER + segments) else {
            break;
        };
        let body_len: usize = lacing.iter().map(|&l| usize::from(l)).sum();
        let mut at = pos + PAGE_HEADER + segments;
        if data.len() < at + body_len {
            break;
        }
        for &len in lacing {
            let len = usize::from(len);
            partial.extend_from_slice(&data[at..at + len]);
            at += len;
            // A lacing value under 255 ends a packet (RFC 3533 §5).
            if len < 255 {
                packets.push(std::mem::take(&mut partial));
            }
        }
        pos = at;
    }
    packets.retain(|p| !p.starts_with(b"OpusHead") && !p.starts_with(b"OpusTags"));
    packets.truncate(MAX_PACKETS);
    packets
}

/// Decodes a message's Opus packets to an 8 kHz [`Prompt`], a few packets per tick.
pub struct DecodeJob {
    packets: std::vec::IntoIter<Vec<u8>>,
    decoder: OpusDecoder,
    resampler: Resampler,
    pcm: Vec<i16>,
    ts: u32,
    done: Option<oneshot::Sender<Prompt>>,
}

impl DecodeJob {
    /// A job decoding `packets`; the prompt goes to `done` when all are decoded.
    ///
    /// Errors: the Opus decoder or the resampler cannot be made.
    pub fn new(
        packets: Vec<Vec<u8>>,
        done: oneshot::Sender<Prompt>,
    ) -> Result<Self, bifrons_transcoding::TranscodeError> {
        Ok(Self {
            pcm: Vec::with_capacity(packets.len() * 160),
            packets: packets.into_iter(),
            decoder: OpusDecoder::new(1)?,
            resampler: Resampler::new(48_000, G711_RATE, 1)?,
            ts: 0,
            done: Some(done),
        })
    }
}

impl MediaJob for DecodeJob {
    fn tick(&mut self, _now: Duration) -> JobStatus {
        for _ in 0..PACKETS_PER_TICK {
            let Some(packet) = self.packets.next() else {
                if let Some(done) = self.done.take() {
                    let _ = done.send(Prompt::from_pcm(&self.pcm));
                }
                return JobStatus::Done;
            };
            match self
                .decoder
                .decode(&packet, self.ts)
                .and_then(|frame| self.resampler.process(&frame))
            {
                Ok(frame) => self.pcm.extend_from_slice(&frame.samples),
                Err(e) => tracing::debug!(error = %e, "voicemail playback: packet not decoded"),
            }
            self.ts = self.ts.wrapping_add(960);
        }
        JobStatus::Continue
    }

    fn name(&self) -> &str {
        "voicemail opus→g711"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// One Ogg page holding `packets` (each under 255 bytes or split by lacing).
    fn page(packets: &[&[u8]]) -> Vec<u8> {
        let mut lacing = Vec::new();
        let mut body = Vec::new();
        for p in packets {
            let mut n = p.len();
            while n >= 255 {
                lacing.push(255);
                n -= 255;
            }
            lacing.push(n as u8);
            body.extend_from_slice(p);
        }
        let mut out = b"OggS\0".to_vec();
        out.extend_from_slice(&[0; 21]);
        out.push(lacing.len() as u8);
        out.extend_from_slice(&lacing);
        out.extend_from_slice(&body);
        out
    }

    #[test]
    fn header_packets_are_skipped_and_long_packets_joined() {
        let long = vec![7u8; 300];
        let mut file = page(&[b"OpusHead\x01\x01\x38\x01"]);
        file.extend(page(&[b"OpusTags"]));
        file.extend(page(&[b"a", &long, b"bc"]));
        file.extend_from_slice(b"OggS\0torn");
        let packets = opus_packets(&file);
        assert_eq!(packets, vec![b"a".to_vec(), long, b"bc".to_vec()]);
    }

    proptest! {
        #[test]
        fn any_bytes_read_without_panicking(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = opus_packets(&data);
        }

        #[test]
        fn pages_read_back_their_packets(packets in proptest::collection::vec(proptest::collection::vec(1u8..=255, 1..600), 1..6)) {
            let refs: Vec<&[u8]> = packets.iter().map(|p| p.as_slice()).collect();
            // Lacing of one page: 255 values at most.
            prop_assume!(packets.iter().map(|p| p.len() / 255 + 1).sum::<usize>() <= 255);
            prop_assert_eq!(opus_packets(&page(&refs)), packets);
        }
    }
}
