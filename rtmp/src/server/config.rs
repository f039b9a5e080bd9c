use std::net::SocketAddr;
use std::time::Duration;

/// What happens when a key that is already live gets a second publisher.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DuplicatePublisher {
    /// The newcomer is refused with `NetStream.Publish.BadName`.
    #[default]
    Refuse,
    /// The newcomer takes over; the current publisher is disconnected (encoder restarts).
    Replace,
}

/// RTMP server settings.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Listen address (default `0.0.0.0:1935`).
    pub listen: SocketAddr,
    /// Second-publisher policy.
    pub duplicate_publisher: DuplicatePublisher,
    /// A peer that sends nothing for this long before/while publishing is dropped.
    pub idle_timeout: Duration,
    /// Time allowed for the handshake.
    pub handshake_timeout: Duration,
    /// Tags a player may lag behind before it is resynchronised at the next keyframe.
    pub player_queue_tags: usize,
    /// Upper bound of tags kept in the GOP cache.
    pub gop_cache_tags: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 1935)),
            duplicate_publisher: DuplicatePublisher::Refuse,
            idle_timeout: Duration::from_secs(30),
            handshake_timeout: Duration::from_secs(10),
            player_queue_tags: 1024,
            gop_cache_tags: 4096,
        }
    }
}
