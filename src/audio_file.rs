//! Reading and writing the audio files of mailboxes: the Opus packets of an Ogg Opus message
//! (RFC 7845) for playback and transcoding, PCM WAV (RIFF `fmt `/`data`, 16-bit integer) for
//! uploaded greetings and downloads, and their conversion to 8 kHz μ-law for SIP callers.
//!
//! Everything here is CPU work on whole files: callers run it on the blocking pool or the codec
//! workers, never on the async threads. Every parser returns an error for any bytes, never
//! panics (property tests below, fuzz target `fuzz/fuzz_targets/voicemail_files.rs`).

use std::io::Cursor;

use bytes::Bytes;

/// Opus' clock, Hz (RFC 7587 §4.1: RTP timestamps and Ogg granules count 48 kHz samples).
pub const OPUS_RATE: u32 = 48_000;
/// G.711's rate, Hz.
pub const G711_RATE: u32 = 8_000;
/// Largest file read as a greeting, bytes (the admin panel's upload limit: about 2 minutes of 8 kHz 16-bit WAV).
pub const MAX_GREETING_BYTES: usize = 2 * 1024 * 1024;
/// Longest greeting kept, seconds of audio (the rest is cut).
pub const MAX_GREETING_SECONDS: u32 = 60;

/// Why a file could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AudioFileError {
    /// Neither Ogg (`OggS`) nor RIFF/WAVE.
    #[error("not an Ogg Opus or WAV file")]
    UnknownFormat,
    /// The Ogg stream is broken or holds no Opus (RFC 7845 §5: `OpusHead` first).
    #[error("invalid Ogg Opus: {0}")]
    Ogg(String),
    /// The WAV file is broken or not 16-bit PCM, 1 or 2 channels, 8 to 48 kHz.
    #[error("invalid WAV: {0}")]
    Wav(String),
    /// The Opus decoder refused a packet or could not start.
    #[error("opus decoding failed: {0}")]
    Decode(String),
    /// Larger than [`MAX_GREETING_BYTES`].
    #[error("file larger than {MAX_GREETING_BYTES} bytes")]
    TooLarge,
}

/// The Opus packets of an Ogg Opus file, in order.
#[derive(Debug, Clone, Default)]
pub struct OpusPackets {
    /// Channels of the stream (`OpusHead` channel count).
    pub channels: u8,
    /// Samples at 48 kHz to drop at the start (`OpusHead` pre-skip, RFC 7845 §4.2).
    pub pre_skip: u16,
    /// Audio packets (the `OpusHead` and `OpusTags` header packets removed).
    pub packets: Vec<Bytes>,
}

/// Samples at 48 kHz one Opus packet lasts, from its TOC byte and frame count (RFC 6716 §3.1);
/// `None` for an empty or malformed packet or one over 120 ms.
pub fn opus_packet_samples(packet: &[u8]) -> Option<u32> {
    let toc = *packet.first()?;
    let config = toc >> 3;
    // Frame size per configuration, in 48 kHz samples (RFC 6716 Table 2).
    let frame: u32 = match config {
        0..=11 => [480, 960, 1920, 2880][usize::from(config % 4)],
        12..=15 => [480, 960][usize::from(config % 2)],
        _ => [120, 240, 480, 960][usize::from(config % 4)],
    };
    let frames: u32 = match toc & 0x3 {
        0 => 1,
        1 | 2 => 2,
        _ => u32::from(*packet.get(1)? & 0x3f),
    };
    let total = frame * frames;
    (frames > 0 && total <= 5760).then_some(total)
}

/// The Opus packets of an Ogg Opus file (first logical stream). Errors: not Ogg, no
/// `OpusHead`, a broken page before any audio.
pub fn read_ogg_opus(data: &[u8]) -> Result<OpusPackets, AudioFileError> {
    if !data.starts_with(b"OggS") {
        return Err(AudioFileError::Ogg("no Ogg capture pattern".into()));
    }
    let mut reader = ogg::reading::PacketReader::new(Cursor::new(data));
    let mut out = OpusPackets::default();
    let mut serial = None;
    let mut header_seen = false;
    let mut tags_seen = false;
    loop {
        let packet = match reader.read_packet() {
            Ok(Some(p)) => p,
            Ok(None) => break,
            // A file cut by a crash ends with a torn page: what came before is kept.
            Err(e) if header_seen => {
                tracing::debug!(error = %e, "ogg opus file ends with a broken page");
                break;
            }
            Err(e) => return Err(AudioFileError::Ogg(e.to_string())),
        };
        if *serial.get_or_insert(packet.stream_serial()) != packet.stream_serial() {
            continue;
        }
        let data = packet.data;
        if !header_seen {
            if data.len() < 19 || !data.starts_with(b"OpusHead") {
                return Err(AudioFileError::Ogg("first packet is not OpusHead".into()));
            }
            out.channels = data[9];
            out.pre_skip = u16::from_le_bytes([data[10], data[11]]);
            if !(1..=2).contains(&out.channels) {
                return Err(AudioFileError::Ogg(format!("{} channels", out.channels)));
            }
            header_seen = true;
        } else if !tags_seen {
            tags_seen = true;
            if !data.starts_with(b"OpusTags") {
                out.packets.push(Bytes::from(data));
            }
        } else if !data.is_empty() {
            out.packets.push(Bytes::from(data));
        }
    }
    if !header_seen {
        return Err(AudioFileError::Ogg("no OpusHead".into()));
    }
    Ok(out)
}

/// Decodes every packet to mono 48 kHz PCM, pre-skip removed. A malformed packet is
/// concealed (its length of silence), so a damaged message still plays.
pub fn decode_opus_mono(file: &OpusPackets) -> Result<Vec<i16>, AudioFileError> {
    let mut decoder = bifrons_transcoding::opus_codec::OpusDecoder::new(1)
        .map_err(|e| AudioFileError::Decode(e.to_string()))?;
    let mut pcm = Vec::new();
    for packet in &file.packets {
        match decoder.decode(packet, 0) {
            Ok(frame) => pcm.extend_from_slice(&frame.samples),
            Err(_) => {
                let n = opus_packet_samples(packet).unwrap_or(960) as usize;
                pcm.resize(pcm.len() + n, 0);
            }
        }
    }
    let skip = usize::from(file.pre_skip).min(pcm.len());
    pcm.drain(..skip);
    Ok(pcm)
}

/// A decoded PCM WAV file, downmixed to mono.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wav {
    /// Samples per second.
    pub rate: u32,
    /// Mono samples.
    pub samples: Vec<i16>,
}

/// Parses a RIFF/WAVE file of 16-bit integer PCM (format 1, or extensible with PCM), 1 or 2
/// channels, 8 to 48 kHz; stereo is averaged to mono. Chunks other than `fmt ` and `data`
/// are skipped; a `data` chunk longer than the file is cut to what is there.
pub fn parse_wav(data: &[u8]) -> Result<Wav, AudioFileError> {
    let bad = |why: &str| AudioFileError::Wav(why.to_owned());
    if data.len() < 12 || &data[..4] != b"RIFF" || &data[8..12] != b"WAVE" {
        return Err(bad("no RIFF/WAVE header"));
    }
    let mut pos = 12usize;
    let mut format: Option<(u16, u32, u16)> = None;
    while let Some(header) = data.get(pos..pos + 8) {
        let id = &header[..4];
        let len = u32::from_le_bytes([header[4], header[5], header[6], header[7]]) as usize;
        let body_start = pos + 8;
        let body = &data[body_start..body_start.saturating_add(len).min(data.len())];
        match id {
            b"fmt " => {
                if body.len() < 16 {
                    return Err(bad("short fmt chunk"));
                }
                let tag = u16::from_le_bytes([body[0], body[1]]);
                let channels = u16::from_le_bytes([body[2], body[3]]);
                let rate = u32::from_le_bytes([body[4], body[5], body[6], body[7]]);
                let bits = u16::from_le_bytes([body[14], body[15]]);
                // 0xFFFE: WAVE_FORMAT_EXTENSIBLE; its sub-format GUID starts with the tag.
                let pcm = tag == 1
                    || (tag == 0xFFFE && body.len() >= 26 && body[24] == 1 && body[25] == 0);
                if !pcm || bits != 16 {
                    return Err(bad("only 16-bit integer PCM is accepted"));
                }
                if !(1..=2).contains(&channels) || !(G711_RATE..=OPUS_RATE).contains(&rate) {
                    return Err(bad("1 or 2 channels at 8 to 48 kHz"));
                }
                format = Some((channels, rate, bits));
            }
            b"data" => {
                let (channels, rate, _) = format.ok_or_else(|| bad("data before fmt"))?;
                let step = 2 * usize::from(channels);
                let samples = body
                    .chunks_exact(step)
                    .map(|f| {
                        let sum: i32 = f
                            .chunks_exact(2)
                            .map(|s| i32::from(i16::from_le_bytes([s[0], s[1]])))
                            .sum();
                        (sum / i32::from(channels)) as i16
                    })
                    .collect();
                return Ok(Wav { rate, samples });
            }
            _ => {}
        }
        // Chunks are padded to an even length (RIFF).
        pos = body_start.saturating_add(len).saturating_add(len & 1);
    }
    Err(bad("no data chunk"))
}

/// A 44-byte-header RIFF/WAVE file of mono 16-bit PCM at `rate` Hz.
pub fn wav_bytes(samples: &[i16], rate: u32) -> Vec<u8> {
    let data_len = (samples.len() * 2) as u32;
    let mut out = Vec::with_capacity(44 + samples.len() * 2);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * 2).to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for s in samples {
        out.extend_from_slice(&s.to_le_bytes());
    }
    out
}

/// Linear-interpolation resampling of mono PCM from `from` to `to` Hz (greetings: the
/// quality of a telephone line is the target).
pub fn resample_linear(samples: &[i16], from: u32, to: u32) -> Vec<i16> {
    if from == to || samples.is_empty() || from == 0 || to == 0 {
        return samples.to_vec();
    }
    let n = (samples.len() as u64 * u64::from(to) / u64::from(from)) as usize;
    // Averaging the `from/to` input samples around each output one keeps a downsampled
    // greeting from aliasing too badly.
    let width = (from / to).max(1) as usize;
    (0..n)
        .map(|i| {
            let pos = i as f64 * f64::from(from) / f64::from(to);
            let base = pos as usize;
            if width > 1 {
                let end = (base + width).min(samples.len());
                let sum: i64 = samples[base.min(end)..end]
                    .iter()
                    .map(|&s| i64::from(s))
                    .sum();
                (sum / (end - base.min(end)).max(1) as i64) as i16
            } else {
                let frac = pos - base as f64;
                let a = f64::from(samples[base.min(samples.len() - 1)]);
                let b = f64::from(samples[(base + 1).min(samples.len() - 1)]);
                (a + (b - a) * frac) as i16
            }
        })
        .collect()
}

/// Mono 8 kHz PCM of an uploaded greeting (Ogg Opus or WAV), cut to [`MAX_GREETING_SECONDS`].
pub fn greeting_pcm_8k(data: &[u8]) -> Result<Vec<i16>, AudioFileError> {
    if data.len() > MAX_GREETING_BYTES {
        return Err(AudioFileError::TooLarge);
    }
    let (rate, pcm) = if data.starts_with(b"OggS") {
        (OPUS_RATE, decode_opus_mono(&read_ogg_opus(data)?)?)
    } else if data.starts_with(b"RIFF") {
        let wav = parse_wav(data)?;
        (wav.rate, wav.samples)
    } else {
        return Err(AudioFileError::UnknownFormat);
    };
    let mut out = resample_linear(&pcm, rate, G711_RATE);
    out.truncate((MAX_GREETING_SECONDS * G711_RATE) as usize);
    if out.is_empty() {
        return Err(AudioFileError::Decode("no audio in the file".into()));
    }
    Ok(out)
}

/// The greeting file at `path` as 8 kHz mono PCM, ready for either G.711 law.
pub fn load_pcm_8k(path: &std::path::Path) -> Result<Vec<i16>, AudioFileError> {
    let data = std::fs::read(path).map_err(|e| AudioFileError::Decode(e.to_string()))?;
    greeting_pcm_8k(&data)
}

/// A recorded message as a WAV file: mono 16-bit PCM at 48 kHz.
pub fn ogg_opus_to_wav(data: &[u8]) -> Result<Vec<u8>, AudioFileError> {
    let pcm = decode_opus_mono(&read_ogg_opus(data)?)?;
    Ok(wav_bytes(&pcm, OPUS_RATE))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn tone(rate: u32, n: usize) -> Vec<i16> {
        (0..n)
            .map(|i| {
                (8000.0 * (2.0 * std::f64::consts::PI * 440.0 * i as f64 / f64::from(rate)).sin())
                    as i16
            })
            .collect()
    }

    #[test]
    fn wav_round_trips_and_resamples_to_8k() {
        let pcm = tone(16_000, 16_000);
        let wav = wav_bytes(&pcm, 16_000);
        assert_eq!(wav.len(), 44 + 32_000);
        let back = parse_wav(&wav).unwrap();
        assert_eq!(
            back,
            Wav {
                rate: 16_000,
                samples: pcm
            }
        );
        let g = greeting_pcm_8k(&wav).unwrap();
        assert_eq!(g.len(), 8_000);
        assert!(g.iter().any(|&s| s > 4000));
    }

    #[test]
    fn wav_refusals_are_errors() {
        let mut wav = wav_bytes(&[1, 2, 3], 8_000);
        wav[34] = 8; // 8-bit
        assert!(matches!(parse_wav(&wav), Err(AudioFileError::Wav(_))));
        assert!(matches!(
            parse_wav(b"RIFF\0\0\0\0WAVE"),
            Err(AudioFileError::Wav(_))
        ));
        assert_eq!(
            greeting_pcm_8k(b"ID3 mp3"),
            Err(AudioFileError::UnknownFormat)
        );
    }

    #[test]
    fn opus_toc_durations() {
        assert_eq!(opus_packet_samples(&[0xf8, 0, 0]), Some(960)); // CELT FB 20 ms
        assert_eq!(opus_packet_samples(&[0x08]), Some(960)); // SILK NB 20 ms
        assert_eq!(opus_packet_samples(&[0xf9]), Some(1920)); // two frames
        assert_eq!(opus_packet_samples(&[0xfb, 0x03]), Some(2880)); // code 3, three frames
        assert_eq!(opus_packet_samples(&[0x1b, 0x03]), None); // 3 × 60 ms > 120 ms
        assert_eq!(opus_packet_samples(&[]), None);
    }

    proptest! {
        #[test]
        fn parsers_never_panic(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = parse_wav(&data);
            let _ = read_ogg_opus(&data);
            let _ = opus_packet_samples(&data);
            let _ = greeting_pcm_8k(&data);
        }

        #[test]
        fn wav_with_riff_prefix_never_panics(tail in proptest::collection::vec(any::<u8>(), 0..512)) {
            let mut data = b"RIFF\x10\0\0\0WAVEfmt ".to_vec();
            data.extend_from_slice(&tail);
            let _ = parse_wav(&data);
        }

        #[test]
        fn resampling_keeps_the_duration(n in 0usize..4000, from in 8_000u32..=48_000, to in 8_000u32..=48_000) {
            let out = resample_linear(&vec![7; n], from, to);
            let expected = if from == to { n } else { (n as u64 * u64::from(to) / u64::from(from)) as usize };
            prop_assert_eq!(out.len(), expected);
        }
    }
}
