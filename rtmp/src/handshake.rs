//! The RTMP handshake over a tokio stream, for both peer roles.

use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::error::RtmpError;

/// Runs the handshake and returns bytes the peer sent after it (the start of the chunk stream).
pub(crate) async fn handshake<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    peer: PeerType,
) -> Result<Vec<u8>, RtmpError> {
    let client = peer == PeerType::Client;
    let mut handshake = Handshake::new(peer);
    if client {
        let c0c1 = handshake
            .generate_outbound_p0_and_p1()
            .map_err(|e| RtmpError::Handshake(e.to_string()))?;
        stream.write_all(&c0c1).await?;
    }
    let mut buf = vec![0u8; 4096];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Err(RtmpError::Closed);
        }
        match handshake
            .process_bytes(&buf[..n])
            .map_err(|e| RtmpError::Handshake(e.to_string()))?
        {
            HandshakeProcessResult::InProgress { response_bytes } => {
                stream.write_all(&response_bytes).await?
            }
            HandshakeProcessResult::Completed {
                response_bytes,
                remaining_bytes,
            } => {
                stream.write_all(&response_bytes).await?;
                return Ok(remaining_bytes);
            }
        }
    }
}
