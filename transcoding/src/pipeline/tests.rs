use super::*;
use crate::aac::AacEncoderConfig;
use crate::g711::G711Law;
use crate::opus_codec::{OpusDecoder, OpusEncoder, OpusEncoderConfig};
use crate::testutil::{dominant_frequency, sine};
use crate::AudioFrame;

/// 1 s of a 1 kHz tone as 20 ms Opus packets starting at RTP timestamp `start`.
fn opus_tone(start: u32) -> Vec<AudioPacket> {
    let mut enc = OpusEncoder::new(OpusEncoderConfig::default()).unwrap();
    (0..50)
        .map(|i| {
            let ts = start.wrapping_add(i * 960);
            let f = AudioFrame::new(
                sine(1000.0, 48_000, 0.5, i as usize * 960, 960),
                48_000,
                1,
                ts,
            )
            .unwrap();
            AudioPacket {
                payload: enc.encode(&f).unwrap().to_vec(),
                timestamp: ts,
            }
        })
        .collect()
}

#[test]
fn opus_to_pcmu_gives_20ms_packets_with_8khz_timestamps() {
    let input = opus_tone(u32::MAX - 5 * 960);
    let mut p = OpusToG711::new(G711Law::Mu).unwrap();
    let mut pcm = Vec::new();
    let mut stamps = Vec::new();
    for (i, packet) in input.iter().enumerate() {
        if i == 20 {
            let out = p.lost(packet.timestamp).unwrap().unwrap();
            stamps.push(out.timestamp);
            continue;
        }
        let out = p.push(&packet.payload, packet.timestamp).unwrap().unwrap();
        assert_eq!(out.payload.len(), 160);
        stamps.push(out.timestamp);
        let mut dec = Vec::new();
        crate::g711::decode_into(G711Law::Mu, &out.payload, &mut dec);
        pcm.extend(dec);
    }
    for w in stamps.windows(2) {
        assert_eq!(
            w[1].wrapping_sub(w[0]),
            160,
            "timestamps advance 160 per 20 ms across the wrap"
        );
    }
    let f = dominant_frequency(&pcm[2000..2000 + 4096], 8_000);
    assert!((f - 1000.0).abs() <= 5.0, "dominant {f} Hz");
}

#[test]
fn pcma_to_opus_gives_opus_with_48khz_timestamps_and_keeps_the_tone() {
    let tone = sine(1000.0, 8_000, 0.5, 0, 16_000);
    let mut p = G711ToOpus::new(G711Law::A, OpusEncoderConfig::default()).unwrap();
    let mut out = Vec::new();
    for (i, chunk) in tone.chunks_exact(160).enumerate() {
        let mut payload = Vec::new();
        crate::g711::encode_into(G711Law::A, chunk, &mut payload);
        out.extend(p.push(&payload, 1000 + (i * 160) as u32).unwrap());
    }
    assert!(out.len() >= 98, "{} Opus packets", out.len());
    assert_eq!(out[0].timestamp, 6000);
    for w in out.windows(2) {
        assert_eq!(w[1].timestamp.wrapping_sub(w[0].timestamp), 960);
    }
    let mut dec = OpusDecoder::new(1).unwrap();
    let pcm: Vec<i16> = out
        .iter()
        .flat_map(|p| dec.decode(&p.payload, p.timestamp).unwrap().samples)
        .collect();
    let f = dominant_frequency(&pcm[9600..9600 + 32768], 48_000);
    assert!((f - 1000.0).abs() <= 5.0, "dominant {f} Hz");
}

#[test]
fn opus_to_aac_and_back_to_opus_keeps_the_tone() {
    let config = AacEncoderConfig {
        sample_rate: 44_100,
        channels: 2,
        bitrate: 128_000,
    };
    let mut to_aac = OpusToAac::new(config).unwrap();
    let asc = to_aac.audio_specific_config().to_vec();
    let mut aac = Vec::new();
    for packet in opus_tone(0) {
        aac.extend(to_aac.push(&packet.payload, packet.timestamp).unwrap());
    }
    assert!(aac.len() >= 40, "{} AAC units", aac.len());
    for w in aac.windows(2) {
        assert_eq!(w[1].timestamp - w[0].timestamp, 1024);
    }
    let mut to_opus = AacToOpus::new(&asc, OpusEncoderConfig::default()).unwrap();
    let mut opus = Vec::new();
    for unit in &aac {
        opus.extend(to_opus.push(&unit.payload, unit.timestamp).unwrap());
    }
    assert!(opus.len() >= 35, "{} Opus packets", opus.len());
    for w in opus.windows(2) {
        assert_eq!(
            w[1].timestamp.wrapping_sub(w[0].timestamp),
            960,
            "contiguous 20 ms packets"
        );
    }
    let mut dec = OpusDecoder::new(1).unwrap();
    let pcm: Vec<i16> = opus
        .iter()
        .flat_map(|p| dec.decode(&p.payload, p.timestamp).unwrap().samples)
        .collect();
    let f = dominant_frequency(&pcm[pcm.len() - 16384..], 48_000);
    assert!((f - 1000.0).abs() <= 5.0, "dominant {f} Hz");
}

#[test]
fn garbage_in_a_pipeline_is_an_error() {
    let mut p = OpusToG711::new(G711Law::Mu).unwrap();
    assert!(p.push(&[0x03], 0).is_err());
    assert!(AacToOpus::new(&[0xFF], OpusEncoderConfig::default()).is_err());
}

#[cfg(all(feature = "vp8", feature = "h264"))]
mod video {
    use super::super::{H264ToVp8, Vp8ToH264};
    use crate::video::h264::{H264Decoder, H264EncoderConfig};
    use crate::video::testpattern::{moving_pattern, psnr_y};
    use crate::video::vp8::{Vp8Decoder, Vp8Encoder, Vp8EncoderConfig};
    use crate::video::VideoFrame;

    const W: usize = 320;
    const H: usize = 240;

    #[test]
    fn vp8_to_h264_to_vp8_keeps_pictures_and_timestamps() {
        let mut vp8 = Vp8Encoder::new(Vp8EncoderConfig {
            width: W,
            height: H,
            bitrate_kbps: 2000,
            ..Default::default()
        })
        .unwrap();
        let mut to_h264 = Vp8ToH264::new(H264EncoderConfig {
            bitrate: 2_000_000,
            ..Default::default()
        })
        .unwrap();
        let mut h264_dec = H264Decoder::new().unwrap();
        let mut to_vp8 = H264ToVp8::new(Vp8EncoderConfig {
            bitrate_kbps: 2000,
            ..Default::default()
        })
        .unwrap();
        let mut vp8_dec = Vp8Decoder::new().unwrap();
        let mut h264_psnr = Vec::new();
        let mut vp8_psnr = Vec::new();
        let mut through = 0;
        for i in 0..20 {
            let raw = moving_pattern(W, H, i);
            let ts = (i * 3000) as u32;
            for frame in vp8
                .encode(&VideoFrame::new(W, H, raw.clone(), ts).unwrap())
                .unwrap()
            {
                let Some(au) = to_h264.push(&frame.data, frame.timestamp).unwrap() else {
                    continue;
                };
                assert_eq!(au.timestamp, ts);
                if let Some(pic) = h264_dec.decode(&au.data, au.timestamp).unwrap() {
                    h264_psnr.push(psnr_y(&raw, &pic.data, W, H));
                }
                for back in to_vp8.push(&au.data, au.timestamp).unwrap() {
                    assert_eq!(back.timestamp, ts);
                    if let Some(pic) = vp8_dec.decode(&back.data, back.timestamp).unwrap() {
                        vp8_psnr.push(psnr_y(&raw, &pic.data, W, H));
                        through += 1;
                    }
                }
            }
        }
        assert!(
            through >= 15,
            "{through} pictures made it through both hops"
        );
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
        let (h264, vp8) = (mean(&h264_psnr), mean(&vp8_psnr));
        eprintln!("mean luma PSNR: VP8→H.264 {h264:.1} dB, VP8→H.264→VP8 {vp8:.1} dB");
        // Each hop re-quantises: the second generation is allowed a little less.
        assert!(h264 >= 30.0, "VP8→H.264 mean PSNR {h264:.1} dB");
        assert!(vp8 >= 28.0, "VP8→H.264→VP8 mean PSNR {vp8:.1} dB");
    }
}
