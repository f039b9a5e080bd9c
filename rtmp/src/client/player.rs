//! RTMP pull: play `rtmp://host[:port]/app/key` and receive its tags (to ingest an RTMP source
//! that cannot push, and to measure the server's fan-out).

use rml_rtmp::handshake::PeerType;
use rml_rtmp::sessions::{
    ClientSession, ClientSessionConfig, ClientSessionEvent, ClientSessionResult,
};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tracing::debug;

use super::session_io;
use super::RtmpUrl;
use crate::error::RtmpError;
use crate::handshake::handshake;
use crate::tag::Tag;

/// A connection playing one stream.
pub struct RtmpPlayer {
    socket: TcpStream,
    session: ClientSession,
    buf: Vec<u8>,
    pending: std::collections::VecDeque<Tag>,
}

impl RtmpPlayer {
    /// Connects and asks to play; returns once the server accepted.
    pub async fn connect(url: &str) -> Result<Self, RtmpError> {
        let url = RtmpUrl::parse(url)?;
        if url.tls {
            return Err(RtmpError::InvalidUrl(format!(
                "{}: playing over rtmps is not supported",
                url.tc_url()
            )));
        }
        let mut socket = TcpStream::connect((url.host.as_str(), url.port)).await?;
        let _ = socket.set_nodelay(true);
        let leftover = handshake(&mut socket, PeerType::Client).await?;
        let mut config = ClientSessionConfig::new();
        config.tc_url = Some(url.tc_url());
        let (session, initial) =
            ClientSession::new(config).map_err(|e| RtmpError::Protocol(e.to_string()))?;
        let mut this = Self {
            socket,
            session,
            buf: vec![0u8; 64 * 1024],
            pending: Default::default(),
        };
        this.write(initial).await?;
        let connect = this
            .session
            .request_connection(url.app.clone())
            .map_err(|e| RtmpError::Protocol(e.to_string()))?;
        this.write(vec![connect]).await?;
        let mut events = this.input(&leftover).await?;
        loop {
            let mut accepted = false;
            for event in events.drain(..) {
                match event {
                    ClientSessionEvent::ConnectionRequestAccepted => {
                        let play = this
                            .session
                            .request_playback(url.key.clone())
                            .map_err(|e| RtmpError::Protocol(e.to_string()))?;
                        this.write(vec![play]).await?;
                    }
                    // Media may follow in the same read: keep it.
                    ClientSessionEvent::PlaybackRequestAccepted => accepted = true,
                    ClientSessionEvent::ConnectionRequestRejected { description } => {
                        return Err(RtmpError::Refused(description))
                    }
                    other => {
                        if let Some(tag) = to_tag(other) {
                            this.pending.push_back(tag);
                        }
                    }
                }
            }
            if accepted {
                return Ok(this);
            }
            let n = this.socket.read(&mut this.buf).await?;
            if n == 0 {
                return Err(RtmpError::Closed);
            }
            let bytes = this.buf[..n].to_vec();
            events = this.input(&bytes).await?;
        }
    }

    /// The next tag; `None` when the server ends the stream or closes.
    pub async fn next(&mut self) -> Option<Tag> {
        loop {
            if let Some(tag) = self.pending.pop_front() {
                return Some(tag);
            }
            let n = self.socket.read(&mut self.buf).await.ok()?;
            if n == 0 {
                return None;
            }
            let bytes = self.buf[..n].to_vec();
            for event in self.input(&bytes).await.ok()? {
                if let Some(tag) = to_tag(event) {
                    self.pending.push_back(tag);
                }
            }
        }
    }

    async fn input(&mut self, bytes: &[u8]) -> Result<Vec<ClientSessionEvent>, RtmpError> {
        session_io::feed(&mut self.session, &mut self.socket, bytes).await
    }

    async fn write(&mut self, results: Vec<ClientSessionResult>) -> Result<(), RtmpError> {
        session_io::write_results(&mut self.socket, results).await
    }
}

fn to_tag(event: ClientSessionEvent) -> Option<Tag> {
    match event {
        ClientSessionEvent::VideoDataReceived { timestamp, data } => Some(Tag::Video {
            timestamp: timestamp.value,
            data,
        }),
        ClientSessionEvent::AudioDataReceived { timestamp, data } => Some(Tag::Audio {
            timestamp: timestamp.value,
            data,
        }),
        ClientSessionEvent::StreamMetadataReceived { metadata } => Some(Tag::Metadata(metadata)),
        other => {
            debug!(event = ?other, "rtmp player event");
            None
        }
    }
}
