//! One publishing connection: handshake, connect, publish, then media until error or close.

use std::sync::Arc;

use rml_rtmp::handshake::PeerType;
use rml_rtmp::sessions::{
    ClientSession, ClientSessionConfig, ClientSessionError, ClientSessionEvent,
    ClientSessionResult, PublishRequestType,
};
use rml_rtmp::time::RtmpTimestamp;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tracing::debug;

use super::{session_io, tls};
use super::{Command, Inbox, Replay, RtmpUrl};
use crate::error::RtmpError;
use crate::handshake::handshake;
use crate::tag::Tag;

/// A plain TCP or a TLS (`rtmps://`) connection.
trait Socket: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Socket for T {}

pub(crate) struct Publishing {
    socket: Box<dyn Socket>,
    session: ClientSession,
    buf: Vec<u8>,
    /// After (re)connecting, media starts at a keyframe so the receiver can decode it.
    waiting_for_keyframe: bool,
}

fn protocol(e: ClientSessionError) -> RtmpError {
    RtmpError::Protocol(e.to_string())
}

impl Publishing {
    /// Connects (through TLS for `rtmps://`, with `tls` or the system's roots) and gets the
    /// publish accepted.
    pub async fn open(
        url: &RtmpUrl,
        tls: Option<&Arc<rustls::ClientConfig>>,
    ) -> Result<Self, RtmpError> {
        let tcp = TcpStream::connect((url.host.as_str(), url.port)).await?;
        let _ = tcp.set_nodelay(true);
        let mut socket: Box<dyn Socket> = if url.tls {
            let config = match tls {
                Some(c) => c.clone(),
                None => tls::default_config()?,
            };
            Box::new(tls::connect(config, &url.host, tcp).await?)
        } else {
            Box::new(tcp)
        };
        let leftover = handshake(&mut socket, PeerType::Client).await?;
        let mut config = ClientSessionConfig::new();
        config.tc_url = Some(url.tc_url());
        let (session, initial) = ClientSession::new(config).map_err(protocol)?;
        let mut this = Self {
            socket,
            session,
            buf: vec![0u8; 16 * 1024],
            waiting_for_keyframe: true,
        };
        this.write_results(initial).await?;
        let connect = this
            .session
            .request_connection(url.app.clone())
            .map_err(protocol)?;
        this.write_results(vec![connect]).await?;
        let mut events = this.input(&leftover).await?;
        let mut connected = false;
        loop {
            for event in events.drain(..) {
                match event {
                    ClientSessionEvent::ConnectionRequestAccepted if !connected => {
                        connected = true;
                        let publish = this
                            .session
                            .request_publishing(url.key.clone(), PublishRequestType::Live)
                            .map_err(protocol)?;
                        this.write_results(vec![publish]).await?;
                    }
                    ClientSessionEvent::PublishRequestAccepted => return Ok(this),
                    ClientSessionEvent::ConnectionRequestRejected { description } => {
                        return Err(RtmpError::Refused(description))
                    }
                    ClientSessionEvent::UnhandleableOnStatusCode { code } => {
                        return Err(RtmpError::Refused(code))
                    }
                    other => debug!(event = ?other, "rtmp client event during setup"),
                }
            }
            let n = this.socket.read(&mut this.buf).await?;
            if n == 0 {
                return Err(RtmpError::Closed);
            }
            let bytes = this.buf[..n].to_vec();
            events = this.input(&bytes).await?;
        }
    }

    async fn input(&mut self, bytes: &[u8]) -> Result<Vec<ClientSessionEvent>, RtmpError> {
        session_io::feed(&mut self.session, &mut self.socket, bytes).await
    }

    async fn write_results(&mut self, results: Vec<ClientSessionResult>) -> Result<(), RtmpError> {
        session_io::write_results(&mut self.socket, results).await
    }

    /// Re-sends the remembered configuration, then forwards commands until close or failure.
    pub async fn run(
        &mut self,
        commands: &mut Inbox,
        replay: &mut Replay,
    ) -> Result<(), RtmpError> {
        let initial: Vec<Tag> = replay.tags().cloned().collect();
        for tag in &initial {
            self.send(tag).await?;
        }
        loop {
            tokio::select! {
                command = commands.recv() => match command {
                    Some(Command::Tag(tag)) => {
                        replay.remember(&tag);
                        self.send(&tag).await?;
                    }
                    Some(Command::Close) | None => {
                        let results = self.session.stop_publishing().map_err(protocol)?;
                        self.write_results(results).await?;
                        let _ = self.socket.shutdown().await;
                        return Ok(());
                    }
                },
                read = self.socket.read(&mut self.buf) => {
                    let n = read?;
                    if n == 0 {
                        return Err(RtmpError::Closed);
                    }
                    let bytes = self.buf[..n].to_vec();
                    for event in self.input(&bytes).await? {
                        if let ClientSessionEvent::UnhandleableOnStatusCode { code } = event {
                            return Err(RtmpError::Refused(code));
                        }
                    }
                }
            }
        }
    }

    async fn send(&mut self, tag: &Tag) -> Result<(), RtmpError> {
        let result = match tag {
            Tag::Metadata(m) => self.session.publish_metadata(m),
            Tag::Video { timestamp, data } => {
                if self.waiting_for_keyframe && !tag.is_sequence_header() {
                    if !tag.is_keyframe() {
                        return Ok(());
                    }
                    self.waiting_for_keyframe = false;
                }
                self.session
                    .publish_video_data(data.clone(), RtmpTimestamp::new(*timestamp), false)
            }
            Tag::Audio { timestamp, data } => {
                self.session
                    .publish_audio_data(data.clone(), RtmpTimestamp::new(*timestamp), false)
            }
        }
        .map_err(protocol)?;
        self.write_results(vec![result]).await
    }
}
