//! What mailbox calls hear: tones made once as G.711 in both laws ([`Prompt`]), and
//! [`play`], which sends a prompt in real time in the law the call negotiated (PCMU, payload
//! type 0, or PCMA, 8), so a PCMA caller hears the greeting as clearly as a PCMU one.

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

/// A sound ready to send: its 8 kHz samples in μ-law and in A-law.
#[derive(Debug, Clone, Default)]
pub struct Prompt {
    ulaw: Vec<u8>,
    alaw: Vec<u8>,
}

impl Prompt {
    /// A prompt of 8 kHz 16-bit samples.
    pub fn from_pcm(pcm: &[i16]) -> Self {
        Self {
            ulaw: pcm.iter().map(|&s| ulaw_encode(s)).collect(),
            alaw: pcm.iter().map(|&s| alaw_encode(s)).collect(),
        }
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

    /// Length in 8 kHz samples.
    pub fn len(&self) -> usize {
        self.ulaw.len()
    }

    /// Whether it has no samples.
    pub fn is_empty(&self) -> bool {
        self.ulaw.is_empty()
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

/// Sends `prompt` as 20 ms packets in real time in the call's law, discarding the caller's
/// audio meanwhile. A DTMF digit (RFC 4733 or INFO) among `keys` stops it and is returned;
/// other digits are ignored. `Ok(())` when it played to the end.
pub async fn play(
    rtp: &RtpEndpoint,
    prompt: &Prompt,
    events: &mut broadcast::Receiver<CallEvent>,
    keys: &[char],
) -> Result<(), Interrupted> {
    let pt = rtp.params().pt;
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let mut chunks = prompt.for_pt(pt).chunks(PACKET_SAMPLES);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let Some(chunk) = chunks.next() else { return Ok(()) };
                let _ = rtp.send_audio(chunk, chunk.len() as u32);
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
    fn beeps_are_tone_then_silence() {
        let p = Prompt::beeps(3, 1000.0, 0.2, 0.3);
        assert_eq!(p.len(), 3 * 4000);
        let s: Vec<i16> = p.for_pt(0).iter().map(|&b| ulaw_decode(b)).collect();
        assert!(s[..1600].iter().any(|x| x.abs() > 5000));
        assert!(s[1600..4000].iter().all(|x| x.abs() < 10));
        assert!(s[4000..5600].iter().any(|x| x.abs() > 5000));
    }
}
