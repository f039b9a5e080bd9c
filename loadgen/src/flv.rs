//! The direct pull of the streaming scenario: an FLV byte stream (what an RTMP client
//! pulling the publisher writes, `ffmpeg -i rtmp://… -c copy -f flv`), read as it arrives,
//! each H.264 video tag's FLV time and arrival kept as a [`RefFrame`]. Also a plain byte
//! counter for HTTP-FLV pulls from another server (the relay comparison).

use crate::frames::RefFrame;
use anyhow::{bail, Result};
use std::time::Instant;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

/// FLV tag type of video (FLV spec v10.1, E.4.1).
const TAG_VIDEO: u8 = 9;
/// FLV video codec id of AVC (E.4.3.1).
const CODEC_AVC: u8 = 7;

/// One FLV tag header (11 bytes): tag type, data size (bytes), timestamp (ms, with its
/// extension byte).
pub fn parse_tag_header(h: &[u8; 11]) -> (u8, usize, i64) {
    let size = u32::from_be_bytes([0, h[1], h[2], h[3]]) as usize;
    let ts = u32::from_be_bytes([h[7], h[4], h[5], h[6]]) as i64;
    (h[0] & 0x1f, size, ts)
}

/// The frame a video tag's data holds, when it is an AVC NALU packet: presentation time
/// (`ts` + composition offset, ms) and whether it is a keyframe. Sequence headers and other
/// codecs are `None`.
pub fn video_frame(ts: i64, data: &[u8]) -> Option<(i64, bool)> {
    if data.len() < 5 || data[0] & 0x0f != CODEC_AVC || data[1] != 1 {
        return None;
    }
    // Composition time offset: signed 24 bits.
    let cts = (i32::from_be_bytes([data[2], data[3], data[4], 0]) >> 8) as i64;
    Some((ts + cts, data[0] >> 4 == 1))
}

/// Reads an FLV stream to its end (or until `stop`), timing each video tag's arrival on the
/// load client's clock.
///
/// Errors: a stream that does not start with the FLV signature.
pub async fn read_reference(
    mut r: impl AsyncRead + Unpin,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Result<Vec<RefFrame>> {
    let mut header = [0u8; 13];
    r.read_exact(&mut header).await?;
    if &header[..3] != b"FLV" {
        bail!("not an FLV stream");
    }
    let mut frames = Vec::new();
    let mut data = Vec::with_capacity(1 << 16);
    loop {
        let mut h = [0u8; 11];
        let tag = async {
            r.read_exact(&mut h).await?;
            let (_, size, _) = parse_tag_header(&h);
            data.resize(size + 4, 0);
            r.read_exact(&mut data).await?;
            Ok::<_, std::io::Error>(())
        };
        tokio::select! {
            res = tag => if res.is_err() { break },
            _ = stop.changed() => break,
        }
        let arrival = crate::clock::secs(Instant::now());
        let (kind, size, ts) = parse_tag_header(&h);
        if kind == TAG_VIDEO {
            if let Some((ms, key)) = video_frame(ts, &data[..size]) {
                frames.push(RefFrame { ms, arrival, key });
            }
        }
    }
    Ok(frames)
}

/// One HTTP-FLV pull (`GET path` on `addr`): bytes received while `counting` is true, until
/// `stop`. The response is not parsed, only drained: the figure is what the server spends
/// serving it.
///
/// Errors: connecting or writing the request.
pub async fn http_pull(
    addr: std::net::SocketAddr,
    path: String,
    counting: tokio::sync::watch::Receiver<bool>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Result<u64> {
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await?;
    let mut buf = vec![0u8; 1 << 16];
    let mut bytes = 0u64;
    loop {
        tokio::select! {
            r = s.read(&mut buf) => match r {
                Ok(0) | Err(_) => break,
                Ok(n) => if *counting.borrow() { bytes += n as u64 },
            },
            _ = stop.changed() => break,
        }
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_header_and_avc_frames() {
        let h = [9, 0, 1, 2, 0x12, 0x34, 0x56, 0x01, 0, 0, 0];
        assert_eq!(parse_tag_header(&h), (9, 258, 0x0112_3456));
        // Keyframe NALU packet with composition offset 66 ms; inter frame with -1.
        assert_eq!(
            video_frame(1000, &[0x17, 1, 0, 0, 66, 0]),
            Some((1066, true))
        );
        assert_eq!(
            video_frame(1000, &[0x27, 1, 0xff, 0xff, 0xff]),
            Some((999, false))
        );
        // Sequence header, VP6, short.
        assert_eq!(video_frame(0, &[0x17, 0, 0, 0, 0]), None);
        assert_eq!(video_frame(0, &[0x14, 1, 0, 0, 0]), None);
        assert_eq!(video_frame(0, &[0x17, 1]), None);
    }

    #[tokio::test]
    async fn reads_video_tags_of_a_stream() {
        let mut s = b"FLV\x01\x05\0\0\0\x09\0\0\0\0".to_vec();
        for (kind, ts, data) in [
            (9u8, 0u32, vec![0x17u8, 0, 0, 0, 0, 1]),
            (8, 10, vec![0xaf, 1, 9]),
            (9, 33, vec![0x17, 1, 0, 0, 0, 5]),
            (9, 66, vec![0x27, 1, 0, 0, 0, 5]),
        ] {
            let len = data.len() as u32;
            s.push(kind);
            s.extend_from_slice(&len.to_be_bytes()[1..]);
            s.extend_from_slice(&ts.to_be_bytes()[1..]);
            s.extend_from_slice(&[0, 0, 0, 0]);
            s.extend_from_slice(&data);
            s.extend_from_slice(&(len + 11).to_be_bytes());
        }
        let (_tx, stop) = tokio::sync::watch::channel(false);
        let frames = read_reference(&s[..], stop).await.unwrap();
        let got: Vec<(i64, bool)> = frames.iter().map(|f| (f.ms, f.key)).collect();
        assert_eq!(got, vec![(33, true), (66, false)]);
    }
}
