//! Live streams by `app`/`key`: which publisher owns a key, and fan-out of its tags.
//!
//! The map is locked only to publish, unpublish and join; tags flow through each stream's own
//! broadcast channel, so streams never contend with each other on the media path.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use tokio::sync::{broadcast, oneshot};

use crate::gop::GopCache;
use crate::tag::Tag;

/// What a stream's subscribers receive.
#[derive(Debug, Clone)]
pub(crate) enum HubMessage {
    Tag(Arc<Tag>),
    /// The publisher left (or was replaced): the stream is over for this subscriber.
    Ended,
}

/// A live stream owned by one publisher.
#[derive(Debug)]
pub(crate) struct LiveStream {
    pub id: u64,
    pub app: String,
    pub key: String,
    pub started: Instant,
    pub bytes: AtomicU64,
    pub players: AtomicUsize,
    tx: broadcast::Sender<HubMessage>,
    gop: Mutex<GopCache>,
    /// Tells the publisher's connection to close, with the reason it logs.
    kick: Mutex<Option<oneshot::Sender<&'static str>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere cannot leave these structures half-updated: keep serving.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl LiveStream {
    /// Closes the publisher's connection with `reason` and ends the stream for its players.
    fn kick(&self, reason: &'static str) {
        if let Some(kick) = lock(&self.kick).take() {
            let _ = kick.send(reason);
        }
        self.end();
    }

    /// Pushes a tag to the GOP cache and every subscriber.
    pub fn publish(&self, tag: Tag) {
        self.bytes.fetch_add(tag.len() as u64, Ordering::Relaxed);
        let tag = Arc::new(tag);
        // The GOP lock is held while sending so a joiner sees each tag exactly once: either in
        // its snapshot or on its receiver.
        let mut gop = lock(&self.gop);
        gop.push(&tag);
        let _ = self.tx.send(HubMessage::Tag(tag));
    }

    /// Joins the stream: the GOP snapshot to send first, then the live receiver.
    pub fn join(&self) -> (Vec<Arc<Tag>>, broadcast::Receiver<HubMessage>) {
        let gop = lock(&self.gop);
        (gop.snapshot(), self.tx.subscribe())
    }

    fn end(&self) {
        let _ = self.tx.send(HubMessage::Ended);
    }
}

/// Outcome of a publish attempt.
pub(crate) enum Claim {
    Granted {
        stream: Arc<LiveStream>,
        kicked: oneshot::Receiver<&'static str>,
    },
    Busy,
}

/// Statistics of one live stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamStats {
    /// RTMP application name.
    pub app: String,
    /// Stream key.
    pub key: String,
    /// Media payload bytes received since the publish started.
    pub bytes: u64,
    /// RTMP players currently attached.
    pub players: usize,
    /// Milliseconds since the publish started.
    pub uptime_ms: u64,
}

#[derive(Debug)]
pub(crate) struct Hub {
    streams: Mutex<HashMap<(String, String), Arc<LiveStream>>>,
    next_id: AtomicU64,
    channel_capacity: usize,
    gop_max_tags: usize,
}

impl Hub {
    pub fn new(channel_capacity: usize, gop_max_tags: usize) -> Self {
        Self {
            streams: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            channel_capacity,
            gop_max_tags,
        }
    }

    /// Claims `app`/`key` for a new publisher; with `replace`, an existing one is kicked out.
    pub fn claim(&self, app: &str, key: &str, replace: bool) -> Claim {
        let mut streams = lock(&self.streams);
        let name = (app.to_string(), key.to_string());
        if let Some(old) = streams.get(&name) {
            if !replace {
                return Claim::Busy;
            }
            old.kick("replaced by a new publisher");
        }
        let (kick_tx, kicked) = oneshot::channel();
        let (tx, _) = broadcast::channel(self.channel_capacity);
        let stream = Arc::new(LiveStream {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            app: app.to_string(),
            key: key.to_string(),
            started: Instant::now(),
            bytes: AtomicU64::new(0),
            players: AtomicUsize::new(0),
            tx,
            gop: Mutex::new(GopCache::new(self.gop_max_tags)),
            kick: Mutex::new(Some(kick_tx)),
        });
        streams.insert(name, stream.clone());
        Claim::Granted { stream, kicked }
    }

    /// Closes the publisher of `app`/`key`, if any, with `reason` (its log line); returns
    /// whether there was one. Players get `Ended`.
    pub fn drop_publisher(&self, app: &str, key: &str, reason: &'static str) -> bool {
        let removed = lock(&self.streams).remove(&(app.to_string(), key.to_string()));
        removed.map(|stream| stream.kick(reason)).is_some()
    }

    /// Ends `stream` if it still owns its key; returns whether it did.
    pub fn release(&self, stream: &LiveStream) -> bool {
        let mut streams = lock(&self.streams);
        let name = (stream.app.clone(), stream.key.clone());
        let owned = streams.get(&name).is_some_and(|s| s.id == stream.id);
        if owned {
            streams.remove(&name);
            stream.end();
        }
        owned
    }

    pub fn get(&self, app: &str, key: &str) -> Option<Arc<LiveStream>> {
        lock(&self.streams)
            .get(&(app.to_string(), key.to_string()))
            .cloned()
    }

    pub fn stats(&self) -> Vec<StreamStats> {
        let mut stats: Vec<StreamStats> = lock(&self.streams)
            .values()
            .map(|s| StreamStats {
                app: s.app.clone(),
                key: s.key.clone(),
                bytes: s.bytes.load(Ordering::Relaxed),
                players: s.players.load(Ordering::Relaxed),
                uptime_ms: s.started.elapsed().as_millis() as u64,
            })
            .collect();
        stats.sort_by(|a, b| (&a.app, &a.key).cmp(&(&b.app, &b.key)));
        stats
    }
}
