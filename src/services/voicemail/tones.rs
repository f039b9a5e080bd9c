//! What mailbox calls hear: tones made once as G.711 in both laws ([`Prompt`]), Opus packets
//! made on demand for Opus calls ([`Prompt::with_opus`]), and [`play`], which sends a prompt in
//! real time in the codec the call negotiated (PCMU, payload type 0; PCMA, 8; or Opus, the
//! dynamic type of a 48 kHz RTP clock), so a PCMA or Opus caller hears the greeting as clearly
//! as a PCMU one.

use std::sync::Arc;
use std::time::Duration;

use bifrons_sip::g711::{alaw_encode, ulaw_encode};
use bifrons_sip::rtp::{RtpEndpoint, RtpEvent};
use bifrons_sip::CallEvent;
use tokio::sync::broadcast;

/// G.711 clock, Hz.
pub const G711_RATE: u32 = 8_000;
/// G.711 samples per 20 ms packet.
pub const PACKET_SAMPLES: usize = 160;
/// Amplitude of generated tones, fraction of full scale (about -10 dBFS).
const LEVEL: f64 = 0.3;

/// Opus RTP clock, Hz (RFC 7587 §4.1).
pub const OPUS_RATE: u32 = 48_000;
/// Samples of one 20 ms Opus packet at 48 kHz.
pub const OPUS_PACKET_SAMPLES: u32 = 960;

/// A sound ready to send: its 8 kHz samples in μ-law and in A-law, and (once
/// [`Prompt::with_opus`] made them) the same sound as 20 ms Opus packets.
#[derive(Debug, Clone, Default)]
pub struct Prompt {
    ulaw: Vec<u8>,
    alaw: Vec<u8>,
    opus: Option<Arc<Vec<Vec<u8>>>>,
}

impl Prompt {
    /// A prompt of 8 kHz 16-bit samples.
    pub fn from_pcm(pcm: &[i16]) -> Self {
        Self {
            ulaw: pcm.iter().map(|&s| ulaw_encode(s)).collect(),
            alaw: pcm.iter().map(|&s| alaw_encode(s)).collect(),
            opus: None,
        }
    }

    /// A prompt of 20 ms Opus packets only (a stored message played to an Opus call as it was
    /// recorded, without transcoding); a G.711 call hears nothing of it.
    pub fn from_opus(packets: Vec<Vec<u8>>) -> Self {
        Self {
            ulaw: Vec::new(),
            alaw: Vec::new(),
            opus: Some(Arc::new(packets)),
        }
    }

    /// The prompt with its Opus packets (mono, 20 ms, 48 kHz clock; the last one padded with
    /// silence), encoded from the μ-law samples. CPU work of a few ms per second of sound: call
    /// it on the blocking pool or a worker, never on the async runtime.
    ///
    /// Errors: the resampler or encoder could not be made or refused a frame.
    pub fn with_opus(mut self) -> Result<Self, bifrons_transcoding::TranscodeError> {
        use bifrons_sip::g711::ulaw_decode;
        use bifrons_transcoding::opus_codec::{OpusEncoder, OpusEncoderConfig};
        use bifrons_transcoding::resample::Resampler;
        use bifrons_transcoding::AudioFrame;
        if self.opus.is_some() {
            return Ok(self);
        }
        let pcm: Vec<i16> = self.ulaw.iter().map(|&b| ulaw_decode(b)).collect();
        let mut resampler = Resampler::new(G711_RATE, OPUS_RATE, 1)?;
        let mut wide = resampler
            .process(&AudioFrame {
                samples: pcm,
                sample_rate: G711_RATE,
                channels: 1,
                timestamp: 0,
            })?
            .samples;
        let frame = OPUS_PACKET_SAMPLES as usize;
        wide.resize(wide.len().div_ceil(frame) * frame, 0);
        let mut encoder = OpusEncoder::new(OpusEncoderConfig {
            fec: false,
            expected_loss_percent: 0,
            ..OpusEncoderConfig::default()
        })?;
        let mut packets = Vec::with_capacity(wide.len() / frame);
        for (i, chunk) in wide.chunks(frame).enumerate() {
            let packet = encoder.encode(&AudioFrame {
                samples: chunk.to_vec(),
                sample_rate: OPUS_RATE,
                channels: 1,
                timestamp: (i * frame) as u32,
            })?;
            packets.push(packet.to_vec());
        }
        self.opus = Some(Arc::new(packets));
        Ok(self)
    }

    /// A `hz` sine for `seconds`.
    pub fn tone(hz: f64, seconds: f64) -> Self {
        Self::from_pcm(&tone_pcm(hz, seconds))
    }

    /// `count` beeps of `hz`, each `on` long and followed by `off` of silence (seconds).
    pub fn beeps(count: usize, hz: f64, on: f64, off: f64) -> Self {
        let mut pcm = Vec::new();
        for _ in 0..count {
            pcm.extend(tone_pcm(hz, on));
            pcm.resize(pcm.len() + (f64::from(G711_RATE) * off) as usize, 0);
        }
        Self::from_pcm(&pcm)
    }

    /// The samples for RTP payload type `pt`: A-law for 8, μ-law otherwise.
    pub fn for_pt(&self, pt: u8) -> &[u8] {
        if pt == 8 {
            &self.alaw
        } else {
            &self.ulaw
        }
    }

    /// Length in 8 kHz samples (of its Opus packets, for a prompt made of them only).
    pub fn len(&self) -> usize {
        let opus = self.opus.as_ref().map_or(0, |p| p.len() * PACKET_SAMPLES);
        self.ulaw.len().max(opus)
    }

    /// Whether it has no samples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// 16-bit samples of a `hz` sine at 8 kHz for `seconds`.
fn tone_pcm(hz: f64, seconds: f64) -> Vec<i16> {
    let n = (f64::from(G711_RATE) * seconds) as usize;
    (0..n)
        .map(|i| {
            let phase = 2.0 * std::f64::consts::PI * hz * i as f64 / f64::from(G711_RATE);
            (LEVEL * 32767.0 * phase.sin()) as i16
        })
        .collect()
}

/// What ended a prompt early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interrupted {
    /// The caller hung up.
    HungUp,
    /// The caller pressed this key (only when keys interrupt).
    Key(char),
}

/// Sends `prompt` as 20 ms packets in real time in the call's codec, discarding the caller's
/// audio meanwhile: Opus packets when the call's RTP clock is [`OPUS_RATE`] (a prompt without
/// them, see [`Prompt::with_opus`], is sent as nothing for as long as it lasts), else G.711 in
/// the negotiated law. A DTMF digit (RFC 4733 or INFO) among `keys` stops it and is returned;
/// other digits are ignored. `Ok(())` when it played to the end.
pub async fn play(
    rtp: &RtpEndpoint,
    prompt: &Prompt,
    events: &mut broadcast::Receiver<CallEvent>,
    keys: &[char],
) -> Result<(), Interrupted> {
    let params = rtp.params();
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let opus = (params.clock_rate == OPUS_RATE).then(|| prompt.opus.clone().unwrap_or_default());
    let g711 = prompt.for_pt(params.pt);
    // One 20 ms packet per tick, for as long as the prompt lasts.
    let packets = prompt.len().div_ceil(PACKET_SAMPLES);
    let mut packet = 0;
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if packet == packets {
                    return Ok(());
                }
                match &opus {
                    Some(opus) => {
                        if let Some(p) = opus.get(packet) {
                            let _ = rtp.send_audio(p, OPUS_PACKET_SAMPLES);
                        }
                    }
                    None => {
                        let from = (packet * PACKET_SAMPLES).min(g711.len());
                        let chunk = &g711[from..(from + PACKET_SAMPLES).min(g711.len())];
                        if !chunk.is_empty() {
                            let _ = rtp.send_audio(chunk, chunk.len() as u32);
                        }
                    }
                }
                packet += 1;
            }
            ev = rtp.recv() => match ev {
                None => return Err(Interrupted::HungUp),
                Some(RtpEvent::Dtmf(d)) if keys.contains(&d) => return Err(Interrupted::Key(d)),
                Some(_) => {}
            },
            ev = events.recv() => match ev {
                Ok(CallEvent::Ended(_)) | Err(broadcast::error::RecvError::Closed) => {
                    return Err(Interrupted::HungUp)
                }
                Ok(CallEvent::Dtmf { digit, .. }) if keys.contains(&digit) => {
                    return Err(Interrupted::Key(digit))
                }
                _ => {}
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bifrons_sip::g711::{alaw_decode, ulaw_decode};

    #[test]
    fn both_laws_hold_the_same_tone() {
        let p = Prompt::tone(600.0, 0.5);
        assert_eq!(p.len(), 4000);
        let u: Vec<i16> = p.for_pt(0).iter().map(|&b| ulaw_decode(b)).collect();
        let a: Vec<i16> = p.for_pt(8).iter().map(|&b| alaw_decode(b)).collect();
        assert_ne!(p.for_pt(0), p.for_pt(8), "different encodings");
        for (x, y) in u.iter().zip(&a) {
            assert!((i32::from(*x) - i32::from(*y)).abs() < 700, "{x} vs {y}");
        }
        let peak = u.iter().map(|s| s.unsigned_abs()).max().unwrap();
        assert!((9000..=10500).contains(&peak), "peak {peak}");
    }

    #[test]
    fn opus_packets_hold_the_same_tone() {
        use bifrons_transcoding::opus_codec::OpusDecoder;
        let p = Prompt::tone(600.0, 0.5).with_opus().unwrap();
        let packets = p.opus.clone().unwrap();
        // 0.5 s: 25 packets of 20 ms.
        assert_eq!(packets.len(), 25);
        let mut dec = OpusDecoder::new(1).unwrap();
        let mut pcm = Vec::new();
        for (i, pkt) in packets.iter().enumerate() {
            pcm.extend(dec.decode(pkt, (i * 960) as u32).unwrap().samples);
        }
        // Past the codec's start-up: the tone at about its level (0.3 of full scale, RMS ~6950).
        let tail = &pcm[4800..];
        let rms =
            (tail.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / tail.len() as f64).sqrt();
        assert!((5500.0..8500.0).contains(&rms), "rms {rms}");
        // Zero crossings of a 600 Hz sine: 1200 a second.
        let crossings = tail.windows(2).filter(|w| (w[0] < 0) != (w[1] < 0)).count() as f64;
        let hz = crossings / 2.0 / (tail.len() as f64 / 48_000.0);
        assert!((hz - 600.0).abs() < 20.0, "{hz} Hz");
    }

    #[test]
    fn beeps_are_tone_then_silence() {
        let p = Prompt::beeps(3, 1000.0, 0.2, 0.3);
        assert_eq!(p.len(), 3 * 4000);
        let s: Vec<i16> = p.for_pt(0).iter().map(|&b| ulaw_decode(b)).collect();
        assert!(s[..1600].iter().any(|x| x.abs() > 5000));
        assert!(s[1600..4000].iter().all(|x| x.abs() < 10));
        assert!(s[4000..5600].iter().any(|x| x.abs() > 5000));
    }
}
