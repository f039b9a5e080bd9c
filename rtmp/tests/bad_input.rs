//! Hostile or broken peers cost only their own connection: the server keeps serving others.

mod common;

use std::time::Duration;

use bifrons_rtmp::client::{PublisherConfig, PublisherState, RtmpPublisher};
use bifrons_rtmp::server::{
    DuplicatePublisher, RtmpServer, ServerConfig, ServerEvent, StreamEvent,
};
use bytes::Bytes;
use common::*;
use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use rml_rtmp::sessions::{
    ClientSession, ClientSessionConfig, ClientSessionEvent, ClientSessionResult,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn strict_config() -> ServerConfig {
    ServerConfig {
        idle_timeout: Duration::from_secs(1),
        handshake_timeout: Duration::from_secs(1),
        ..loopback_config()
    }
}

async fn open_server(config: ServerConfig) -> RtmpServer {
    server_allowing(&["good", "a", "b", "stall", "hevc", "dup"], config).await
}

fn publisher(server: &RtmpServer, key: &str, reconnect: bool) -> RtmpPublisher {
    let mut config = PublisherConfig::new(format!("rtmp://{}/live/{key}", server.local_addr()));
    config.reconnect = reconnect;
    RtmpPublisher::start(config).unwrap()
}

async fn wait_state(p: &RtmpPublisher, pred: impl Fn(&PublisherState) -> bool) -> PublisherState {
    tokio::time::timeout(Duration::from_secs(10), p.wait_for(pred))
        .await
        .expect("publisher state")
}

/// A well-behaved publisher still gets its frames to a subscriber.
async fn assert_still_serving(server: &RtmpServer) {
    let p = publisher(server, "good", false);
    wait_state(&p, |s| *s == PublisherState::Publishing).await;
    p.send_video_config(&avc_config(), 0).unwrap();
    p.send_video(&keyframe(0)).unwrap();
    let mut sub = loop {
        if let Some(sub) = server.subscribe("live", "good") {
            break sub;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    p.send_video(&keyframe(40)).unwrap();
    let got = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Some(StreamEvent::Video(f)) = sub.next().await {
                if f.dts_ms == 40 {
                    return f;
                }
            }
        }
    })
    .await
    .expect("healthy publisher starved");
    assert_eq!(got, keyframe(40));
    p.close().await;
}

async fn handshaken(server: &RtmpServer) -> (TcpStream, Vec<u8>) {
    let mut socket = TcpStream::connect(server.local_addr()).await.unwrap();
    let mut hs = Handshake::new(PeerType::Client);
    socket
        .write_all(&hs.generate_outbound_p0_and_p1().unwrap())
        .await
        .unwrap();
    let mut buf = vec![0u8; 8192];
    loop {
        let n = socket.read(&mut buf).await.unwrap();
        assert!(n > 0, "server closed during handshake");
        match hs.process_bytes(&buf[..n]).unwrap() {
            HandshakeProcessResult::InProgress { response_bytes } => {
                socket.write_all(&response_bytes).await.unwrap()
            }
            HandshakeProcessResult::Completed {
                response_bytes,
                remaining_bytes,
            } => {
                socket.write_all(&response_bytes).await.unwrap();
                return (socket, remaining_bytes);
            }
        }
    }
}

/// Reads until the server closes the socket (or the hang guard fires).
async fn assert_closed_by_server(socket: &mut TcpStream) {
    let mut buf = vec![0u8; 65536];
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match socket.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .expect("server kept a broken connection open");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_and_garbage_handshakes_are_dropped() {
    let server = open_server(strict_config()).await;
    let mut events = server.events();
    // Half a C0+C1, then silence.
    let mut stalled = TcpStream::connect(server.local_addr()).await.unwrap();
    stalled.write_all(&[3u8; 700]).await.unwrap();
    // Half a C0+C1, then hang up.
    let mut cut = TcpStream::connect(server.local_addr()).await.unwrap();
    cut.write_all(&[3u8; 100]).await.unwrap();
    drop(cut);
    // A wrong protocol version byte.
    let mut wrong = TcpStream::connect(server.local_addr()).await.unwrap();
    wrong
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    wrong.write_all(&[0u8; 1600]).await.unwrap();

    assert_closed_by_server(&mut stalled).await;
    assert_closed_by_server(&mut wrong).await;
    wait_event(
        &mut events,
        Duration::from_secs(5),
        |e| matches!(e, ServerEvent::ConnectionFailed { error, .. } if error.contains("timed out")),
    )
    .await;
    assert_still_serving(&server).await;
}

/// One chunk with a type-0 header on chunk stream 10 (unused by session traffic).
fn raw_message(type_id: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0x0a, 0, 0, 0];
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
    out.push(type_id);
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(payload);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_message_types_are_ignored_and_the_session_continues() {
    let server = open_server(strict_config()).await;
    let (mut socket, _) = handshaken(&server).await;
    socket
        .write_all(&raw_message(0x42, b"future extension"))
        .await
        .unwrap();
    socket
        .write_all(&raw_message(0x07, &[1, 2, 3]))
        .await
        .unwrap();
    // Now a regular connect on the same connection must still be answered.
    let (mut session, initial) = ClientSession::new(ClientSessionConfig::new()).unwrap();
    for r in initial {
        if let ClientSessionResult::OutboundResponse(p) = r {
            socket.write_all(&p.bytes).await.unwrap();
        }
    }
    if let ClientSessionResult::OutboundResponse(p) =
        session.request_connection("live".into()).unwrap()
    {
        socket.write_all(&p.bytes).await.unwrap();
    }
    let mut buf = vec![0u8; 8192];
    let accepted = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let n = socket.read(&mut buf).await.unwrap();
            assert!(n > 0, "server hung up after an unknown message type");
            for r in session.handle_input(&buf[..n]).unwrap() {
                if let ClientSessionResult::RaisedEvent(
                    ClientSessionEvent::ConnectionRequestAccepted,
                ) = r
                {
                    return;
                }
            }
        }
    })
    .await;
    assert!(accepted.is_ok(), "connect not answered");
    assert_still_serving(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absurd_chunk_sizes_and_garbage_chunks_cost_only_that_connection() {
    let server = open_server(strict_config()).await;
    let mut events = server.events();
    let mut sockets = Vec::new();
    for size in [0u32, 1, 0x7fff_ffff, 0xffff_ffff] {
        let (mut socket, _) = handshaken(&server).await;
        socket
            .write_all(&raw_message(0x01, &size.to_be_bytes()))
            .await
            .unwrap();
        // A message announcing 16 MB followed by far less, then noise.
        let mut big = vec![0x0a, 0, 0, 0, 0xff, 0xff, 0xff, 0x09, 0, 0, 0, 0];
        big.extend_from_slice(&[0x17; 300]);
        socket.write_all(&big).await.unwrap();
        sockets.push(socket);
    }
    let (mut noise, _) = handshaken(&server).await;
    let garbage: Vec<u8> = (0..20_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let _ = noise.write_all(&garbage).await;
    sockets.push(noise);
    for socket in &mut sockets {
        assert_closed_by_server(socket).await;
    }
    wait_event(&mut events, Duration::from_secs(5), |e| {
        matches!(e, ServerEvent::ConnectionFailed { .. })
    })
    .await;
    assert_still_serving(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_publisher_is_dropped_with_an_event() {
    let server = open_server(strict_config()).await;
    let mut events = server.events();
    let p = publisher(&server, "stall", false);
    wait_state(&p, |s| *s == PublisherState::Publishing).await;
    p.send_video_config(&avc_config(), 0).unwrap();
    // ...and then nothing: the server gives up after its idle timeout.
    let stopped = wait_event(
        &mut events,
        Duration::from_secs(10),
        |e| matches!(e, ServerEvent::PublishStopped { key, .. } if key == "stall"),
    )
    .await;
    assert!(
        matches!(&stopped, ServerEvent::PublishStopped { reason, .. } if reason.contains("silent")),
        "{stopped:?}"
    );
    assert!(server.subscribe("live", "stall").is_none());
    let state = wait_state(&p, |s| matches!(s, PublisherState::Failed(_))).await;
    assert!(matches!(state, PublisherState::Failed(_)));
    assert_still_serving(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enhanced_rtmp_hevc_is_refused_as_unsupported_codec() {
    let server = open_server(strict_config()).await;
    let mut events = server.events();
    let p = publisher(&server, "hevc", false);
    wait_state(&p, |s| *s == PublisherState::Publishing).await;
    // Enhanced RTMP: IsExHeader | keyframe, PacketTypeSequenceStart, FourCC hvc1.
    p.send_video_tag(0, Bytes::from_static(b"\x90hvc1\x01\x01\x60\x00"))
        .unwrap();
    let event = wait_event(&mut events, Duration::from_secs(5), |e| {
        matches!(e, ServerEvent::UnsupportedCodec { .. })
    })
    .await;
    assert!(
        matches!(&event, ServerEvent::UnsupportedCodec { codec, key, .. } if codec.contains("HEVC") && key == "hevc"),
        "{event:?}"
    );
    wait_event(
        &mut events,
        Duration::from_secs(5),
        |e| matches!(e, ServerEvent::PublishStopped { key, .. } if key == "hevc"),
    )
    .await;
    wait_state(&p, |s| matches!(s, PublisherState::Failed(_))).await;
    assert_still_serving(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_publisher_is_refused_or_replaces_by_configuration() {
    let server = open_server(strict_config()).await;
    let first = publisher(&server, "dup", false);
    wait_state(&first, |s| *s == PublisherState::Publishing).await;
    let second = publisher(&server, "dup", false);
    let state = wait_state(&second, |s| matches!(s, PublisherState::Failed(_))).await;
    assert!(
        matches!(&state, PublisherState::Failed(e) if e.contains("NetStream.Publish.BadName")),
        "{state:?}"
    );
    drop(server);

    let server = open_server(ServerConfig {
        duplicate_publisher: DuplicatePublisher::Replace,
        ..strict_config()
    })
    .await;
    let mut events = server.events();
    let first = publisher(&server, "dup", false);
    wait_state(&first, |s| *s == PublisherState::Publishing).await;
    let second = publisher(&server, "dup", false);
    wait_state(&second, |s| *s == PublisherState::Publishing).await;
    let stopped = wait_event(&mut events, Duration::from_secs(5), |e| {
        matches!(e, ServerEvent::PublishStopped { .. })
    })
    .await;
    assert!(
        matches!(&stopped, ServerEvent::PublishStopped { reason, .. } if reason.contains("replaced")),
        "{stopped:?}"
    );
    wait_state(&first, |s| matches!(s, PublisherState::Failed(_))).await;
    assert!(server.subscribe("live", "dup").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_that_panics_the_chunk_parser_costs_only_its_connection() {
    // Found by the chunk_stream fuzz target: an AMF0 command with no values makes rml_rtmp 0.8
    // index out of bounds (messages/types/amf0_command.rs). The server contains it per connection.
    const CRASH: &[u8] = &[
        0x01, 0x0a, 0, 0, 0, 0x11, 0, 0, 0, 0x11, 0x5d, 0x29, 0x11, 0, 0, 0, 0, 0,
    ];
    let server = open_server(strict_config()).await;
    let mut events = server.events();
    let (mut socket, _) = handshaken(&server).await;
    socket.write_all(CRASH).await.unwrap();
    socket.write_all(&[0u8; 64]).await.unwrap();
    assert_closed_by_server(&mut socket).await;
    let failed = wait_event(&mut events, Duration::from_secs(5), |e| {
        matches!(e, ServerEvent::ConnectionFailed { .. })
    })
    .await;
    assert!(
        matches!(&failed, ServerEvent::ConnectionFailed { error, .. } if error.contains("malformed")),
        "{failed:?}"
    );
    assert_still_serving(&server).await;
}
