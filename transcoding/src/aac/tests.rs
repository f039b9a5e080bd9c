use super::*;
use crate::testutil::{band_level_error_db, dominant_frequency, sine, snr_db, speech_like};
use crate::AudioFrame;

/// Encodes mono 48 kHz `pcm` to AAC-LC at 64 kbps and decodes it back from the ASC + raw units.
fn round_trip(pcm: &[i16]) -> Vec<i16> {
    let mut enc = AacEncoder::new(AacEncoderConfig {
        sample_rate: 48_000,
        channels: 1,
        bitrate: 64_000,
    })
    .unwrap();
    let mut dec = AacDecoder::new(enc.audio_specific_config()).unwrap();
    assert_eq!(dec.config().object_type, 2);
    let mut out = Vec::new();
    let mut expected_ts = 0u32;
    for (i, chunk) in pcm.chunks_exact(960).enumerate() {
        let f = AudioFrame::new(chunk.to_vec(), 48_000, 1, (i * 960) as u32).unwrap();
        for packet in enc.encode(&f).unwrap() {
            assert_eq!(packet.timestamp, expected_ts);
            expected_ts += 1024;
            let frame = dec.decode(&packet.data, packet.timestamp).unwrap();
            assert_eq!(
                (frame.sample_rate, frame.channels, frame.frames()),
                (48_000, 1, 1024)
            );
            out.extend_from_slice(&frame.samples);
        }
    }
    out
}

// AAC is perceptual like Opus, but at 64 kbps mono FDK codes a pure tone nearly transparently
// (measured 52 dB, threshold 40 dB) and speech-like noise at about 8 dB waveform SNR
// (threshold 5 dB) with its octave-band levels within a dB or two (threshold 3 dB). The thresholds
// leave a margin under those figures while still catching silence, a wrong rate or a
// misaligned frame.
#[test]
fn round_trip_keeps_a_1_khz_tone() {
    let pcm = sine(1000.0, 48_000, 0.5, 0, 96_000);
    let out = round_trip(&pcm);
    assert!(out.len() >= 90_000);
    let f = dominant_frequency(&out[8192..8192 + 65536], 48_000);
    assert!((f - 1000.0).abs() <= 5.0, "dominant {f} Hz");
    let snr = snr_db(&pcm[..60_000], &out[..], 4096);
    eprintln!("aac tone SNR {snr:.1} dB");
    assert!(snr >= 40.0, "tone SNR {snr:.1} dB");
}

#[test]
fn round_trip_keeps_speech_like_noise() {
    let pcm = speech_like(48_000, 96_000, 5);
    let out = round_trip(&pcm);
    let snr = snr_db(&pcm[..60_000], &out[..], 4096);
    eprintln!("aac speech-like SNR {snr:.1} dB");
    assert!(snr >= 5.0, "speech-like SNR {snr:.1} dB");
    let band_error = band_level_error_db(&pcm[4096..], &out[4096..], 48_000);
    eprintln!("aac speech-like band error {band_error:.2} dB");
    assert!(
        band_error <= 3.0,
        "spectral envelope off by {band_error:.1} dB per octave band"
    );
}

#[test]
fn garbage_config_and_units_are_errors() {
    assert!(AacDecoder::new(&[]).is_err());
    assert!(AacDecoder::new(&[0xFF, 0xFF, 0xFF]).is_err());
    let asc = AudioSpecificConfig::lc_bytes(44_100, 2).unwrap();
    let mut dec = AacDecoder::new(&asc).unwrap();
    assert!(dec.decode(&[], 0).is_err());
    let mut state = 0x1234_5678u32;
    let mut errors = 0;
    for len in [1usize, 7, 64, 300, 1500] {
        let garbage: Vec<u8> = (0..len)
            .map(|_| {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (state >> 24) as u8
            })
            .collect();
        if dec.decode(&garbage, 0).is_err() {
            errors += 1;
        }
    }
    assert!(errors >= 4, "only {errors} of 5 garbage units were refused");
}

proptest::proptest! {
    #[test]
    fn arbitrary_units_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..800)) {
        let mut dec = AacDecoder::new(&[0x11, 0x90]).unwrap();
        let _ = dec.decode(&bytes, 0);
    }

    #[test]
    fn arbitrary_configs_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..16)) {
        let _ = AacDecoder::new(&bytes);
    }
}
