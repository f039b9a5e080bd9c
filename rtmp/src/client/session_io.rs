//! The byte plumbing both client roles (publisher and player) share around `ClientSession`.

use rml_rtmp::sessions::{ClientSession, ClientSessionEvent, ClientSessionResult};
use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::error::RtmpError;

/// Writes the outbound packets among `results` to the socket.
pub(super) async fn write_results<S: AsyncWrite + Unpin>(
    socket: &mut S,
    results: Vec<ClientSessionResult>,
) -> Result<(), RtmpError> {
    for result in results {
        if let ClientSessionResult::OutboundResponse(packet) = result {
            socket.write_all(&packet.bytes).await?;
        }
    }
    Ok(())
}

/// Feeds received bytes to the session, sends what it answers and returns its events.
/// The parser runs under `catch_unwind`: a panic on malformed input costs this connection only.
pub(super) async fn feed<S: AsyncWrite + Unpin>(
    session: &mut ClientSession,
    socket: &mut S,
    bytes: &[u8],
) -> Result<Vec<ClientSessionEvent>, RtmpError> {
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    let results =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| session.handle_input(bytes)))
            .map_err(|_| RtmpError::Protocol("chunk parser failed on malformed input".into()))?
            .map_err(|e| RtmpError::Protocol(e.to_string()))?;
    let mut events = Vec::new();
    let mut packets = Vec::new();
    for result in results {
        match result {
            ClientSessionResult::RaisedEvent(event) => events.push(event),
            other => packets.push(other),
        }
    }
    write_results(socket, packets).await?;
    Ok(events)
}
