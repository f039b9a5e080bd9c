//! The WebSocket transports answer the closing handshake (RFC 6455 §5.5.1): a client that
//! closes with 1000 gets a Close frame with 1000 back, not an abrupt end (which browsers and
//! `ws` report as 1006).

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

use bifrons::plugins::echotest;
use support::gateway::TestGateway;

/// Opens `addr` with `protocol`, sends one request, closes with 1000 and returns the close
/// code the gateway answers with.
async fn close_code_answered(addr: SocketAddr, protocol: &str, request: &str) -> CloseCode {
    let mut req = format!("ws://{addr}/").into_client_request().unwrap();
    req.headers_mut()
        .insert("Sec-WebSocket-Protocol", protocol.parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .expect("connect");
    ws.send(Message::text(request)).await.unwrap();
    // The reply first, so the close races nothing.
    loop {
        match ws.next().await.expect("a reply").expect("frame") {
            Message::Text(_) => break,
            _ => continue,
        }
    }
    ws.send(Message::Close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "bye".into(),
    })))
    .await
    .unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(frame) = ws.next().await {
            match frame {
                Ok(Message::Close(frame)) => return frame.map(|f| f.code),
                Ok(_) => continue,
                Err(e) => panic!("no Close frame back: {e}"),
            }
        }
        panic!("stream ended without a Close frame");
    })
    .await
    .expect("Close frame within 5 s");
    answer.expect("the Close frame carries a code")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_1000_is_answered_with_1000_on_the_janus_and_admin_websockets() {
    let gw = TestGateway::start(&[echotest::factory]).await;
    let janus = close_code_answered(
        gw.ws,
        "janus-protocol",
        r#"{"janus":"ping","transaction":"p"}"#,
    )
    .await;
    assert_eq!(janus, CloseCode::Normal);
    let admin = close_code_answered(
        gw.admin_ws,
        "janus-admin-protocol",
        r#"{"janus":"ping","transaction":"p"}"#,
    )
    .await;
    assert_eq!(admin, CloseCode::Normal);
    gw.stop().await;
}
