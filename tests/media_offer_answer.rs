//! The media core on loopback, both roles: a gateway offer answered by a second PeerConnection,
//! ICE + DTLS up on both ends, RTP and data-channel messages crossing in both directions, and
//! an answer without an offer refused.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;

use bifrons::config::{DtlsConfig, IceConfig, LoopbackMode};
use bifrons::media::{
    AnswerPlan, DataMessage, LocalCandidate, MediaEngine, MediaError, MediaKind, OfferPlan,
    PeerListener, RtcpFeedback, RtpPacket, DATA_CHANNEL_LABEL,
};

#[derive(Debug)]
enum Seen {
    Connected,
    Rtp(MediaKind, RtpPacket),
    Data(String, DataMessage),
    Failed,
}

struct Probe(mpsc::UnboundedSender<Seen>);

impl PeerListener for Probe {
    fn on_connected(&self) {
        let _ = self.0.send(Seen::Connected);
    }
    fn on_media(&self, _kind: MediaKind, _mid: &str, _receiving: bool) {}
    fn on_rtp(&self, kind: MediaKind, packet: RtpPacket) {
        let _ = self.0.send(Seen::Rtp(kind, packet));
    }
    fn on_rtcp(&self, _kind: MediaKind, _feedback: RtcpFeedback) {}
    fn on_data(&self, label: &str, message: DataMessage) {
        let _ = self.0.send(Seen::Data(label.to_string(), message));
    }
    fn on_slowlink(&self, _kind: MediaKind, _mid: &str, _uplink: bool, _lost: u64) {}
    fn on_local_candidate(&self, _candidate: LocalCandidate) {}
    fn on_failed(&self, _reason: &'static str) {
        let _ = self.0.send(Seen::Failed);
    }
}

/// Hang guard only: on loopback this takes well under a second.
const GUARD: Duration = Duration::from_secs(30);

fn packet(seq: u16, payload: &'static [u8]) -> RtpPacket {
    RtpPacket {
        payload_type: 0,
        sequence_number: seq,
        timestamp: u32::from(seq) * 960,
        ssrc: 1,
        marker: false,
        payload: Bytes::from_static(payload),
    }
}

async fn wait_for(
    rx: &mut mpsc::UnboundedReceiver<Seen>,
    mut want: impl FnMut(&Seen) -> bool,
) -> bool {
    tokio::time::timeout(GUARD, async {
        while let Some(seen) = rx.recv().await {
            assert!(!matches!(seen, Seen::Failed), "PeerConnection failed");
            if want(&seen) {
                return true;
            }
        }
        false
    })
    .await
    .unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_offer_is_answered_and_media_and_data_flow_both_ways() {
    let ice = IceConfig {
        loopback: LoopbackMode::Always,
        ..Default::default()
    };
    let engine = MediaEngine::new(&ice, &DtlsConfig::default(), Duration::from_secs(1), 0).unwrap();
    let (tx_a, mut rx_a) = mpsc::unbounded_channel();
    let (tx_b, mut rx_b) = mpsc::unbounded_channel();
    let probe_a: Arc<dyn PeerListener> = Arc::new(Probe(tx_a));
    let probe_b: Arc<dyn PeerListener> = Arc::new(Probe(tx_b));
    let offerer = engine.create_peer(probe_a.clone()).await.unwrap();
    let answerer = engine.create_peer(probe_b.clone()).await.unwrap();

    let offer = offerer
        .offer(OfferPlan {
            audio: true,
            video: true,
            data: true,
        })
        .await
        .unwrap();
    assert!(
        offer.sdp.contains("opus/48000/2") && offer.sdp.contains("VP8/90000"),
        "{}",
        offer.sdp
    );
    assert!(
        offer.sdp.contains("a=candidate:"),
        "half trickle: candidates in the SDP"
    );
    assert!(matches!(
        answerer.accept_answer(&offer).await,
        Err(MediaError::UnexpectedAnswer)
    ));

    let answer = answerer
        .answer(
            &offer,
            AnswerPlan {
                send_audio: true,
                send_video: true,
            },
        )
        .await
        .unwrap();
    offerer.accept_answer(&answer).await.unwrap();
    assert!(
        wait_for(&mut rx_a, |s| matches!(s, Seen::Connected)).await,
        "offerer never connected"
    );
    assert!(
        wait_for(&mut rx_b, |s| matches!(s, Seen::Connected)).await,
        "answerer never connected"
    );

    // Tracks bind once DTLS is up: keep sending until the far end has seen a packet.
    let sender = tokio::spawn({
        let (offerer, answerer) = (offerer.clone(), answerer.clone());
        async move {
            for seq in 0..1500u16 {
                offerer.send_rtp(MediaKind::Audio, packet(seq, b"from-offerer"));
                answerer.send_rtp(MediaKind::Video, packet(seq, b"from-answerer"));
                offerer.send_data(DATA_CHANNEL_LABEL, DataMessage::Text("ping".into()));
                answerer.send_data(
                    DATA_CHANNEL_LABEL,
                    DataMessage::Binary(Bytes::from_static(b"pong")),
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    });
    let audio_at_b = wait_for(
        &mut rx_b,
        |s| matches!(s, Seen::Rtp(MediaKind::Audio, p) if p.payload.as_ref() == b"from-offerer"),
    );
    assert!(audio_at_b.await, "answerer received no audio");
    let video_at_a = wait_for(
        &mut rx_a,
        |s| matches!(s, Seen::Rtp(MediaKind::Video, p) if p.payload.as_ref() == b"from-answerer"),
    );
    assert!(video_at_a.await, "offerer received no video");
    let text_at_b = wait_for(
        &mut rx_b,
        |s| matches!(s, Seen::Data(label, DataMessage::Text(t)) if label == DATA_CHANNEL_LABEL && t == "ping"),
    );
    assert!(text_at_b.await, "answerer received no data-channel text");
    let binary_at_a = wait_for(
        &mut rx_a,
        |s| matches!(s, Seen::Data(_, DataMessage::Binary(b)) if b.as_ref() == b"pong"),
    );
    assert!(binary_at_a.await, "offerer received no data-channel binary");
    sender.abort();
    offerer.close().await;
    answerer.close().await;
}
