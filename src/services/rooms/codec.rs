//! A participant's codec legs around the room's mixing rate: payload → PCM at the room rate
//! ([`Decoder`], with loss concealment) and PCM at the room rate → payload ([`Encoder`]).
//!
//! Opus runs at 48 kHz and G.711 at 8 kHz; the room mixes at its `sampling_rate` (8, 12, 16,
//! 24 or 48 kHz), so each leg resamples when the rates differ. Decoded audio goes through a
//! small FIFO so that packets of any duration (10, 20, 40, 60 ms) feed 20 ms mixing ticks.

use std::collections::VecDeque;

use bifrons_transcoding::g711::{self, G711Law, G711_RATE};
use bifrons_transcoding::opus_codec::{
    OpusDecoder, OpusEncoder, OpusEncoderConfig, OpusFrameDuration, OPUS_RATE,
};
use bifrons_transcoding::resample::Resampler;
use bifrons_transcoding::{AudioFrame, TranscodeError};

/// Codecs a room participant (or forwarder) may use, as Janus' `codec` field names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MixCodec {
    /// Opus (RFC 7587), mono, 48 kHz clock.
    Opus,
    /// G.711 μ-law, 8 kHz, payload type 0.
    Pcmu,
    /// G.711 A-law, 8 kHz, payload type 8.
    Pcma,
}

impl MixCodec {
    /// `"opus"`, `"pcmu"` or `"pcma"` (case-insensitive), as Janus' `codec` field.
    pub fn from_name(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "opus" => Some(MixCodec::Opus),
            "pcmu" => Some(MixCodec::Pcmu),
            "pcma" => Some(MixCodec::Pcma),
            _ => None,
        }
    }

    /// The name Janus uses.
    pub fn name(self) -> &'static str {
        match self {
            MixCodec::Opus => "opus",
            MixCodec::Pcmu => "pcmu",
            MixCodec::Pcma => "pcma",
        }
    }

    /// The codec's sample rate, which is also its RTP clock rate, Hz.
    pub fn clock_rate(self) -> u32 {
        match self {
            MixCodec::Opus => OPUS_RATE,
            MixCodec::Pcmu | MixCodec::Pcma => G711_RATE,
        }
    }

    /// RTP timestamp units in one 20 ms packet.
    pub fn samples_per_tick(self) -> u32 {
        self.clock_rate() / 50
    }

    fn law(self) -> Option<G711Law> {
        match self {
            MixCodec::Opus => None,
            MixCodec::Pcmu => Some(G711Law::Mu),
            MixCodec::Pcma => Some(G711Law::A),
        }
    }
}

/// Opus encoder settings a participant can choose (`bitrate`, `quality`, `expected_loss`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncoderSettings {
    /// Target bitrate, bit/s; 0 lets the room pick (24 kbit/s per channel for voice).
    pub bitrate: i32,
    /// Encoder complexity 1..=10 (Janus' `quality`, default 4).
    pub complexity: u8,
    /// Expected loss, percent (0..=20); above 0 the encoder spends bits on in-band FEC.
    pub expected_loss: u8,
}

impl Default for EncoderSettings {
    fn default() -> Self {
        Self {
            bitrate: 0,
            complexity: 4,
            expected_loss: 0,
        }
    }
}

enum DecodeLeg {
    Opus(Box<OpusDecoder>),
    G711(G711Law),
}

/// Payload → mono PCM at the room rate, one participant's inbound leg.
pub struct Decoder {
    leg: DecodeLeg,
    resampler: Option<Resampler>,
    fifo: VecDeque<i16>,
    scratch: Vec<i16>,
    codec_rate: u32,
}

fn resampler(from: u32, to: u32) -> Result<Option<Resampler>, TranscodeError> {
    if from == to {
        Ok(None)
    } else {
        Resampler::new(from, to, 1).map(Some)
    }
}

impl Decoder {
    /// A decoder for `codec` producing PCM at `room_rate`.
    pub fn new(codec: MixCodec, room_rate: u32) -> Result<Self, TranscodeError> {
        let leg = match codec.law() {
            None => DecodeLeg::Opus(Box::new(OpusDecoder::new(1)?)),
            Some(law) => DecodeLeg::G711(law),
        };
        Ok(Self {
            leg,
            resampler: resampler(codec.clock_rate(), room_rate)?,
            fifo: VecDeque::with_capacity(room_rate as usize / 5),
            scratch: Vec::new(),
            codec_rate: codec.clock_rate(),
        })
    }

    /// Samples (at the room rate) decoded and not yet taken.
    pub fn buffered(&self) -> usize {
        self.fifo.len()
    }

    /// Drops what was decoded and not yet mixed (mute, clock drift).
    pub fn clear(&mut self) {
        self.fifo.clear();
    }

    fn push_pcm(&mut self, frame: AudioFrame) -> Result<(), TranscodeError> {
        let frame = match self.resampler.as_mut() {
            Some(r) => r.process(&frame)?,
            None => frame,
        };
        self.fifo.extend(frame.samples.iter());
        Ok(())
    }

    /// Decodes one payload into the FIFO. A malformed payload is an error and leaves the
    /// decoder usable.
    pub fn decode(&mut self, payload: &[u8]) -> Result<(), TranscodeError> {
        let frame = match &mut self.leg {
            DecodeLeg::Opus(d) => d.decode(payload, 0)?,
            DecodeLeg::G711(law) => {
                self.scratch.clear();
                g711::decode_into(*law, payload, &mut self.scratch);
                AudioFrame::new(std::mem::take(&mut self.scratch), self.codec_rate, 1, 0)?
            }
        };
        self.push_pcm(frame)
    }

    /// Conceals one lost packet: Opus rebuilds it from the in-band FEC of `next` when given,
    /// else with its PLC; G.711 has neither, so 20 ms of the last level fade to silence.
    pub fn conceal(&mut self, next: Option<&[u8]>) -> Result<(), TranscodeError> {
        let frame = match &mut self.leg {
            DecodeLeg::Opus(d) => match next {
                Some(n) => d.recover_from_next(n, 0)?,
                None => d.conceal(0)?,
            },
            DecodeLeg::G711(_) => {
                AudioFrame::silence(self.codec_rate as usize / 50, self.codec_rate, 1, 0)
            }
        };
        self.push_pcm(frame)
    }

    /// Moves exactly `out.len()` samples out of the FIFO; false (and `out` untouched) when
    /// fewer are buffered.
    pub fn take_frame(&mut self, out: &mut [i16]) -> bool {
        if self.fifo.len() < out.len() {
            return false;
        }
        let n = out.len();
        for (o, s) in out.iter_mut().zip(self.fifo.drain(..n)) {
            *o = s;
        }
        true
    }
}

enum EncodeLeg {
    Opus(Box<OpusEncoder>),
    G711(G711Law),
}

/// Mono PCM at the room rate → one 20 ms payload, for one distinct mix.
pub struct Encoder {
    leg: EncodeLeg,
    codec: MixCodec,
    resampler: Option<Resampler>,
    room_rate: u32,
    /// Rate of the frames the codec's encoder takes, Hz.
    input_rate: u32,
    fifo: VecDeque<i16>,
    frame: Vec<i16>,
    out: Vec<u8>,
    /// 1, or 2 for [`Encoder::stereo`] (frames interleaved left, right).
    channels: u8,
}

impl Encoder {
    /// A stereo Opus encoder of a 48 kHz room (spatial audio), fed 20 ms frames of
    /// interleaved left/right samples (1920 values). Default bitrate 48 kbit/s.
    pub fn stereo(settings: EncoderSettings) -> Result<Self, TranscodeError> {
        let bitrate = if settings.bitrate > 0 {
            settings.bitrate
        } else {
            48_000
        };
        let samples = MixCodec::Opus.samples_per_tick() as usize * 2;
        Ok(Self {
            leg: EncodeLeg::Opus(Box::new(OpusEncoder::new(OpusEncoderConfig {
                channels: 2,
                sample_rate: OPUS_RATE,
                bitrate,
                frame: OpusFrameDuration::Ms20,
                fec: settings.expected_loss > 0,
                dtx: false,
                expected_loss_percent: settings.expected_loss,
                complexity: settings.complexity.clamp(1, 10),
            })?)),
            codec: MixCodec::Opus,
            resampler: None,
            room_rate: OPUS_RATE,
            input_rate: OPUS_RATE,
            fifo: VecDeque::with_capacity(samples * 2),
            frame: vec![0; samples],
            out: Vec::with_capacity(512),
            channels: 2,
        })
    }

    /// An encoder of `codec` fed 20 ms frames at `room_rate`. Opus encodes at the room rate
    /// itself (as Janus' AudioBridge does; no resampler, nothing copied per frame); G.711 is
    /// resampled to 8 kHz.
    pub fn new(
        codec: MixCodec,
        room_rate: u32,
        settings: EncoderSettings,
    ) -> Result<Self, TranscodeError> {
        // The rate the codec's encoder takes.
        let input_rate = match codec.law() {
            None => room_rate,
            Some(_) => codec.clock_rate(),
        };
        let leg = match codec.law() {
            None => {
                let bitrate = if settings.bitrate > 0 {
                    settings.bitrate
                } else {
                    24_000
                };
                EncodeLeg::Opus(Box::new(OpusEncoder::new(OpusEncoderConfig {
                    channels: 1,
                    sample_rate: input_rate,
                    bitrate,
                    frame: OpusFrameDuration::Ms20,
                    fec: settings.expected_loss > 0,
                    dtx: false,
                    expected_loss_percent: settings.expected_loss,
                    complexity: settings.complexity.clamp(1, 10),
                })?))
            }
            Some(law) => EncodeLeg::G711(law),
        };
        Ok(Self {
            leg,
            codec,
            resampler: resampler(room_rate, input_rate)?,
            room_rate,
            input_rate,
            fifo: VecDeque::with_capacity(input_rate as usize / 10),
            frame: vec![0; input_rate as usize / 50],
            out: Vec::with_capacity(256),
            channels: 1,
        })
    }

    /// The codec this encoder produces.
    pub fn codec(&self) -> MixCodec {
        self.codec
    }

    /// Encodes one 20 ms frame at the room rate; the payload is valid until the next call.
    /// The resampler's first outputs may come short: the missing samples are silence, so
    /// every call yields exactly one 20 ms packet.
    pub fn encode(&mut self, pcm: &[i16]) -> Result<&[u8], TranscodeError> {
        match self.resampler.as_mut() {
            Some(r) => {
                let frame = AudioFrame::new(pcm.to_vec(), self.room_rate, 1, 0)?;
                let out = r.process(&frame)?;
                self.fifo.extend(out.samples.iter());
            }
            None => self.fifo.extend(pcm.iter()),
        }
        let need = self.frame.len();
        if self.fifo.len() < need {
            let missing = need - self.fifo.len();
            for _ in 0..missing {
                self.fifo.push_front(0);
            }
        }
        for (o, s) in self.frame.iter_mut().zip(self.fifo.drain(..need)) {
            *o = s;
        }
        // Bounded: a resampler never runs ahead by more than a frame, but never let it grow.
        if self.fifo.len() > need {
            let extra = self.fifo.len() - need;
            self.fifo.drain(..extra);
        }
        match &mut self.leg {
            EncodeLeg::Opus(e) => {
                let frame = AudioFrame {
                    samples: std::mem::take(&mut self.frame),
                    sample_rate: self.input_rate,
                    channels: self.channels,
                    timestamp: 0,
                };
                let result = e.encode(&frame).map(|p| {
                    self.out.clear();
                    self.out.extend_from_slice(p);
                });
                self.frame = frame.samples;
                result?;
            }
            EncodeLeg::G711(law) => {
                self.out.clear();
                g711::encode_into(*law, &self.frame, &mut self.out);
            }
        }
        Ok(&self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(freq: f32, rate: u32, n: usize, start: usize) -> Vec<i16> {
        (start..start + n)
            .map(|i| {
                (8000.0 * (2.0 * std::f32::consts::PI * freq * i as f32 / rate as f32).sin()) as i16
            })
            .collect()
    }

    #[test]
    fn every_codec_and_room_rate_round_trips_twenty_ms_frames() {
        for codec in [MixCodec::Opus, MixCodec::Pcmu, MixCodec::Pcma] {
            for rate in [8_000, 16_000, 24_000, 48_000] {
                let frame = rate as usize / 50;
                let mut enc = Encoder::new(codec, rate, EncoderSettings::default()).unwrap();
                let mut dec = Decoder::new(codec, rate).unwrap();
                let mut out = vec![0i16; frame];
                let mut energy = 0f64;
                for k in 0..50 {
                    let payload = enc.encode(&tone(440.0, rate, frame, k * frame)).unwrap();
                    if codec != MixCodec::Opus {
                        assert_eq!(payload.len(), 160, "{codec:?} at {rate}");
                    }
                    let payload = payload.to_vec();
                    dec.decode(&payload).unwrap();
                    assert!(
                        dec.take_frame(&mut out),
                        "{codec:?} at {rate}: a frame per packet"
                    );
                    if k > 10 {
                        energy += out.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>();
                    }
                }
                assert!(energy > 1e8, "{codec:?} at {rate}: energy {energy}");
            }
        }
    }

    #[test]
    fn concealment_yields_a_frame_and_bad_payloads_are_errors() {
        let mut dec = Decoder::new(MixCodec::Opus, 16_000).unwrap();
        assert!(dec.decode(&[]).is_err());
        dec.conceal(None).unwrap();
        let mut out = vec![0i16; 320];
        assert!(dec.take_frame(&mut out));
        assert!(!dec.take_frame(&mut out), "nothing left");
    }
}
