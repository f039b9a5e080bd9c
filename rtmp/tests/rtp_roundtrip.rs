//! Real x264 access units (made by ffmpeg) through the RFC 6184 packetizer and depacketizer,
//! clean and with reordering and loss, then restreamed to RTMP timestamps.

mod common;

use bifrons_rtmp::rtp::{
    flv_ms_to_rtp, H264Depacketizer, H264Packetizer, H264RtpPacket, RtpToFlvClock,
};
use bifrons_rtmp::{AvcConfig, VideoFrame};
use bytes::Bytes;
use common::*;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

/// What the depacketizer must give back: the packetizer adds SPS/PPS before keyframes that lack
/// them and leaves out access unit delimiters.
fn expected_nalus(frame: &VideoFrame, config: &AvcConfig) -> Vec<Bytes> {
    let mut nalus = Vec::new();
    if frame.keyframe && !frame.nalus.iter().any(|n| n[0] & 0x1f == 7) {
        nalus.extend(config.sps.iter().cloned());
        nalus.extend(config.pps.iter().cloned());
    }
    nalus.extend(frame.nalus.iter().filter(|n| n[0] & 0x1f != 9).cloned());
    nalus
}

fn real_frames() -> (AvcConfig, Vec<VideoFrame>) {
    let dir = temp_dir("rtp");
    let path = dir.join("x264.flv");
    ffmpeg_make_flv(&path, 4);
    let media = read_flv_media(&path);
    let _ = std::fs::remove_dir_all(dir);
    (media.video_config, media.video)
}

fn packetize(config: &AvcConfig, frames: &[VideoFrame]) -> Vec<H264RtpPacket> {
    let mut packetizer = H264Packetizer::new(1200, 65_000);
    packetizer.set_config(config);
    let mut packets = Vec::new();
    for frame in frames {
        packetizer.packetize(frame, &mut packets);
    }
    packets
}

#[test]
fn real_frames_round_trip_identically() {
    let (config, frames) = real_frames();
    let packets = packetize(&config, &frames);
    assert!(
        packets.iter().any(|p| p.payload[0] & 0x1f == 28),
        "large frames must use FU-A"
    );
    assert!(
        packets.iter().any(|p| p.payload[0] & 0x1f == 24),
        "SPS+PPS should share a STAP-A"
    );
    assert!(packets.iter().all(|p| p.payload.len() <= 1200));
    let mut depacketizer = H264Depacketizer::new(64);
    let mut out = Vec::new();
    for p in packets {
        depacketizer.push(p, &mut out);
    }
    depacketizer.flush(&mut out);
    assert_eq!(out.len(), frames.len());
    let mut clock = RtpToFlvClock::new();
    for (got, want) in out.iter().zip(&frames) {
        assert_eq!(got.nalus, expected_nalus(want, &config));
        assert_eq!(got.keyframe, want.keyframe);
        assert_eq!(got.timestamp, flv_ms_to_rtp(want.pts_ms()));
        // Back to RTMP: presentation times relative to the first frame.
        assert_eq!(
            clock.to_flv_ms(got.timestamp),
            want.pts_ms() - frames[0].pts_ms()
        );
    }
    // A WebRTC publisher's in-band parameter sets rebuild the RTMP sequence header.
    let keyframe = &out[0].nalus;
    let rebuilt =
        AvcConfig::from_parameter_sets(vec![keyframe[0].clone()], vec![keyframe[1].clone()])
            .unwrap();
    assert_eq!(rebuilt, config);
}

#[test]
fn real_frames_survive_reordering_and_loss_without_damaged_output() {
    let (config, frames) = real_frames();
    for seed in 0..8u64 {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut packets = packetize(&config, &frames);
        let total = packets.len();
        packets.retain(|_| rng.gen_range(0..100) >= 2);
        let lost = total - packets.len();
        for window in packets.chunks_mut(6) {
            window.shuffle(&mut rng);
        }
        let mut depacketizer = H264Depacketizer::new(32);
        let mut out = Vec::new();
        for p in packets {
            depacketizer.push(p, &mut out);
        }
        depacketizer.flush(&mut out);
        let by_ts: std::collections::HashMap<u32, &VideoFrame> = frames
            .iter()
            .map(|f| (flv_ms_to_rtp(f.pts_ms()), f))
            .collect();
        for got in &out {
            let want = by_ts[&got.timestamp];
            assert_eq!(
                got.nalus,
                expected_nalus(want, &config),
                "seed {seed}: damaged frame emitted"
            );
        }
        assert!(out
            .windows(2)
            .all(|w| by_ts[&w[0].timestamp].dts_ms < by_ts[&w[1].timestamp].dts_ms));
        // Each lost packet costs at most its own frame and the one after it.
        assert!(
            out.len() + 2 * lost >= frames.len(),
            "seed {seed}: {} of {} frames with {lost} lost packets",
            out.len(),
            frames.len()
        );
        assert!(lost == 0 || depacketizer.dropped_frames() > 0);
    }
}
