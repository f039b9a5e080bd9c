//! RTMP egress: publish media to `rtmp://host[:port]/app/key` or `rtmps://…` (TLS, see
//! [`tls_config`]), reconnecting with backoff.
//!
//! [`RtmpPublisher`] is a handle to a background task that owns the connection. Media goes in
//! through an ordered, bounded queue whose `send_*` never wait (the same shape as the WebRTC
//! sender's): a media worker thread can publish through a [`PublisherSender`], and when the
//! connection falls behind, media is dropped and counted rather than blocking it. Decoder
//! configuration and metadata are never dropped; they are remembered and re-sent after every
//! reconnect, and media resumes at the next keyframe so the far end can decode at once.

mod connection;
mod player;
mod sender;
mod session_io;
mod tls;
mod url;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rml_rtmp::sessions::StreamMetadata;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};

pub use player::RtmpPlayer;
pub use rustls::ClientConfig as TlsClientConfig;
pub use sender::PublisherSender;
pub use tls::tls_config;
pub use url::RtmpUrl;

use crate::error::RtmpError;
use crate::media::{AacConfig, AudioFrame, AvcConfig, VideoFrame};
use crate::tag::Tag;
use sender::{Command, Inbox};

/// Publisher settings.
#[derive(Debug, Clone)]
pub struct PublisherConfig {
    /// `rtmp://host[:port]/app/key` or `rtmps://host[:port]/app/key`.
    pub url: String,
    /// TLS settings for `rtmps://` (from [`tls_config`]); `None`: the system's roots only.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// Reconnect after a failure (otherwise the publisher ends in [`PublisherState::Failed`]).
    pub reconnect: bool,
    /// First reconnect delay; doubled after each failed attempt.
    pub initial_backoff: Duration,
    /// Upper bound of the reconnect delay.
    pub max_backoff: Duration,
    /// Time allowed for TCP connect, handshake, connect and publish.
    pub connect_timeout: Duration,
    /// Tags the queue to the connection task holds; beyond that `send_*` drops media (never
    /// configuration) and counts it.
    pub queue: usize,
    /// Whether a refusal by the server (`onStatus` error such as `NetStream.Publish.BadName`
    /// for a wrong stream key) or a TLS failure (a certificate that is not trusted or not for
    /// the host) is retried like a network failure. When `false` the publisher ends in
    /// [`PublisherState::Failed`] at once: asking again only gets the same answer.
    pub retry_refused: bool,
}

impl PublisherConfig {
    /// Defaults for `url`: reconnect from 500 ms up to 10 s, 10 s setup timeout, a queue of
    /// 1024 tags (about 14 s of 25 fps H.264 with 48 kHz AAC).
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            tls: None,
            reconnect: true,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(10),
            queue: 1024,
            retry_refused: true,
        }
    }
}

/// Where the publisher is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublisherState {
    /// Connecting and asking to publish.
    Connecting,
    /// The server accepted the publish; media flows.
    Publishing,
    /// The connection failed; the next attempt starts after `delay`.
    Reconnecting {
        /// Consecutive failed attempts.
        attempt: u32,
        /// Wait before the next attempt.
        delay: Duration,
        /// Why the last attempt failed.
        error: String,
    },
    /// Gave up (reconnect disabled).
    Failed(String),
    /// Closed by [`RtmpPublisher::close`].
    Closed,
}

/// Handle to a publishing task. Dropping it stops the task at once; [`close`](Self::close)
/// unpublishes cleanly.
pub struct RtmpPublisher {
    sender: PublisherSender,
    state: watch::Receiver<PublisherState>,
    task: JoinHandle<()>,
}

impl RtmpPublisher {
    /// Starts publishing in the background (connecting right away) on the current runtime.
    ///
    /// Errors: [`RtmpError::InvalidUrl`]; connection failures are reported through
    /// [`state`](Self::state) instead.
    pub fn start(config: PublisherConfig) -> Result<Self, RtmpError> {
        let url = RtmpUrl::parse(&config.url)?;
        let (sender, inbox) = PublisherSender::channel(config.queue);
        let (state_tx, state) = watch::channel(PublisherState::Connecting);
        let task = tokio::spawn(run(config, url, inbox, state_tx));
        Ok(Self {
            sender,
            state,
            task,
        })
    }

    /// State changes, for display and for tests.
    pub fn state(&self) -> watch::Receiver<PublisherState> {
        self.state.clone()
    }

    /// Waits until the state satisfies `pred`, returning it.
    pub async fn wait_for(&self, pred: impl Fn(&PublisherState) -> bool) -> PublisherState {
        let mut state = self.state.clone();
        let result = state.wait_for(|s| pred(s)).await.map(|s| s.clone());
        result.unwrap_or(PublisherState::Closed)
    }

    /// A `Clone + Send` handle with the same `send_*`, for a worker thread or another task.
    /// It does not keep the publisher alive: once this handle is dropped or closed, its sends
    /// fail with [`RtmpError::Closed`].
    pub fn sender(&self) -> PublisherSender {
        self.sender.clone()
    }

    /// Queues `onMetaData` without waiting; see [`PublisherSender::send_metadata`].
    pub fn send_metadata(&self, metadata: StreamMetadata) -> Result<(), RtmpError> {
        self.sender.send_metadata(metadata)
    }

    /// Queues the H.264 sequence header without waiting; see
    /// [`PublisherSender::send_video_config`].
    pub fn send_video_config(
        &self,
        config: &AvcConfig,
        timestamp_ms: u32,
    ) -> Result<(), RtmpError> {
        self.sender.send_video_config(config, timestamp_ms)
    }

    /// Queues the AAC sequence header without waiting; see
    /// [`PublisherSender::send_audio_config`].
    pub fn send_audio_config(
        &self,
        config: &AacConfig,
        timestamp_ms: u32,
    ) -> Result<(), RtmpError> {
        self.sender.send_audio_config(config, timestamp_ms)
    }

    /// Queues one H.264 access unit without waiting; see [`PublisherSender::send_video`].
    pub fn send_video(&self, frame: &VideoFrame) -> Result<(), RtmpError> {
        self.sender.send_video(frame)
    }

    /// Queues one raw AAC frame without waiting; see [`PublisherSender::send_audio`].
    pub fn send_audio(&self, frame: &AudioFrame) -> Result<(), RtmpError> {
        self.sender.send_audio(frame)
    }

    /// Queues an FLV video tag body as is (relaying another RTMP source).
    pub fn send_video_tag(&self, timestamp_ms: u32, data: Bytes) -> Result<(), RtmpError> {
        self.sender.send_video_tag(timestamp_ms, data)
    }

    /// Queues an FLV audio tag body as is.
    pub fn send_audio_tag(&self, timestamp_ms: u32, data: Bytes) -> Result<(), RtmpError> {
        self.sender.send_audio_tag(timestamp_ms, data)
    }

    /// Media tags dropped so far because the queue was full; see [`PublisherSender::dropped`].
    pub fn dropped(&self) -> u64 {
        self.sender.dropped()
    }

    /// Waits until the queue has room: for async producers that would rather wait than drop.
    /// See [`PublisherSender::ready`].
    pub async fn ready(&self) -> Result<(), RtmpError> {
        self.sender.ready().await
    }

    /// Sends what is queued, unpublishes and closes the connection.
    pub async fn close(mut self) {
        self.sender.close().await;
        let _ = (&mut self.task).await;
    }
}

impl Drop for RtmpPublisher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What is re-sent after a reconnect.
#[derive(Default)]
pub(crate) struct Replay {
    pub metadata: Option<Tag>,
    pub video_config: Option<Tag>,
    pub audio_config: Option<Tag>,
}

impl Replay {
    fn remember(&mut self, tag: &Tag) {
        match tag {
            Tag::Metadata(_) => self.metadata = Some(tag.clone()),
            Tag::Video { .. } if tag.is_sequence_header() => self.video_config = Some(tag.clone()),
            Tag::Audio { .. } if tag.is_sequence_header() => self.audio_config = Some(tag.clone()),
            _ => {}
        }
    }

    pub fn tags(&self) -> impl Iterator<Item = &Tag> {
        self.metadata
            .iter()
            .chain(&self.video_config)
            .chain(&self.audio_config)
    }
}

async fn run(
    config: PublisherConfig,
    url: RtmpUrl,
    mut commands: Inbox,
    state: watch::Sender<PublisherState>,
) {
    let mut replay = Replay::default();
    let mut attempt = 0u32;
    loop {
        let _ = state.send(PublisherState::Connecting);
        let outcome = match tokio::time::timeout(
            config.connect_timeout,
            connection::Publishing::open(&url, config.tls.as_ref()),
        )
        .await
        {
            Err(_) => Err(RtmpError::Timeout(config.connect_timeout)),
            Ok(Err(e)) => Err(e),
            Ok(Ok(mut publishing)) => {
                info!(url = %url.tc_url(), "rtmp publishing");
                attempt = 0;
                let _ = state.send(PublisherState::Publishing);
                publishing.run(&mut commands, &mut replay).await
            }
        };
        let (error, refused) = match outcome {
            Ok(()) => {
                let _ = state.send(PublisherState::Closed);
                return;
            }
            Err(e) => (
                e.to_string(),
                matches!(e, RtmpError::Refused(_) | RtmpError::Tls(_)),
            ),
        };
        // The stream key is the secret part of the URL: only the application is logged.
        warn!(url = %url.tc_url(), %error, "rtmp publish failed");
        if !config.reconnect || (refused && !config.retry_refused) {
            let _ = state.send(PublisherState::Failed(error));
            return;
        }
        attempt += 1;
        let delay = config
            .initial_backoff
            .saturating_mul(1 << (attempt - 1).min(16))
            .min(config.max_backoff);
        let _ = state.send(PublisherState::Reconnecting {
            attempt,
            delay,
            error,
        });
        // While disconnected, keep configuration current and drop media: stale frames would
        // only add latency once the connection is back.
        let sleep = tokio::time::sleep(delay);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                _ = &mut sleep => break,
                command = commands.recv() => match command {
                    Some(Command::Tag(tag)) => replay.remember(&tag),
                    Some(Command::Close) | None => {
                        let _ = state.send(PublisherState::Closed);
                        return;
                    }
                },
            }
        }
    }
}
