//! The user agent as a notifier (RFC 6665) of a published state document, message waiting
//! (RFC 3842) here: a subscriber on a raw UDP socket subscribes, gets 200 and the current
//! state at once, every new state, a refresh, and a `terminated` NOTIFY on `Expires: 0`;
//! unknown packages get 489 with `Allow-Events`; a refresh of a dialog we do not hold, 481.
//! Unsolicited NOTIFY (no subscription) reaches its target with the event headers.

use bifrons_sip::event::{MessageSummary, MESSAGE_SUMMARY, SIMPLE_MESSAGE_SUMMARY};
use bifrons_sip::message::{self as m, header_value};
use bifrons_sip::{Ua, UaConfig};
use rsip::SipMessage;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::UdpSocket;

const WAIT: Duration = Duration::from_secs(5);

struct Subscriber {
    sock: UdpSocket,
    ua: SocketAddr,
    call_id: String,
    cseq: u32,
    to_tag: Option<String>,
}

impl Subscriber {
    async fn new(ua: SocketAddr, call_id: &str) -> Self {
        Self {
            sock: UdpSocket::bind("127.0.0.1:0").await.unwrap(),
            ua,
            call_id: call_id.into(),
            cseq: 0,
            to_tag: None,
        }
    }

    async fn subscribe(&mut self, event: &str, expires: Option<u32>) {
        self.cseq += 1;
        let local = self.sock.local_addr().unwrap();
        let to_tag = self
            .to_tag
            .as_ref()
            .map(|t| format!(";tag={t}"))
            .unwrap_or_default();
        let expires = expires
            .map(|e| format!("Expires: {e}\r\n"))
            .unwrap_or_default();
        let req = format!(
            "SUBSCRIBE sip:100@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKs{}{};rport\r\nMax-Forwards: 70\r\nFrom: <sip:phone@127.0.0.1>;tag=p1\r\nTo: <sip:100@127.0.0.1>{to_tag}\r\nCall-ID: {}\r\nCSeq: {} SUBSCRIBE\r\nContact: <sip:phone@{local}>\r\nEvent: {event}\r\nAccept: application/simple-message-summary\r\n{expires}Content-Length: 0\r\n\r\n",
            self.call_id, self.cseq, self.call_id, self.cseq
        );
        self.sock.send_to(req.as_bytes(), self.ua).await.unwrap();
    }

    /// The next message from the UA; NOTIFYs are answered 200.
    async fn next(&self) -> SipMessage {
        let mut buf = vec![0u8; 8192];
        let (n, from) = tokio::time::timeout(WAIT, self.sock.recv_from(&mut buf))
            .await
            .expect("a message from the UA")
            .unwrap();
        let msg = m::parse(&buf[..n]).unwrap();
        if let SipMessage::Request(req) = &msg {
            let resp = m::response_to(req, 200, None);
            self.sock
                .send_to(&m::to_bytes(&SipMessage::Response(resp)), from)
                .await
                .unwrap();
        }
        msg
    }

    async fn response(&mut self) -> rsip::Response {
        loop {
            if let SipMessage::Response(r) = self.next().await {
                if self.to_tag.is_none() {
                    self.to_tag = header_value(&r.headers, "to").and_then(|v| m::param(&v, "tag"));
                }
                return r;
            }
        }
    }

    async fn notify(&self) -> rsip::Request {
        loop {
            if let SipMessage::Request(r) = self.next().await {
                return r;
            }
        }
    }
}

fn summary(req: &rsip::Request) -> MessageSummary {
    assert_eq!(req.method, rsip::Method::Notify);
    assert_eq!(
        header_value(&req.headers, "event").as_deref(),
        Some(MESSAGE_SUMMARY)
    );
    assert_eq!(
        header_value(&req.headers, "content-type").as_deref(),
        Some(SIMPLE_MESSAGE_SUMMARY)
    );
    MessageSummary::parse(&req.body).unwrap()
}

fn substate(req: &rsip::Request) -> String {
    header_value(&req.headers, "subscription-state").unwrap_or_default()
}

async fn publish(ua: &Ua, new: u32, old: u32) -> usize {
    let body = MessageSummary::voice(Some("sip:100@127.0.0.1".into()), new, old).to_body();
    ua.set_event_state(MESSAGE_SUMMARY, SIMPLE_MESSAGE_SUMMARY, body.into_bytes())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_gets_the_state_every_change_and_a_last_notify_on_unsubscribe() {
    let (ua, _ev) = Ua::start(UaConfig::default()).await.unwrap();
    assert_eq!(publish(&ua, 0, 0).await, 0, "nobody subscribed yet");
    let mut phone = Subscriber::new(ua.local_addr(), "sub-1").await;
    phone.subscribe("message-summary", Some(600)).await;
    let ok = phone.response().await;
    assert_eq!(m::status(&ok), 200);
    assert_eq!(header_value(&ok.headers, "expires").as_deref(), Some("600"));
    let first = phone.notify().await;
    assert!(!summary(&first).waiting);
    assert!(
        substate(&first).starts_with("active;expires="),
        "{}",
        substate(&first)
    );
    // The NOTIFY is in the subscription's dialog.
    assert_eq!(
        header_value(&first.headers, "call-id").as_deref(),
        Some("sub-1")
    );
    let to = header_value(&first.headers, "to").unwrap();
    assert_eq!(m::param(&to, "tag").as_deref(), Some("p1"));

    assert_eq!(publish(&ua, 2, 1).await, 1);
    let s = summary(&phone.notify().await);
    assert!(s.waiting);
    assert_eq!(s.voice.map(|v| (v.new, v.old)), Some((2, 1)));

    // A refresh is answered and followed by the state again.
    phone.subscribe("message-summary", Some(60)).await;
    assert_eq!(
        header_value(&phone.response().await.headers, "expires").as_deref(),
        Some("60")
    );
    assert_eq!(summary(&phone.notify().await).voice.unwrap().new, 2);

    // Unsubscribe: 200, a terminated NOTIFY, and no more NOTIFYs.
    phone.subscribe("message-summary", Some(0)).await;
    assert_eq!(m::status(&phone.response().await), 200);
    let last = phone.notify().await;
    assert!(
        substate(&last).starts_with("terminated"),
        "{}",
        substate(&last)
    );
    assert_eq!(publish(&ua, 3, 1).await, 0, "the subscription is gone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_packages_get_489_and_unknown_dialogs_481() {
    let (ua, _ev) = Ua::start(UaConfig::default()).await.unwrap();
    publish(&ua, 1, 0).await;
    let mut phone = Subscriber::new(ua.local_addr(), "sub-2").await;
    phone.subscribe("presence", None).await;
    let r = phone.response().await;
    assert_eq!(m::status(&r), 489);
    assert_eq!(
        header_value(&r.headers, "allow-events").as_deref(),
        Some("message-summary")
    );
    phone.to_tag = Some("never-given".into());
    phone.subscribe("message-summary", Some(60)).await;
    assert_eq!(m::status(&phone.response().await), 481);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsolicited_notify_carries_the_event_and_the_summary() {
    let (ua, _ev) = Ua::start(UaConfig::default()).await.unwrap();
    let phone = Subscriber::new(ua.local_addr(), "unused").await;
    let target = format!("sip:phone@{}", phone.sock.local_addr().unwrap());
    let body = MessageSummary::voice(None, 1, 0).to_body().into_bytes();
    let sent = tokio::spawn(async move {
        ua.notify_unsolicited(&target, MESSAGE_SUMMARY, SIMPLE_MESSAGE_SUMMARY, body)
            .await
    });
    let req = phone.notify().await;
    assert!(summary(&req).waiting);
    assert_eq!(substate(&req), "active");
    assert_eq!(sent.await.unwrap().unwrap(), 200);
}
