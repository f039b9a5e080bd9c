//! RTMP ingest server: encoders publish, players pull, and Bifrons subscribes to live keys.
//!
//! The server owns the TCP listener and one task per connection. A publish needs the
//! [`PublishAuthorizer`]'s approval; every state change is reported as a [`ServerEvent`] on a
//! broadcast channel, and the media of a live key is available to the rest of Bifrons through
//! [`RtmpServer::subscribe`].

mod config;
mod connection;
mod events;
mod hub;
mod status;
mod subscription;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

pub use config::{DuplicatePublisher, ServerConfig};
pub use events::{PublishRequest, ServerEvent};
pub use hub::StreamStats;
pub use subscription::{StreamEvent, StreamSubscription};

pub use crate::name::QueryParams;

use crate::error::RtmpError;
use hub::Hub;

/// A boxed future, as returned by [`PublishAuthorizer::authorize`].
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Decides whether an `app`/`key` may publish (the stream-key registry implements this).
///
/// The request carries the names without their query strings and the parsed parameters
/// ([`PublishRequest::params`], [`PublishRequest::app_params`]), so a key may be checked as the
/// stream name (`live/KEY`) or as a parameter (`live/cam1?token=KEY`, `live/cam1?key=KEY`).
pub trait PublishAuthorizer: Send + Sync + 'static {
    /// Resolves to `true` to let the publisher in.
    fn authorize(&self, request: PublishRequest) -> BoxFuture<bool>;
}

impl<F, Fut> PublishAuthorizer for F
where
    F: Fn(PublishRequest) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = bool> + Send + 'static,
{
    fn authorize(&self, request: PublishRequest) -> BoxFuture<bool> {
        Box::pin(self(request))
    }
}

/// State shared by the accept loop and the connection tasks.
pub(crate) struct Shared {
    pub config: ServerConfig,
    pub authorizer: Box<dyn PublishAuthorizer>,
    pub hub: Hub,
    pub events: broadcast::Sender<ServerEvent>,
    pub shutdown: watch::Receiver<bool>,
}

impl Shared {
    pub fn emit(&self, event: ServerEvent) {
        // Stream keys are secrets: the log names the event, app and peer, never the key.
        info!(event = event.kind(), app = event.app().unwrap_or(""), peer = %event.peer(), "rtmp server event");
        let _ = self.events.send(event);
    }
}

/// A running RTMP server.
pub struct RtmpServer {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    accept_task: JoinHandle<()>,
}

impl RtmpServer {
    /// Binds the listen address and starts accepting connections.
    pub async fn bind(
        config: ServerConfig,
        authorizer: impl PublishAuthorizer,
    ) -> Result<Self, RtmpError> {
        let listener = TcpListener::bind(config.listen).await?;
        let local_addr = listener.local_addr()?;
        let (events, _) = broadcast::channel(1024);
        let (shutdown, shutdown_rx) = watch::channel(false);
        let shared = Arc::new(Shared {
            hub: Hub::new(config.player_queue_tags, config.gop_cache_tags),
            config,
            authorizer: Box::new(authorizer),
            events,
            shutdown: shutdown_rx,
        });
        let accept_task = tokio::spawn(accept_loop(listener, shared.clone()));
        info!(%local_addr, "rtmp server listening");
        Ok(Self {
            shared,
            local_addr,
            shutdown,
            accept_task,
        })
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Server events (publish/play start and stop, refusals, unsupported codecs) from now on.
    pub fn events(&self) -> broadcast::Receiver<ServerEvent> {
        self.shared.events.subscribe()
    }

    /// Subscribes to the media of a live key, starting with its metadata, decoder configuration
    /// and current GOP; `None` if nobody publishes on it.
    pub fn subscribe(&self, app: &str, key: &str) -> Option<StreamSubscription> {
        self.shared
            .hub
            .get(app, key)
            .map(|stream| StreamSubscription::new(&stream))
    }

    /// Disconnects the publisher of `app`/`key` (e.g. its stream key was revoked), logging
    /// `reason`; its players see the stream end. Returns whether anybody was publishing there.
    pub fn drop_publisher(&self, app: &str, key: &str, reason: &'static str) -> bool {
        self.shared.hub.drop_publisher(app, key, reason)
    }

    /// Statistics of every live stream, sorted by app and key.
    pub fn stats(&self) -> Vec<StreamStats> {
        self.shared.hub.stats()
    }

    /// Stops accepting and closes every connection.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        let _ = (&mut self.accept_task).await;
    }
}

impl Drop for RtmpServer {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        self.accept_task.abort();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut shutdown = shared.shutdown.clone();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((socket, peer)) => {
                    debug!(%peer, "rtmp connection accepted");
                    let _ = socket.set_nodelay(true);
                    tokio::spawn(connection::run(socket, peer, shared.clone()));
                }
                // Out of file descriptors and the like: keep the listener alive.
                Err(error) => {
                    warn!(%error, "rtmp accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            _ = shutdown.changed() => return,
        }
    }
}
