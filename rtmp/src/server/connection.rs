//! One RTMP connection: handshake, then the session state machine driven by socket input,
//! the publish authorizer and (for players) the live stream it follows.

use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use rml_rtmp::handshake::PeerType;
use rml_rtmp::sessions::{
    ServerSession, ServerSessionConfig, ServerSessionEvent, ServerSessionResult,
};
use rml_rtmp::time::RtmpTimestamp;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::sync::oneshot;
use tokio::time::timeout;
use tracing::{debug, warn};

use super::events::{PublishRequest, ServerEvent};
use super::hub::{Claim, HubMessage, LiveStream};
use super::status::on_status;
use super::{DuplicatePublisher, Shared};
use crate::error::RtmpError;
use crate::flv::check_supported_codec;
use crate::handshake::handshake;
use crate::name::StreamName;
use crate::tag::Tag;

struct Publishing {
    stream: Arc<LiveStream>,
    kicked: oneshot::Receiver<&'static str>,
}

struct Playing {
    stream: Arc<LiveStream>,
    stream_id: u32,
    rx: broadcast::Receiver<HubMessage>,
    waiting_for_keyframe: bool,
}

/// What the main loop does after handling an input.
#[derive(PartialEq)]
enum Flow {
    Continue,
    /// Flush pending output, then close.
    Close,
}

struct Connection {
    peer: SocketAddr,
    shared: Arc<Shared>,
    session: ServerSession,
    chunk_size: u32,
    publishing: Option<Publishing>,
    playing: Option<Playing>,
    out: Vec<u8>,
    stop_reason: String,
}

/// Serves one accepted socket until it closes; never panics on peer input.
pub(crate) async fn run(mut socket: TcpStream, peer: SocketAddr, shared: Arc<Shared>) {
    let leftover = match timeout(
        shared.config.handshake_timeout,
        handshake(&mut socket, PeerType::Server),
    )
    .await
    {
        Ok(Ok(leftover)) => leftover,
        Ok(Err(error)) => {
            debug!(%peer, %error, "rtmp handshake failed");
            shared.emit(ServerEvent::ConnectionFailed {
                peer,
                error: error.to_string(),
            });
            return;
        }
        Err(_) => {
            debug!(%peer, "rtmp handshake timed out");
            shared.emit(ServerEvent::ConnectionFailed {
                peer,
                error: "handshake timed out".into(),
            });
            return;
        }
    };
    let config = ServerSessionConfig::new();
    let chunk_size = config.chunk_size;
    let (session, initial) = match ServerSession::new(config) {
        Ok(created) => created,
        Err(error) => {
            warn!(%error, "rtmp session setup failed");
            return;
        }
    };
    let mut conn = Connection {
        peer,
        shared: shared.clone(),
        session,
        chunk_size,
        publishing: None,
        playing: None,
        out: Vec::new(),
        stop_reason: "disconnected".into(),
    };
    let result = conn.serve(&mut socket, initial, leftover).await;
    match result {
        Ok(()) | Err(RtmpError::Closed) => {}
        Err(error) => {
            debug!(%peer, %error, "rtmp connection dropped");
            conn.stop_reason = error.to_string();
            shared.emit(ServerEvent::ConnectionFailed {
                peer,
                error: error.to_string(),
            });
        }
    }
    conn.teardown();
}

/// Waits for the next message of the followed stream, or forever when not playing.
async fn next_played(playing: &mut Option<Playing>) -> Result<HubMessage, RecvError> {
    match playing {
        Some(p) => p.rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Resolves, with the reason, when the server drops this connection's publish (another
/// publisher took over its key, or the key was revoked).
async fn kicked(publishing: &mut Option<Publishing>) -> &'static str {
    match publishing {
        Some(p) => (&mut p.kicked).await.unwrap_or("dropped by the server"),
        None => std::future::pending().await,
    }
}

impl Connection {
    async fn serve(
        &mut self,
        socket: &mut TcpStream,
        initial: Vec<ServerSessionResult>,
        leftover: Vec<u8>,
    ) -> Result<(), RtmpError> {
        let mut flow = self.process(initial).await?;
        if !leftover.is_empty() && flow == Flow::Continue {
            flow = self.input(&leftover).await?;
        }
        self.flush(socket).await?;
        let mut buf = vec![0u8; 64 * 1024];
        let mut shutdown = self.shared.shutdown.clone();
        let idle = self.shared.config.idle_timeout;
        while flow == Flow::Continue {
            // Players only send acknowledgements, so silence is normal for them.
            let read_limit = if self.playing.is_some() {
                Duration::from_secs(24 * 3600)
            } else {
                idle
            };
            tokio::select! {
                read = timeout(read_limit, socket.read(&mut buf)) => {
                    let n = read.map_err(|_| RtmpError::Timeout(read_limit))??;
                    if n == 0 {
                        return Err(RtmpError::Closed);
                    }
                    flow = self.input(&buf[..n]).await?;
                }
                message = next_played(&mut self.playing) => flow = self.forward(message)?,
                reason = kicked(&mut self.publishing) => {
                    self.stop_reason = reason.into();
                    flow = Flow::Close;
                }
                _ = shutdown.changed() => {
                    self.stop_reason = "server shutdown".into();
                    flow = Flow::Close;
                }
            }
            self.flush(socket).await?;
        }
        Ok(())
    }

    async fn flush(&mut self, socket: &mut TcpStream) -> Result<(), RtmpError> {
        if self.out.is_empty() {
            return Ok(());
        }
        let limit = self.shared.config.idle_timeout;
        timeout(limit, socket.write_all(&self.out))
            .await
            .map_err(|_| RtmpError::Timeout(limit))??;
        self.out.clear();
        Ok(())
    }

    async fn input(&mut self, bytes: &[u8]) -> Result<Flow, RtmpError> {
        // The chunk parser is third-party code fed by the network: a panic in it must cost this
        // connection only, never the server.
        let results =
            std::panic::catch_unwind(AssertUnwindSafe(|| self.session.handle_input(bytes)))
                .map_err(|_| RtmpError::Protocol("chunk parser failed on malformed input".into()))?
                .map_err(|e| RtmpError::Protocol(e.to_string()))?;
        self.process(results).await
    }

    async fn process(&mut self, results: Vec<ServerSessionResult>) -> Result<Flow, RtmpError> {
        for result in results {
            let flow = match result {
                ServerSessionResult::OutboundResponse(packet) => {
                    self.out.extend_from_slice(&packet.bytes);
                    Flow::Continue
                }
                ServerSessionResult::RaisedEvent(event) => self.on_event(event).await?,
                ServerSessionResult::UnhandleableMessageReceived(payload) => {
                    debug!(peer = %self.peer, type_id = payload.type_id, "ignoring unhandled rtmp message");
                    Flow::Continue
                }
            };
            if flow == Flow::Close {
                return Ok(Flow::Close);
            }
        }
        Ok(Flow::Continue)
    }

    fn accept(&mut self, request_id: u32) -> Result<(), RtmpError> {
        let results = self
            .session
            .accept_request(request_id)
            .map_err(|e| RtmpError::Protocol(e.to_string()))?;
        for result in results {
            if let ServerSessionResult::OutboundResponse(packet) = result {
                self.out.extend_from_slice(&packet.bytes);
            }
        }
        Ok(())
    }

    async fn on_event(&mut self, event: ServerSessionEvent) -> Result<Flow, RtmpError> {
        match event {
            ServerSessionEvent::ConnectionRequested {
                request_id,
                app_name,
            } => {
                // Only the name: the query may hold credentials.
                let app = StreamName::parse_app(&app_name);
                debug!(peer = %self.peer, app = %app.name, params = app.params.len(), "rtmp connect");
                self.accept(request_id)?;
            }
            ServerSessionEvent::PublishStreamRequested {
                request_id,
                app_name,
                stream_key,
                ..
            } => {
                return self.on_publish(request_id, app_name, stream_key).await;
            }
            ServerSessionEvent::PublishStreamFinished { .. } => {
                self.stop_reason = "unpublished".into();
                self.end_publish();
            }
            ServerSessionEvent::StreamMetadataChanged { metadata, .. } => {
                if let Some(p) = &self.publishing {
                    p.stream.publish(Tag::Metadata(metadata));
                }
            }
            ServerSessionEvent::VideoDataReceived {
                data, timestamp, ..
            } => {
                return self.on_media(Tag::Video {
                    timestamp: timestamp.value,
                    data,
                });
            }
            ServerSessionEvent::AudioDataReceived {
                data, timestamp, ..
            } => {
                return self.on_media(Tag::Audio {
                    timestamp: timestamp.value,
                    data,
                });
            }
            ServerSessionEvent::PlayStreamRequested {
                request_id,
                app_name,
                stream_key,
                stream_id,
                ..
            } => {
                return self.on_play(request_id, app_name, stream_key, stream_id);
            }
            ServerSessionEvent::PlayStreamFinished { .. } => self.end_play(),
            other => debug!(peer = %self.peer, event = ?other, "rtmp session event"),
        }
        Ok(Flow::Continue)
    }

    /// `app` and `key` as the peer sent them, query strings included (`live?x=y`,
    /// `cam1?token=abc123`): the stream goes live under the names without them.
    async fn on_publish(
        &mut self,
        request_id: u32,
        app: String,
        key: String,
    ) -> Result<Flow, RtmpError> {
        let app = StreamName::parse_app(&app);
        let key = StreamName::parse(&key);
        let (app_params, params) = (app.params, key.params);
        let (app, key) = (app.name, key.name);
        if key.is_empty() {
            return self.refuse_publish(app, key, "NetStream.Publish.BadName", "empty stream name");
        }
        if self.publishing.is_some() || self.playing.is_some() {
            return self.refuse_publish(
                app,
                key,
                "NetStream.Publish.BadName",
                "connection already has a stream",
            );
        }
        let request = PublishRequest {
            app: app.clone(),
            key: key.clone(),
            params,
            app_params,
            peer: self.peer,
        };
        if !self.shared.authorizer.authorize(request).await {
            return self.refuse_publish(
                app,
                key,
                "NetStream.Publish.Denied",
                "stream key not allowed",
            );
        }
        let replace = self.shared.config.duplicate_publisher == DuplicatePublisher::Replace;
        match self.shared.hub.claim(&app, &key, replace) {
            Claim::Busy => self.refuse_publish(
                app,
                key,
                "NetStream.Publish.BadName",
                "stream key already live",
            ),
            Claim::Granted { stream, kicked } => {
                self.accept(request_id)?;
                self.publishing = Some(Publishing { stream, kicked });
                self.shared.emit(ServerEvent::PublishStarted {
                    app,
                    key,
                    peer: self.peer,
                });
                Ok(Flow::Continue)
            }
        }
    }

    fn refuse_publish(
        &mut self,
        app: String,
        key: String,
        code: &str,
        reason: &str,
    ) -> Result<Flow, RtmpError> {
        // createStream always hands out stream 1 on a fresh connection, the one publishing uses.
        self.out
            .extend(on_status(1, self.chunk_size, "error", code, reason)?);
        self.shared.emit(ServerEvent::PublishRefused {
            app,
            key,
            peer: self.peer,
            reason: format!("{code}: {reason}"),
        });
        Ok(Flow::Close)
    }

    fn on_media(&mut self, tag: Tag) -> Result<Flow, RtmpError> {
        let Some(p) = &self.publishing else {
            return Ok(Flow::Continue);
        };
        let check = match &tag {
            Tag::Video { data, .. } => check_supported_codec(data, true),
            Tag::Audio { data, .. } => check_supported_codec(data, false),
            Tag::Metadata(_) => Ok(()),
        };
        if let Err(error) = check {
            let codec = error.to_string();
            self.shared.emit(ServerEvent::UnsupportedCodec {
                app: p.stream.app.clone(),
                key: p.stream.key.clone(),
                peer: self.peer,
                codec: codec.clone(),
            });
            self.stop_reason = codec;
            return Ok(Flow::Close);
        }
        p.stream.publish(tag);
        Ok(Flow::Continue)
    }

    /// `app` and `key` as the player sent them: `live/cam1?token=x` plays `live`/`cam1`. Play
    /// parameters are not checked (there is no play authorizer).
    fn on_play(
        &mut self,
        request_id: u32,
        app: String,
        key: String,
        stream_id: u32,
    ) -> Result<Flow, RtmpError> {
        let app = StreamName::parse_app(&app).name;
        let key = StreamName::parse(&key).name;
        let live = if self.publishing.is_none() && self.playing.is_none() {
            self.shared.hub.get(&app, &key)
        } else {
            None
        };
        let Some(stream) = live else {
            self.out.extend(on_status(
                stream_id,
                self.chunk_size,
                "error",
                "NetStream.Play.StreamNotFound",
                "stream key not live",
            )?);
            return Ok(Flow::Close);
        };
        self.accept(request_id)?;
        let (backlog, rx) = stream.join();
        for tag in &backlog {
            self.send_tag(stream_id, tag)?;
        }
        stream.players.fetch_add(1, Ordering::Relaxed);
        self.playing = Some(Playing {
            stream,
            stream_id,
            rx,
            waiting_for_keyframe: false,
        });
        self.shared.emit(ServerEvent::PlayStarted {
            app,
            key,
            peer: self.peer,
        });
        Ok(Flow::Continue)
    }

    fn forward(&mut self, message: Result<HubMessage, RecvError>) -> Result<Flow, RtmpError> {
        let Some(p) = &mut self.playing else {
            return Ok(Flow::Continue);
        };
        let stream_id = p.stream_id;
        match message {
            Ok(HubMessage::Tag(tag)) => {
                if p.waiting_for_keyframe {
                    if !tag.is_keyframe()
                        && !tag.is_sequence_header()
                        && !matches!(*tag, Tag::Metadata(_))
                    {
                        return Ok(Flow::Continue);
                    }
                    p.waiting_for_keyframe = !tag.is_keyframe();
                }
                self.send_tag(stream_id, &tag)?;
                Ok(Flow::Continue)
            }
            Err(RecvError::Lagged(skipped)) => {
                debug!(peer = %self.peer, skipped, "rtmp player lagging: resuming at next keyframe");
                p.waiting_for_keyframe = true;
                Ok(Flow::Continue)
            }
            Ok(HubMessage::Ended) | Err(RecvError::Closed) => {
                if let Ok(packet) = self.session.finish_playing(stream_id) {
                    self.out.extend_from_slice(&packet.bytes);
                }
                self.end_play();
                Ok(Flow::Close)
            }
        }
    }

    fn send_tag(&mut self, stream_id: u32, tag: &Tag) -> Result<(), RtmpError> {
        let packet = match tag {
            Tag::Metadata(m) => self.session.send_metadata(stream_id, m),
            Tag::Video { timestamp, data } => self.session.send_video_data(
                stream_id,
                data.clone(),
                RtmpTimestamp::new(*timestamp),
                false,
            ),
            Tag::Audio { timestamp, data } => self.session.send_audio_data(
                stream_id,
                data.clone(),
                RtmpTimestamp::new(*timestamp),
                false,
            ),
        }
        .map_err(|e| RtmpError::Protocol(e.to_string()))?;
        self.out.extend_from_slice(&packet.bytes);
        Ok(())
    }

    fn end_publish(&mut self) {
        if let Some(p) = self.publishing.take() {
            if self.shared.hub.release(&p.stream) || self.stop_reason.starts_with("replaced") {
                self.shared.emit(ServerEvent::PublishStopped {
                    app: p.stream.app.clone(),
                    key: p.stream.key.clone(),
                    peer: self.peer,
                    reason: self.stop_reason.clone(),
                });
            }
        }
    }

    fn end_play(&mut self) {
        if let Some(p) = self.playing.take() {
            p.stream.players.fetch_sub(1, Ordering::Relaxed);
            self.shared.emit(ServerEvent::PlayStopped {
                app: p.stream.app.clone(),
                key: p.stream.key.clone(),
                peer: self.peer,
            });
        }
    }

    fn teardown(&mut self) {
        self.end_publish();
        self.end_play();
    }
}
