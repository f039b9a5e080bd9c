//! The tone a room dial-in caller hears while the room waits for its PIN: [`PROMPT_HZ`] for
//! [`BEEP_MS`], then silence, every [`CYCLE_MS`], until the caller types the first digit
//! (again after a wrong PIN).
//!
//! The cycle is encoded once per codec (Opus 48 kHz mono, PCMU, PCMA) on a blocking thread
//! and kept; sending it is handing the same 20 ms payloads to the call's RTP endpoint.

use std::sync::{Arc, OnceLock};

use bifrons_transcoding::g711::{self, G711Law};
use bifrons_transcoding::opus_codec::{OpusEncoder, OpusEncoderConfig, OpusFrameDuration};
use bifrons_transcoding::AudioFrame;

/// Frequency of the prompt, Hz.
pub const PROMPT_HZ: f64 = 850.0;
/// Length of the beep, ms.
pub const BEEP_MS: u32 = 600;
/// One prompt cycle (beep and silence), ms.
pub const CYCLE_MS: u32 = 2_000;
/// Peak amplitude of the beep (of 32767): about −12 dBFS.
const AMPLITUDE: f64 = 8_000.0;
/// Packet length, ms.
const PTIME_MS: u32 = 20;

/// The codecs a prompt is encoded in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromptCodec {
    /// Opus, 48 kHz clock.
    Opus,
    /// G.711 μ-law, 8 kHz.
    Pcmu,
    /// G.711 A-law, 8 kHz.
    Pcma,
}

impl PromptCodec {
    /// Sample rate (and RTP clock), Hz.
    pub fn rate(self) -> u32 {
        match self {
            PromptCodec::Opus => 48_000,
            PromptCodec::Pcmu | PromptCodec::Pcma => 8_000,
        }
    }

    /// RTP timestamp units per packet.
    pub fn samples_per_packet(self) -> u32 {
        self.rate() * PTIME_MS / 1000
    }
}

/// One prompt cycle: a payload per 20 ms.
pub type Prompt = Arc<Vec<Vec<u8>>>;

/// The PCM of one cycle at `rate` Hz.
fn cycle_pcm(rate: u32) -> Vec<i16> {
    let total = (rate * CYCLE_MS / 1000) as usize;
    let beep = (rate * BEEP_MS / 1000) as usize;
    // 10 ms fades so the beep does not click.
    let fade = (rate / 100) as usize;
    (0..total)
        .map(|i| {
            if i >= beep {
                return 0;
            }
            let envelope = (i.min(beep - i) as f64 / fade as f64).min(1.0);
            let phase = 2.0 * std::f64::consts::PI * PROMPT_HZ * i as f64 / f64::from(rate);
            (AMPLITUDE * envelope * phase.sin()) as i16
        })
        .collect()
}

fn encode(codec: PromptCodec) -> Result<Vec<Vec<u8>>, String> {
    let pcm = cycle_pcm(codec.rate());
    let per_packet = codec.samples_per_packet() as usize;
    match codec {
        PromptCodec::Pcmu | PromptCodec::Pcma => {
            let law = if codec == PromptCodec::Pcmu {
                G711Law::Mu
            } else {
                G711Law::A
            };
            Ok(pcm
                .chunks(per_packet)
                .map(|chunk| {
                    let mut out = Vec::with_capacity(chunk.len());
                    g711::encode_into(law, chunk, &mut out);
                    out
                })
                .collect())
        }
        PromptCodec::Opus => {
            let mut encoder = OpusEncoder::new(OpusEncoderConfig {
                channels: 1,
                sample_rate: bifrons_transcoding::opus_codec::OPUS_RATE,
                bitrate: 24_000,
                frame: OpusFrameDuration::Ms20,
                fec: false,
                dtx: false,
                expected_loss_percent: 0,
                complexity: 5,
            })
            .map_err(|e| e.to_string())?;
            pcm.chunks(per_packet)
                .enumerate()
                .map(|(i, chunk)| {
                    let frame = AudioFrame::new(chunk.to_vec(), 48_000, 1, (i * per_packet) as u32)
                        .map_err(|e| e.to_string())?;
                    encoder
                        .encode(&frame)
                        .map(<[u8]>::to_vec)
                        .map_err(|e| e.to_string())
                })
                .collect()
        }
    }
}

/// The prompt in `codec`, encoded on a blocking thread the first time and kept. Errors when
/// the encoder cannot start (the caller then gets no prompt, the PIN still works).
pub async fn prompt(codec: PromptCodec) -> Result<Prompt, String> {
    static CACHE: [OnceLock<Prompt>; 3] = [OnceLock::new(), OnceLock::new(), OnceLock::new()];
    let slot = &CACHE[codec as usize];
    if let Some(p) = slot.get() {
        return Ok(p.clone());
    }
    let encoded = tokio::task::spawn_blocking(move || encode(codec))
        .await
        .map_err(|e| e.to_string())??;
    Ok(slot.get_or_init(|| Arc::new(encoded)).clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn share(pcm: &[i16], hz: f64, rate: f64) -> f64 {
        let w = 2.0 * std::f64::consts::PI * hz / rate;
        let coeff = 2.0 * w.cos();
        let (mut s1, mut s2, mut total) = (0.0, 0.0, 0.0);
        for &x in pcm {
            let x = f64::from(x);
            let s0 = x + coeff * s1 - s2;
            s2 = s1;
            s1 = s0;
            total += x * x;
        }
        2.0 * (s1 * s1 + s2 * s2 - coeff * s1 * s2) / pcm.len() as f64 / total
    }

    #[tokio::test]
    async fn the_g711_prompt_is_a_beep_at_the_prompt_frequency_then_silence() {
        let p = prompt(PromptCodec::Pcmu).await.unwrap();
        assert_eq!(p.len(), (CYCLE_MS / PTIME_MS) as usize);
        assert!(p.iter().all(|packet| packet.len() == 160));
        let mut pcm = Vec::new();
        for packet in p.iter().take((BEEP_MS / PTIME_MS) as usize) {
            g711::decode_into(G711Law::Mu, packet, &mut pcm);
        }
        assert!(share(&pcm, PROMPT_HZ, 8000.0) > 0.8);
        let mut quiet = Vec::new();
        g711::decode_into(G711Law::Mu, &p[p.len() - 1], &mut quiet);
        assert!(quiet.iter().all(|s| s.abs() < 16));
    }

    #[tokio::test]
    async fn the_opus_prompt_has_one_packet_per_20_ms() {
        let p = prompt(PromptCodec::Opus).await.unwrap();
        assert_eq!(p.len(), (CYCLE_MS / PTIME_MS) as usize);
        assert!(p.iter().all(|packet| !packet.is_empty()));
        assert_eq!(PromptCodec::Opus.samples_per_packet(), 960);
    }
}
