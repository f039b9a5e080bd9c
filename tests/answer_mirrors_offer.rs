//! Every answer mirrors its offer (RFC 3264 §6): a browser offer to the echo test with audio,
//! a video section the browser rejected itself (port 0, no direction, outside BUNDLE) and a
//! data channel gets an answer with exactly those three sections, in that order, the video
//! one with port 0; and the answer still connects.

mod support;

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::sync::mpsc;

use bifrons::ids::Mid;
use bifrons::media::{
    DataMessage, Jsep, LocalCandidate, MediaKind, OfferPlan, PeerListener, RtcpFeedback, RtpPacket,
    StreamInfo, StreamPlan,
};
use bifrons::plugins::echotest;
use support::client::{client_peer, session_with_handle};
use support::gateway::TestGateway;

struct Connected(mpsc::UnboundedSender<()>);

impl PeerListener for Connected {
    fn on_connected(&self) {
        let _ = self.0.send(());
    }
    fn on_media(&self, _: MediaKind, _: &Mid, _: bool) {}
    fn on_rtp(&self, _: &StreamInfo, _: RtpPacket) {}
    fn on_rtcp(&self, _: MediaKind, _: RtcpFeedback) {}
    fn on_data(&self, _: &str, _: DataMessage) {}
    fn on_local_candidate(&self, _: LocalCandidate) {}
    fn on_slowlink(&self, _: MediaKind, _: &Mid, _: bool, _: u64) {}
    fn on_failed(&self, _: &'static str) {}
}

/// Rewrites the `m=video` section of `sdp` as a browser does for a section it rejects.
fn reject_video(sdp: &str) -> (String, String) {
    let mut out = String::new();
    let mut in_video = false;
    let mut video_mid = String::new();
    for line in sdp.lines() {
        if line.starts_with("m=") {
            in_video = line.starts_with("m=video");
            if in_video {
                let fields: Vec<&str> = line.split(' ').collect();
                out.push_str(&format!("m=video 0 {} {}\r\n", fields[2], fields[3]));
                out.push_str("c=IN IP4 0.0.0.0\r\n");
                continue;
            }
        }
        if in_video {
            if let Some(mid) = line.strip_prefix("a=mid:") {
                video_mid = mid.to_string();
                out.push_str(line);
                out.push_str("\r\n");
            } else if let Some(rtpmap) =
                line.strip_prefix("a=rtpmap:").filter(|r| r.contains("VP8"))
            {
                out.push_str(&format!("a=rtpmap:{rtpmap}\r\n"));
            }
            continue;
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    let out = out.replace(
        &format!("a=group:BUNDLE 0 {video_mid} 2"),
        "a=group:BUNDLE 0 2",
    );
    (out, video_mid)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echotest_answer_keeps_a_rejected_video_section_in_place() {
    let gw = TestGateway::start(&[echotest::factory]).await;
    let (session, handle) = session_with_handle(&gw, "janus.plugin.echotest").await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let listener: Arc<dyn PeerListener> = Arc::new(Connected(tx));
    let client = client_peer(listener.clone()).await;
    let plan = OfferPlan {
        audio: Some(StreamPlan::sendrecv()),
        video: Some(StreamPlan::sendrecv()),
        data: true,
    };
    let offer = client.offer(&plan, false).await.unwrap();
    let (offer_sdp, video_mid) = reject_video(&offer.sdp);
    assert_eq!(video_mid, "1");
    assert!(offer_sdp.contains("m=video 0 "), "{offer_sdp}");

    let r = gw
        .message_jsep(
            session,
            handle,
            "o",
            json!({"audio": true, "video": true}),
            json!({"type": "offer", "sdp": offer_sdp}),
        )
        .await;
    assert_eq!(r["janus"], "ack", "{r}");
    let event = gw.wait_event(session, |e| e["transaction"] == "o").await;
    let answer = event["jsep"]["sdp"]
        .as_str()
        .unwrap_or_else(|| panic!("{event}"))
        .to_string();
    let kinds: Vec<(String, String)> = answer
        .lines()
        .filter(|l| l.starts_with("m="))
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            (f[0].to_string(), f[1].to_string())
        })
        .collect();
    assert_eq!(kinds.len(), 3, "one section per offered section: {answer}");
    assert_eq!(kinds[0].0, "m=audio");
    assert_eq!(
        kinds[1],
        ("m=video".to_string(), "0".to_string()),
        "{answer}"
    );
    assert_eq!(kinds[2].0, "m=application");
    let mids: Vec<&str> = answer
        .lines()
        .filter_map(|l| l.strip_prefix("a=mid:"))
        .collect();
    assert_eq!(mids, vec!["0", "1", "2"]);
    let bundle = answer
        .lines()
        .find_map(|l| l.strip_prefix("a=group:BUNDLE "))
        .unwrap();
    assert_eq!(bundle.trim(), "0 2");

    // The mirrored answer is one the offerer accepts, and the call comes up.
    client
        .accept_answer(&Jsep::answer(answer))
        .await
        .expect("offerer accepts the answer");
    tokio::time::timeout(Duration::from_secs(30), rx.recv())
        .await
        .expect("connected within 30 s");
    client.close().await;
    gw.stop().await;
}
