//! Echo test recording end to end: a WebRTC client (a second webrtc-rs PeerConnection on
//! loopback) sends three seconds of real Opus to the echo test over DTLS-SRTP while
//! `record: true` is set through the Janus HTTP API; the Ogg/Opus file must decode in ffprobe
//! with that duration, and the registry must hold its row.

mod support;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::json;
use tokio::sync::mpsc;

use bifrons::ids::Mid;
use bifrons::media::{
    DataMessage, LocalCandidate, MediaKind, PeerListener, RtcpFeedback, RtpPacket, StreamInfo,
};
use bifrons::plugins::echotest;
use bifrons::storage::{Page, RecordingFilter, RecordingKind};
use support::client::echotest_audio_call;
use support::gateway::TestGateway;
use support::media::{ffprobe, sine_packets, FRAME};

#[derive(Debug, PartialEq)]
enum Seen {
    Connected,
    /// The sequence number of an audio packet echoed back.
    Echo(u16),
    Failed,
}

/// The client's side: when it is connected, and the audio echoed back to it.
struct Client(mpsc::UnboundedSender<Seen>);

impl PeerListener for Client {
    fn on_connected(&self) {
        let _ = self.0.send(Seen::Connected);
    }
    fn on_media(&self, _: MediaKind, _: &Mid, _: bool) {}
    fn on_rtp(&self, stream: &StreamInfo, packet: RtpPacket) {
        if stream.kind == MediaKind::Audio {
            let _ = self.0.send(Seen::Echo(packet.sequence_number));
        }
    }
    fn on_rtcp(&self, _: MediaKind, _: RtcpFeedback) {}
    fn on_data(&self, _: &str, _: DataMessage) {}
    fn on_local_candidate(&self, _: LocalCandidate) {}
    fn on_slowlink(&self, _: MediaKind, _: &Mid, _: bool, _: u64) {}
    fn on_failed(&self, _: &'static str) {
        let _ = self.0.send(Seen::Failed);
    }
}

/// Waits (30 s hang guard) for an event `want` accepts.
async fn wait_for(rx: &mut mpsc::UnboundedReceiver<Seen>, want: impl Fn(&Seen) -> bool) {
    tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(seen) = rx.recv().await {
            assert_ne!(seen, Seen::Failed, "client PeerConnection failed");
            if want(&seen) {
                return;
            }
        }
    })
    .await
    .expect("client event within 30 s");
}

fn opus(seq: u16, timestamp: u32, payload: &[u8]) -> RtpPacket {
    RtpPacket {
        payload_type: 111,
        sequence_number: seq,
        timestamp,
        ssrc: 0x5eed,
        marker: false,
        payload: Bytes::copy_from_slice(payload),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_true_writes_an_ogg_opus_file_with_the_sent_duration_and_a_registry_row() {
    let gw = TestGateway::start(&[echotest::factory]).await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let listener: Arc<dyn PeerListener> = Arc::new(Client(tx));
    let (session, handle, client) = echotest_audio_call(&gw, listener.clone()).await;
    wait_for(&mut rx, |s| *s == Seen::Connected).await;

    // Warm up until audio comes back: from then on the path is up and nothing is lost to
    // DTLS or track binding, so the recording holds exactly what is sent next.
    let frames = sine_packets(3);
    let mut seq = 0u16;
    let mut timestamp = 0x7fff_0000u32;
    let warm = tokio::spawn({
        let client = client.clone();
        let first = frames[0].clone();
        async move {
            for i in 0..1500u32 {
                client.send_rtp(MediaKind::Audio, opus(i as u16, i * FRAME as u32, &first));
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    });
    wait_for(&mut rx, |s| matches!(s, Seen::Echo(_))).await;
    warm.abort();
    seq = seq.wrapping_add(1500);
    timestamp = timestamp.wrapping_add(1500 * FRAME as u32);

    let r = gw
        .message(
            session,
            handle,
            "rec",
            json!({"record": true, "filename": "take-1"}),
        )
        .await;
    assert_eq!(r["janus"], "ack");
    let event = gw.wait_event(session, |e| e["transaction"] == "rec").await;
    assert_eq!(event["plugindata"]["data"]["result"], "ok", "{event}");
    for payload in &frames {
        client.send_rtp(MediaKind::Audio, opus(seq, timestamp, payload));
        seq = seq.wrapping_add(1);
        timestamp = timestamp.wrapping_add(FRAME as u32);
        // Pacing only keeps the loopback socket buffers from overflowing; the file's
        // duration comes from the RTP timestamps.
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    // The echo passes through the same receive path as the recording: once the last
    // packet came back, every packet before it reached the recorder.
    let last = seq.wrapping_sub(1);
    wait_for(&mut rx, |s| *s == Seen::Echo(last)).await;
    let r = gw
        .message(session, handle, "stop", json!({"record": false}))
        .await;
    assert_eq!(r["janus"], "ack");
    gw.wait_event(session, |e| e["transaction"] == "stop").await;

    let rows = gw
        .core
        .storage
        .recordings()
        .list(
            &RecordingFilter {
                kind: Some(RecordingKind::Echotest),
                ..Default::default()
            },
            Page::first(10),
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    let row = &rows[0];
    assert_eq!(row.meta.file_path, "echotest/take-1.opus");
    assert_eq!(row.meta.codec, "opus");
    let path = gw.dir.path().join("recordings").join(&row.meta.file_path);
    let probe = ffprobe(&path);
    assert_eq!(probe.codec, "opus");
    assert!(
        (probe.duration_s - 3.0).abs() <= 0.1,
        "3 s were recorded, ffprobe says {} s",
        probe.duration_s
    );
    assert!((row.meta.duration_ms as i64 - 3000).abs() <= 100, "{row:?}");
    assert_eq!(row.meta.size_bytes, std::fs::metadata(&path).unwrap().len());
    client.close().await;
    gw.stop().await;
}
