//! Opus encoder and decoder on libopus, with packet-loss concealment. The decoder produces
//! 48 kHz; the encoder takes 48 kHz or, to spare a resampler, any input rate libopus accepts
//! (8, 12, 16, 24 kHz: RFC 6716 §2; the RTP clock stays 48 kHz, RFC 7587 §4.1).

use opus::{Application, Bitrate, Channels};

use crate::error::{Result, TranscodeError};
use crate::frame::AudioFrame;

/// Opus' native clock; WebRTC always signals Opus at 48 kHz.
pub const OPUS_RATE: u32 = 48_000;
/// Largest packet libopus may produce (RFC 6716 §3.4 bound for 120 ms).
const MAX_PACKET: usize = 1275 * 3 + 7;
/// Longest duration one packet can carry: 120 ms at 48 kHz.
const MAX_FRAME_SAMPLES: usize = 5760;

/// Frame durations the encoder accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpusFrameDuration {
    /// 10 ms (480 samples).
    Ms10,
    /// 20 ms (960 samples), WebRTC's default.
    Ms20,
    /// 40 ms (1920 samples).
    Ms40,
    /// 60 ms (2880 samples).
    Ms60,
}

impl OpusFrameDuration {
    /// Samples per channel in one frame of this duration at 48 kHz.
    pub fn samples(self) -> usize {
        match self {
            OpusFrameDuration::Ms10 => 480,
            OpusFrameDuration::Ms20 => 960,
            OpusFrameDuration::Ms40 => 1920,
            OpusFrameDuration::Ms60 => 2880,
        }
    }
}

/// How an Opus encoder is set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpusEncoderConfig {
    /// 1 or 2.
    pub channels: u8,
    /// Rate of the PCM fed to [`OpusEncoder::encode`], Hz: 8000, 12000, 16000, 24000 or
    /// 48000 (the default).
    pub sample_rate: u32,
    /// Target bitrate in bits per second.
    pub bitrate: i32,
    /// Duration of each encoded packet.
    pub frame: OpusFrameDuration,
    /// In-band forward error correction (lets the receiver rebuild a lost packet from the next).
    pub fec: bool,
    /// Discontinuous transmission: tiny packets during silence.
    pub dtx: bool,
    /// Expected loss in percent; FEC only spends bits when this is non-zero.
    pub expected_loss_percent: u8,
    /// Encoder effort 0..=10: 10 is libopus' default; lower values trade a little quality
    /// for many more concurrent legs per core.
    pub complexity: u8,
}

impl Default for OpusEncoderConfig {
    fn default() -> Self {
        Self {
            channels: 1,
            sample_rate: OPUS_RATE,
            bitrate: 32_000,
            frame: OpusFrameDuration::Ms20,
            fec: true,
            dtx: false,
            expected_loss_percent: 5,
            complexity: 10,
        }
    }
}

fn channels(n: u8) -> Result<Channels> {
    match n {
        1 => Ok(Channels::Mono),
        2 => Ok(Channels::Stereo),
        _ => Err(TranscodeError::Unsupported(format!(
            "Opus with {n} channels"
        ))),
    }
}

fn lib_err(e: opus::Error) -> TranscodeError {
    TranscodeError::codec("opus", e)
}

/// Encodes PCM frames (at the configured input rate) of a fixed duration into Opus packets.
pub struct OpusEncoder {
    inner: opus::Encoder,
    config: OpusEncoderConfig,
    out: Vec<u8>,
}

impl OpusEncoder {
    /// Creates an encoder tuned for speech (VoIP application), as browsers expect.
    ///
    /// Errors: [`TranscodeError::Unsupported`] for an input rate or channel count libopus
    /// does not take; the library's refusal of a setting.
    pub fn new(config: OpusEncoderConfig) -> Result<Self> {
        if ![8_000, 12_000, 16_000, 24_000, OPUS_RATE].contains(&config.sample_rate) {
            return Err(TranscodeError::Unsupported(format!(
                "Opus input at {} Hz",
                config.sample_rate
            )));
        }
        let mut inner = opus::Encoder::new(
            config.sample_rate,
            channels(config.channels)?,
            Application::Voip,
        )
        .map_err(lib_err)?;
        inner
            .set_bitrate(Bitrate::Bits(config.bitrate))
            .map_err(lib_err)?;
        inner.set_inband_fec(config.fec).map_err(lib_err)?;
        inner.set_dtx(config.dtx).map_err(lib_err)?;
        inner
            .set_complexity(config.complexity.min(10) as i32)
            .map_err(lib_err)?;
        inner
            .set_packet_loss_perc(config.expected_loss_percent.min(100) as i32)
            .map_err(lib_err)?;
        Ok(Self {
            inner,
            config,
            out: vec![0; MAX_PACKET],
        })
    }

    /// The configuration this encoder was built with.
    pub fn config(&self) -> &OpusEncoderConfig {
        &self.config
    }

    /// Samples per channel each call to [`encode`](Self::encode) expects (the frame's
    /// duration at the input rate).
    pub fn frame_samples(&self) -> usize {
        self.config.frame.samples() * self.config.sample_rate as usize / OPUS_RATE as usize
    }

    /// Changes the target bitrate on the fly (e.g. after a REMB/TMMBR from the receiver).
    pub fn set_bitrate(&mut self, bitrate: i32) -> Result<()> {
        self.inner
            .set_bitrate(Bitrate::Bits(bitrate))
            .map_err(lib_err)?;
        self.config.bitrate = bitrate;
        Ok(())
    }

    /// Encodes exactly one frame; the returned slice is valid until the next call.
    pub fn encode(&mut self, frame: &AudioFrame) -> Result<&[u8]> {
        if frame.sample_rate != self.config.sample_rate || frame.channels != self.config.channels {
            return Err(TranscodeError::BadFrame(format!(
                "Opus encoder takes {} Hz x{}, got {} Hz x{}",
                self.config.sample_rate, self.config.channels, frame.sample_rate, frame.channels
            )));
        }
        if frame.frames() != self.frame_samples() {
            return Err(TranscodeError::BadFrame(format!(
                "Opus encoder takes {} samples per channel, got {}",
                self.frame_samples(),
                frame.frames()
            )));
        }
        let n = self
            .inner
            .encode(&frame.samples, &mut self.out)
            .map_err(lib_err)?;
        Ok(&self.out[..n])
    }
}

/// Decodes Opus packets to 48 kHz PCM, concealing lost packets.
pub struct OpusDecoder {
    inner: opus::Decoder,
    channels: u8,
    /// Duration of the last good packet: a lost packet is assumed to have lasted as long.
    last_frame_samples: usize,
    pcm: Vec<i16>,
}

impl OpusDecoder {
    /// Creates a decoder producing `channels` (1 or 2) at 48 kHz.
    pub fn new(channels_out: u8) -> Result<Self> {
        let inner = opus::Decoder::new(OPUS_RATE, channels(channels_out)?).map_err(lib_err)?;
        Ok(Self {
            inner,
            channels: channels_out,
            last_frame_samples: 960,
            pcm: vec![0; MAX_FRAME_SAMPLES * channels_out as usize],
        })
    }

    /// Output channels.
    pub fn channels(&self) -> u8 {
        self.channels
    }

    /// Decodes one packet; a malformed packet is an error and leaves the decoder usable.
    pub fn decode(&mut self, packet: &[u8], timestamp: u32) -> Result<AudioFrame> {
        if packet.is_empty() {
            return Err(TranscodeError::malformed("opus", "empty packet"));
        }
        // libopus validates the TOC/frame lengths itself; checking the duration first also
        // refuses packets longer than our buffer before any PCM is written.
        let samples = opus::packet::get_nb_samples(packet, OPUS_RATE)
            .map_err(|e| TranscodeError::malformed("opus", e))?;
        if samples == 0 || samples > MAX_FRAME_SAMPLES {
            return Err(TranscodeError::malformed(
                "opus",
                format!("{samples} samples in packet"),
            ));
        }
        let n = self
            .inner
            .decode(packet, &mut self.pcm, false)
            .map_err(|e| TranscodeError::malformed("opus", e))?;
        self.last_frame_samples = n;
        Ok(self.frame(n, timestamp))
    }

    /// Conceals one lost packet (libopus PLC), assuming it lasted as long as the previous one.
    pub fn conceal(&mut self, timestamp: u32) -> Result<AudioFrame> {
        let len = self.last_frame_samples * self.channels as usize;
        let n = self
            .inner
            .decode(&[], &mut self.pcm[..len], false)
            .map_err(lib_err)?;
        Ok(self.frame(n, timestamp))
    }

    /// Rebuilds a lost packet from the FEC data carried in the packet that followed it;
    /// falls back to plain concealment when that packet holds no FEC.
    pub fn recover_from_next(&mut self, next_packet: &[u8], timestamp: u32) -> Result<AudioFrame> {
        let len = self.last_frame_samples * self.channels as usize;
        let n = self
            .inner
            .decode(next_packet, &mut self.pcm[..len], true)
            .map_err(|e| TranscodeError::malformed("opus", e))?;
        Ok(self.frame(n, timestamp))
    }

    fn frame(&self, n: usize, timestamp: u32) -> AudioFrame {
        AudioFrame {
            samples: self.pcm[..n * self.channels as usize].to_vec(),
            sample_rate: OPUS_RATE,
            channels: self.channels,
            timestamp,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{band_level_error_db, dominant_frequency, sine, snr_db, speech_like};

    /// Encodes `pcm` (48 kHz mono) at 32 kbps in 20 ms frames and decodes it back.
    fn round_trip(pcm: &[i16]) -> Vec<i16> {
        let mut enc = OpusEncoder::new(OpusEncoderConfig::default()).unwrap();
        let mut dec = OpusDecoder::new(1).unwrap();
        let mut out = Vec::new();
        for (i, chunk) in pcm.chunks_exact(960).enumerate() {
            let ts = (i * 960) as u32;
            let frame = AudioFrame::new(chunk.to_vec(), OPUS_RATE, 1, ts).unwrap();
            let packet = enc.encode(&frame).unwrap().to_vec();
            let decoded = dec.decode(&packet, ts).unwrap();
            assert_eq!(decoded.frames(), 960);
            out.extend_from_slice(&decoded.samples);
        }
        out
    }

    // Opus is a perceptual codec: it does not preserve the waveform sample for sample, so the
    // SNR floor is far below G.711's. In VoIP mode at 32 kbps libopus 1.3 keeps a 1 kHz tone
    // at about 16 dB (threshold 12 dB); speech-like noise is coded by its spectral envelope,
    // so its waveform SNR is low (about 2 dB, threshold 1 dB; 0 dB is what silence scores) and the octave-band levels are the real check
    // (silence or a wrong rate is off by tens of dB). The thresholds sit under what libopus
    // achieves so a broken pipeline (silence, wrong rate, misaligned frames) fails while
    // encoder tuning changes do not.
    #[test]
    fn round_trip_at_32_kbps_keeps_a_1_khz_tone() {
        let pcm = sine(1000.0, OPUS_RATE, 0.5, 0, 48_000);
        let out = round_trip(&pcm);
        let f = dominant_frequency(&out[9600..9600 + 32768], OPUS_RATE);
        assert!((f - 1000.0).abs() <= 5.0, "dominant {f} Hz");
        let snr = snr_db(&pcm[4800..43200], &out[4800..], 960);
        eprintln!("opus tone SNR {snr:.1} dB");
        assert!(snr >= 12.0, "tone SNR {snr:.1} dB");
    }

    #[test]
    fn round_trip_at_32_kbps_keeps_speech_like_noise() {
        let pcm = speech_like(OPUS_RATE, 48_000, 11);
        let out = round_trip(&pcm);
        let snr = snr_db(&pcm[4800..43200], &out[4800..], 960);
        eprintln!("opus speech-like SNR {snr:.1} dB");
        assert!(snr >= 1.0, "speech-like SNR {snr:.1} dB");
        let band_error = band_level_error_db(&pcm[9600..], &out[9600..], OPUS_RATE);
        eprintln!("opus speech-like band error {band_error:.2} dB");
        assert!(
            band_error <= 3.0,
            "spectral envelope off by {band_error:.1} dB per octave band"
        );
    }

    #[test]
    fn lost_packet_is_concealed_with_a_full_frame() {
        let mut enc = OpusEncoder::new(OpusEncoderConfig::default()).unwrap();
        let mut dec = OpusDecoder::new(1).unwrap();
        let mut packets = Vec::new();
        for i in 0..10 {
            let f = AudioFrame::new(
                sine(1000.0, OPUS_RATE, 0.5, i * 960, 960),
                OPUS_RATE,
                1,
                (i * 960) as u32,
            )
            .unwrap();
            packets.push(enc.encode(&f).unwrap().to_vec());
        }
        for p in &packets[..5] {
            dec.decode(p, 0).unwrap();
        }
        let concealed = dec.conceal(5 * 960).unwrap();
        assert_eq!(concealed.frames(), 960);
        assert_eq!(concealed.timestamp, 4800);
        // PLC continues the tone rather than emitting silence.
        let energy: f64 = concealed
            .samples
            .iter()
            .map(|&s| (s as f64).powi(2))
            .sum::<f64>()
            / 960.0;
        assert!(energy.sqrt() > 1000.0, "concealment RMS {}", energy.sqrt());
        let recovered = dec.recover_from_next(&packets[6], 5 * 960).unwrap();
        assert_eq!(recovered.frames(), 960);
    }

    #[test]
    fn a_16_khz_input_encodes_20_ms_packets_that_decode_to_the_same_tone() {
        let mut enc = OpusEncoder::new(OpusEncoderConfig {
            sample_rate: 16_000,
            ..Default::default()
        })
        .unwrap();
        assert_eq!(enc.frame_samples(), 320);
        let wrong = AudioFrame::new(vec![0; 960], OPUS_RATE, 1, 0).unwrap();
        assert!(enc.encode(&wrong).is_err(), "48 kHz frames refused");
        let mut dec = OpusDecoder::new(1).unwrap();
        let pcm = sine(700.0, 16_000, 0.5, 0, 16_000);
        let mut out = Vec::new();
        for (i, chunk) in pcm.chunks_exact(320).enumerate() {
            let frame = AudioFrame::new(chunk.to_vec(), 16_000, 1, (i * 320) as u32).unwrap();
            let packet = enc.encode(&frame).unwrap().to_vec();
            let decoded = dec.decode(&packet, (i * 960) as u32).unwrap();
            assert_eq!(decoded.frames(), 960, "20 ms at the 48 kHz clock");
            out.extend_from_slice(&decoded.samples);
        }
        let f = dominant_frequency(&out[9600..9600 + 32768], OPUS_RATE);
        assert!((f - 700.0).abs() <= 5.0, "dominant {f} Hz");
        assert!(OpusEncoder::new(OpusEncoderConfig {
            sample_rate: 44_100,
            ..Default::default()
        })
        .is_err());
    }

    #[test]
    fn other_frame_durations_and_stereo_encode() {
        for (frame, ms) in [
            (OpusFrameDuration::Ms10, 10),
            (OpusFrameDuration::Ms40, 40),
            (OpusFrameDuration::Ms60, 60),
        ] {
            let config = OpusEncoderConfig {
                channels: 2,
                frame,
                dtx: true,
                ..Default::default()
            };
            let mut enc = OpusEncoder::new(config).unwrap();
            let n = frame.samples();
            let pcm: Vec<i16> = sine(440.0, OPUS_RATE, 0.3, 0, n)
                .into_iter()
                .flat_map(|s| [s, s])
                .collect();
            let packet = enc
                .encode(&AudioFrame::new(pcm, OPUS_RATE, 2, 0).unwrap())
                .unwrap()
                .to_vec();
            let mut dec = OpusDecoder::new(2).unwrap();
            let out = dec.decode(&packet, 0).unwrap();
            assert_eq!(out.frames() * 1000 / 48_000, ms);
        }
    }

    #[test]
    fn wrong_frame_size_is_refused() {
        let mut enc = OpusEncoder::new(OpusEncoderConfig::default()).unwrap();
        let f = AudioFrame::silence(100, OPUS_RATE, 1, 0);
        assert!(matches!(enc.encode(&f), Err(TranscodeError::BadFrame(_))));
    }

    #[test]
    fn truncated_and_garbage_packets_are_errors() {
        let mut dec = OpusDecoder::new(1).unwrap();
        assert!(dec.decode(&[], 0).is_err());
        // Code 3 (arbitrary frame count) with the count byte missing.
        assert!(dec.decode(&[0x03], 0).is_err());
        // Code 2 (two frames, explicit length) whose length byte exceeds the payload.
        assert!(dec.decode(&[0x02, 200, 1, 2, 3], 0).is_err());
        // Code 3 claiming 48 frames of 20 ms: more than 120 ms.
        assert!(dec.decode(&[0x0B, 48, 0, 0], 0).is_err());
        // The decoder still works afterwards.
        assert!(dec.conceal(0).is_ok());
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..400)) {
            let mut dec = OpusDecoder::new(2).unwrap();
            let _ = dec.decode(&bytes, 0);
        }
    }
}
