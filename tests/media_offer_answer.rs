//! The media core on loopback, both roles: a gateway offer answered by a second PeerConnection,
//! ICE + DTLS up on both ends, RTP and data-channel messages crossing in both directions, and
//! an answer without an offer refused; codec plans and directions, and what each side learns
//! was negotiated.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;

use bifrons::config::{DtlsConfig, IceConfig, LoopbackMode, MediaConfig};
use bifrons::ids::{Mid, Pt};
use bifrons::media::{
    AnswerPlan, Codec, DataMessage, Direction, LocalCandidate, MediaEngine, MediaError, MediaKind,
    OfferPlan, Peer, PeerListener, RtcpFeedback, RtpPacket, StreamInfo, StreamPlan,
    DATA_CHANNEL_LABEL,
};

#[derive(Debug)]
enum Seen {
    Connected,
    Rtp(StreamInfo, RtpPacket),
    Data(String, DataMessage),
    Failed,
}

struct Probe(mpsc::UnboundedSender<Seen>);

impl PeerListener for Probe {
    fn on_connected(&self) {
        let _ = self.0.send(Seen::Connected);
    }
    fn on_media(&self, _kind: MediaKind, _mid: &Mid, _receiving: bool) {}
    fn on_rtp(&self, stream: &StreamInfo, packet: RtpPacket) {
        let _ = self.0.send(Seen::Rtp(stream.clone(), packet));
    }
    fn on_rtcp(&self, _kind: MediaKind, _feedback: RtcpFeedback) {}
    fn on_data(&self, label: &str, message: DataMessage) {
        let _ = self.0.send(Seen::Data(label.to_string(), message));
    }
    fn on_slowlink(&self, _kind: MediaKind, _mid: &Mid, _uplink: bool, _lost: u64) {}
    fn on_local_candidate(&self, _candidate: LocalCandidate) {}
    fn on_failed(&self, _reason: &'static str) {
        let _ = self.0.send(Seen::Failed);
    }
}

/// Hang guard only: on loopback this takes well under a second.
const GUARD: Duration = Duration::from_secs(30);

fn packet(seq: u16, payload: &'static [u8]) -> RtpPacket {
    RtpPacket {
        payload_type: 111,
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

struct Pair {
    offerer: Arc<Peer>,
    answerer: Arc<Peer>,
    rx_a: mpsc::UnboundedReceiver<Seen>,
    rx_b: mpsc::UnboundedReceiver<Seen>,
    _probes: (Arc<dyn PeerListener>, Arc<dyn PeerListener>),
}

async fn pair() -> Pair {
    let ice = IceConfig {
        loopback: LoopbackMode::Always,
        ..Default::default()
    };
    let engine = MediaEngine::new(
        &ice,
        &DtlsConfig::default(),
        &MediaConfig::default(),
        Duration::from_secs(1),
        0,
    )
    .unwrap();
    let (tx_a, rx_a) = mpsc::unbounded_channel();
    let (tx_b, rx_b) = mpsc::unbounded_channel();
    let probe_a: Arc<dyn PeerListener> = Arc::new(Probe(tx_a));
    let probe_b: Arc<dyn PeerListener> = Arc::new(Probe(tx_b));
    Pair {
        offerer: engine.create_peer(probe_a.clone()).await.unwrap(),
        answerer: engine.create_peer(probe_b.clone()).await.unwrap(),
        rx_a,
        rx_b,
        _probes: (probe_a, probe_b),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_offer_is_answered_and_media_and_data_flow_both_ways() {
    let Pair {
        offerer,
        answerer,
        mut rx_a,
        mut rx_b,
        _probes,
    } = pair().await;

    let plan = OfferPlan {
        audio: Some(StreamPlan::sendrecv()),
        video: Some(StreamPlan::sendrecv()),
        data: true,
    };
    let offer = offerer.offer(&plan, false).await.unwrap();
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

    let (answer, settled_b) = answerer.answer(&offer, &AnswerPlan::echo()).await.unwrap();
    let settled_a = offerer.accept_answer(&answer).await.unwrap();
    for settled in [&settled_a, &settled_b] {
        let audio = settled.first(MediaKind::Audio).unwrap();
        assert_eq!(
            (audio.codec.clone(), audio.direction),
            (Some(Codec::Opus), Direction::SendRecv)
        );
        let video = settled.first(MediaKind::Video).unwrap();
        assert_eq!(
            (video.codec.clone(), video.direction),
            (Some(Codec::Vp8), Direction::SendRecv)
        );
        assert_ne!(audio.mid, video.mid);
    }
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
        |s| matches!(s, Seen::Rtp(i, p) if i.kind == MediaKind::Audio && p.payload.as_ref() == b"from-offerer"),
    );
    assert!(audio_at_b.await, "answerer received no audio");
    let video_at_a = wait_for(
        &mut rx_a,
        |s| matches!(s, Seen::Rtp(i, p) if i.kind == MediaKind::Video && p.payload.as_ref() == b"from-answerer"),
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

    // Renegotiation with an ICE restart: new credentials, the same streams.
    let ufrag = |sdp: &str| {
        sdp.lines()
            .find_map(|l| l.strip_prefix("a=ice-ufrag:"))
            .map(str::to_string)
    };
    let restart = offerer.offer(&plan, true).await.unwrap();
    assert_ne!(
        ufrag(&restart.sdp),
        ufrag(&offer.sdp),
        "ICE restart changes the ufrag"
    );
    let (answer, _) = answerer
        .answer(&restart, &AnswerPlan::echo())
        .await
        .unwrap();
    let settled = offerer.accept_answer(&answer).await.unwrap();
    assert_eq!(
        settled.streams.len(),
        2,
        "the same two streams after the restart"
    );
    offerer.close().await;
    answerer.close().await;
}

/// A SIP-style gateway offer: PCMU with DTMF and H.264, both sendonly (what a viewer or a
/// PBX leg gets). The other side answers without sending: both learn PCMU/H.264 and the
/// directions, and the audio that flows arrives tagged with its codec.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codec_plans_and_directions_are_offered_and_reported() {
    let Pair {
        offerer,
        answerer,
        mut rx_a,
        mut rx_b,
        _probes,
    } = pair().await;
    let plan = OfferPlan {
        audio: Some(StreamPlan::new(
            Direction::SendOnly,
            vec![Codec::Pcmu, Codec::TelephoneEvent { clock_rate: 8000 }],
        )),
        video: Some(StreamPlan::new(
            Direction::SendOnly,
            vec![Codec::h264_baseline()],
        )),
        data: false,
    };
    let offer = offerer.offer(&plan, false).await.unwrap();
    let audio_line = offer
        .sdp
        .lines()
        .find(|l| l.starts_with("m=audio"))
        .unwrap();
    assert!(
        audio_line.ends_with(" 0 126"),
        "PCMU first, then DTMF: {audio_line}"
    );
    assert!(offer.sdp.contains("a=sendonly"), "{}", offer.sdp);
    assert!(
        !offer.sdp.contains("opus"),
        "only the plan's codecs: {}",
        offer.sdp
    );
    assert!(offer.sdp.contains("packetization-mode=1"), "{}", offer.sdp);

    let (answer, at_b) = answerer
        .answer(&offer, &AnswerPlan::default())
        .await
        .unwrap();
    let at_a = offerer.accept_answer(&answer).await.unwrap();
    let audio_a = at_a.first(MediaKind::Audio).unwrap();
    assert_eq!(audio_a.codec, Some(Codec::Pcmu));
    assert_eq!((audio_a.pt, audio_a.clock_rate), (Pt(0), 8000));
    assert_eq!(audio_a.dtmf_pt, Some(Pt(126)));
    assert_eq!(audio_a.direction, Direction::SendOnly);
    let audio_b = at_b.first(MediaKind::Audio).unwrap();
    assert_eq!(
        (audio_b.codec.clone(), audio_b.direction),
        (Some(Codec::Pcmu), Direction::RecvOnly)
    );
    let video_b = at_b.first(MediaKind::Video).unwrap();
    assert!(matches!(
        video_b.codec,
        Some(Codec::H264 {
            packetization_mode: 1,
            ..
        })
    ));
    assert_eq!(video_b.direction, Direction::RecvOnly);

    assert!(wait_for(&mut rx_a, |s| matches!(s, Seen::Connected)).await);
    assert!(wait_for(&mut rx_b, |s| matches!(s, Seen::Connected)).await);
    let sender = tokio::spawn({
        let offerer = offerer.clone();
        async move {
            for seq in 0..1500u16 {
                let mut p = packet(seq, b"pcmu");
                p.payload_type = 0;
                offerer.send_rtp(MediaKind::Audio, p);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    });
    let tagged = wait_for(
        &mut rx_b,
        |s| matches!(s, Seen::Rtp(i, p) if i.codec == Some(Codec::Pcmu) && i.pt == Pt(0) && i.mid == audio_b.mid && p.payload.as_ref() == b"pcmu"),
    );
    assert!(
        tagged.await,
        "answerer received no PCMU tagged with its stream info"
    );
    sender.abort();
    offerer.close().await;
    answerer.close().await;
}

/// An answer follows the plugin's preference, not the offer's order, and refuses an offer
/// with none of the codecs it needs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answer_prefers_the_plan_order_and_refuses_without_common_codec() {
    let p = pair().await;
    let plan = OfferPlan {
        audio: Some(StreamPlan::new(
            Direction::SendRecv,
            vec![Codec::Opus, Codec::Pcmu],
        )),
        video: None,
        data: false,
    };
    let offer = p.offerer.offer(&plan, false).await.unwrap();
    let (answer, settled) = p
        .answerer
        .answer(
            &offer,
            &AnswerPlan {
                audio: Some(StreamPlan::new(Direction::SendRecv, vec![Codec::Pcmu])),
                video: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        settled.first(MediaKind::Audio).unwrap().codec,
        Some(Codec::Pcmu),
        "{}",
        answer.sdp
    );
    let pcma_only = AnswerPlan {
        audio: Some(StreamPlan::new(Direction::SendRecv, vec![Codec::Pcma])),
        video: None,
    };
    let q = pair().await;
    let offer = q.offerer.offer(&plan, false).await.unwrap();
    assert_eq!(
        q.answerer.answer(&offer, &pcma_only).await.unwrap_err(),
        MediaError::NoCommonCodec("audio")
    );
}
