//! The session watchdog: reaps idle sessions every 2 s, like Janus' `janus_check_sessions`.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::SessionManager;

/// How often expiry is checked; a session lives at most this much past its timeout.
const PERIOD: Duration = Duration::from_secs(2);

/// Starts the watchdog; it stops with `shutdown`.
pub fn spawn(sessions: Arc<SessionManager>, shutdown: CancellationToken) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(PERIOD);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tick.tick() => sessions.reap_expired(Instant::now()).await,
            }
        }
    });
}
