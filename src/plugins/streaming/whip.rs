//! WHIP publishers of mountpoints: the [`WhipBackend`] of `src/web/whip.rs`. Each publish is a
//! receive-only PeerConnection answering the browser's (or encoder's) offer, whose RTP feeds
//! the mountpoint through a [`PublishFeed`] exactly as an RTMP publish feeds it; viewers watch
//! through `watch` and WHEP. Trickle and ICE restarts work as for WHEP viewers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};

use futures::future::BoxFuture;
use subtle::ConstantTimeEq;

use super::mountpoints::{MountpointEntry, Mountpoints};
use super::publish::{
    claim, key_revoked, release, report_live, stream_key, PublishError, PublishFeed,
    KEY_CHECK_SECONDS,
};
use super::rtmp_ingest::plausible_key;
use super::whep::{new_etag, IceSession};
use crate::ids::Mid;
use crate::media::{
    AnswerPlan, DataMessage, Jsep, LocalCandidate, MediaEngine, MediaKind, Peer, PeerListener,
    RtcpFeedback, RtpPacket, StreamInfo,
};
use crate::storage::Storage;
use crate::web::whep::{IceFragment, TrickleError, TrickleOutcome};
use crate::web::whip::{WhipBackend, WhipError, WhipSession};

type Sessions = Mutex<HashMap<String, Arc<Session>>>;

/// One WHIP publish.
struct Session {
    id: String,
    mountpoint: u64,
    /// The ICE session: changed by an ICE restart (only on `PATCH`, never per packet).
    ice: tokio::sync::Mutex<IceSession>,
    feed: OnceLock<Arc<PublishFeed>>,
    peer: OnceLock<Arc<Peer>>,
    sessions: Weak<Sessions>,
}

impl Session {
    /// Ends the publish and closes its PeerConnection.
    async fn close(&self, why: &str) {
        if let Some(feed) = self.feed.get() {
            feed.end(why);
        }
        if let Some(peer) = self.peer.get() {
            peer.close().await;
        }
    }
}

impl PeerListener for Session {
    fn on_connected(&self) {
        tracing::info!(mountpoint = self.mountpoint, session = %self.id, "WHIP publisher connected");
    }

    fn on_media(&self, kind: MediaKind, _mid: &Mid, receiving: bool) {
        tracing::debug!(
            mountpoint = self.mountpoint,
            kind = kind.as_str(),
            receiving,
            "WHIP media"
        );
    }

    fn on_rtp(&self, stream: &StreamInfo, packet: RtpPacket) {
        if let Some(feed) = self.feed.get() {
            feed.feed(stream, packet);
        }
    }

    fn on_rtcp(&self, _kind: MediaKind, _feedback: RtcpFeedback) {}

    fn on_data(&self, _label: &str, _message: DataMessage) {}

    fn on_local_candidate(&self, _candidate: LocalCandidate) {}

    fn on_slowlink(&self, _kind: MediaKind, _mid: &Mid, _uplink: bool, _lost: u64) {}

    fn on_failed(&self, reason: &'static str) {
        tracing::info!(mountpoint = self.mountpoint, session = %self.id, reason, "WHIP publisher gone");
        if let Some(feed) = self.feed.get() {
            feed.end(reason);
        }
        if let Some(sessions) = self.sessions.upgrade() {
            let removed = sessions
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&self.id);
            if let Some(s) = removed {
                tokio::spawn(async move { s.close(reason).await });
            }
        }
    }
}

/// The WHIP backend over the plugin's mountpoints and the registry's stream keys.
pub struct Whip {
    mountpoints: Arc<Mountpoints>,
    media: Arc<MediaEngine>,
    storage: Storage,
    sessions: Arc<Sessions>,
}

/// What the URL of a `POST` names.
#[derive(Debug, PartialEq, Eq)]
enum Target {
    /// `/whip/<mountpoint id>`.
    Mountpoint(u64),
    /// `/whip/<stream key>`: the bearer token must be that key.
    Key,
}

fn target(path: &str) -> Option<Target> {
    if !path.is_empty() && path.len() <= 20 && path.bytes().all(|b| b.is_ascii_digit()) {
        return path.parse().ok().map(Target::Mountpoint);
    }
    plausible_key(path).then_some(Target::Key)
}

impl Whip {
    /// A backend publishing into `mountpoints` through `media`, with the stream keys of
    /// `storage`.
    pub fn new(mountpoints: Arc<Mountpoints>, media: Arc<MediaEngine>, storage: Storage) -> Self {
        Self {
            mountpoints,
            media,
            storage,
            sessions: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Checks the token and finds which mountpoint it publishes to, with the key's name and
    /// the key (kept to check while the publish lasts).
    async fn authorize(
        &self,
        path: &str,
        token: Option<String>,
    ) -> Result<(u64, String, String), PublishError> {
        let target = target(path).ok_or(PublishError::NotFound)?;
        let token = token.ok_or(PublishError::Unauthorized("no bearer token"))?;
        if target == Target::Key && !bool::from(path.as_bytes().ct_eq(token.as_bytes())) {
            return Err(PublishError::Unauthorized(
                "bearer token is not the key of the URL",
            ));
        }
        let key = stream_key(&self.storage, &token).await?;
        let own = key.mountpoint_id();
        match target {
            Target::Mountpoint(id) if id != own => {
                if self.mountpoints.get(id).is_some() {
                    Err(PublishError::Unauthorized(
                        "stream key of another mountpoint",
                    ))
                } else {
                    Err(PublishError::NotFound)
                }
            }
            _ => Ok((own, key.name, token)),
        }
    }

    async fn start(
        &self,
        path: &str,
        offer: String,
        token: Option<String>,
    ) -> Result<WhipSession, PublishError> {
        let (id, name, key) = self.authorize(path, token).await?;
        let claimed = claim(&self.mountpoints, id, &name, &offer)?;
        let mp = claimed.mountpoint.clone();
        match self
            .negotiate(claimed.mountpoint, claimed.offer, name)
            .await
        {
            Ok(session) => {
                tokio::spawn(watch_key(
                    self.storage.clone(),
                    Arc::downgrade(&self.sessions),
                    session.id.clone(),
                    key,
                ));
                Ok(session)
            }
            Err(e) => {
                release(&mp);
                Err(e)
            }
        }
    }

    /// Answers `offer` publishing into `mp` with the key named `name`.
    async fn negotiate(
        &self,
        mp: Arc<MountpointEntry>,
        offer: String,
        name: String,
    ) -> Result<WhipSession, PublishError> {
        let id = mp.id;
        let remote_ufrag = offer
            .lines()
            .find_map(|l| l.trim_end().strip_prefix("a=ice-ufrag:"))
            .map(str::to_string);
        let session = Arc::new(Session {
            id: format!("{:016x}", rand::random::<u64>()),
            mountpoint: id,
            ice: tokio::sync::Mutex::new(IceSession {
                etag: new_etag(),
                remote_ufrag,
                offer: offer.clone(),
            }),
            feed: OnceLock::new(),
            peer: OnceLock::new(),
            sessions: Arc::downgrade(&self.sessions),
        });
        let peer = self
            .media
            .create_peer(session.clone())
            .await
            .map_err(|e| PublishError::Unavailable(e.to_string()))?;
        let _ = session.peer.set(peer.clone());
        let (answer, negotiated) = match peer
            .answer(&Jsep::offer(offer), &AnswerPlan::default())
            .await
        {
            Ok(a) => a,
            Err(e) => {
                peer.close().await;
                return Err(PublishError::BadOffer(e.to_string()));
            }
        };
        let feed = PublishFeed::start(mp, &negotiated, peer.sender());
        if !MediaKind::ALL.iter().any(|k| feed.relays(*k)) {
            feed.end("nothing negotiated");
            peer.close().await;
            // `end` gave the mountpoint back already.
            return Err(PublishError::BadOffer(
                "the answer settled no audio or video this mountpoint takes".into(),
            ));
        }
        report_live(&self.mountpoints, feed.clone(), Some(peer), "whip", name);
        let _ = session.feed.set(feed);
        self.sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(session.id.clone(), session.clone());
        tracing::info!(mountpoint = id, session = %session.id, "WHIP publish answered");
        let etag = session.ice.lock().await.etag.clone();
        Ok(WhipSession {
            mountpoint: id,
            id: session.id.clone(),
            answer: answer.sdp,
            etag,
        })
    }

    fn find(&self, mountpoint: &str, session: &str) -> Option<Arc<Session>> {
        self.sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(session)
            .filter(|s| s.mountpoint.to_string() == mountpoint)
            .cloned()
    }

    /// Applies a trickled fragment, or restarts ICE on new credentials (as WHEP does).
    async fn add_candidates(
        &self,
        mountpoint: &str,
        session: &str,
        if_match: Option<String>,
        fragment: IceFragment,
    ) -> Result<TrickleOutcome, TrickleError> {
        let s = self
            .find(mountpoint, session)
            .ok_or(TrickleError::NotFound)?;
        let peer = s.peer.get().ok_or(TrickleError::NotFound)?;
        // Held to the end: a trickle waits for a restart in progress, and sees its ETag.
        let mut ice = s.ice.lock().await;
        ice.apply(
            peer,
            &AnswerPlan::default(),
            if_match,
            fragment,
            &s.id,
            "WHIP",
        )
        .await
    }
}

impl WhipBackend for Whip {
    fn publish(
        &self,
        target: String,
        offer: String,
        token: Option<String>,
    ) -> BoxFuture<'_, Result<WhipSession, WhipError>> {
        Box::pin(async move {
            // The path may be the key itself: it is never logged.
            self.start(&target, offer, token).await.map_err(|e| {
                tracing::info!(error = ?redacted(&e), "WHIP publish refused");
                match e {
                    PublishError::Unauthorized(_) => WhipError::Unauthorized,
                    PublishError::NotFound => WhipError::NotFound,
                    PublishError::BadOffer(why) => WhipError::BadOffer(why),
                    PublishError::Busy(why) => WhipError::Busy(why),
                    PublishError::Unavailable(why) => WhipError::Unavailable(why),
                }
            })
        })
    }

    fn stop(&self, mountpoint: String, session: String) -> BoxFuture<'_, bool> {
        Box::pin(async move {
            let Some(s) = self.find(&mountpoint, &session) else {
                return false;
            };
            self.sessions
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&session);
            s.close("DELETE").await;
            tracing::info!(mountpoint = %mountpoint, session = %session, "WHIP publish deleted");
            true
        })
    }

    fn trickle(
        &self,
        mountpoint: String,
        session: String,
        if_match: Option<String>,
        fragment: IceFragment,
    ) -> BoxFuture<'_, Result<TrickleOutcome, TrickleError>> {
        Box::pin(async move {
            self.add_candidates(&mountpoint, &session, if_match, fragment)
                .await
        })
    }
}

/// Checks every [`KEY_CHECK_SECONDS`] that the stream key `key` of publish `id` is still in
/// the registry and enabled; when revoked or disabled, the publish ends as a `DELETE` ends it
/// (viewers are told `stopped`, its resource is gone). Ends with the publish.
async fn watch_key(storage: Storage, sessions: Weak<Sessions>, id: String, key: String) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(KEY_CHECK_SECONDS));
    tick.tick().await;
    loop {
        tick.tick().await;
        let Some(mountpoint) = sessions.upgrade().and_then(|s| {
            s.lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&id)
                .map(|s| s.mountpoint)
        }) else {
            return;
        };
        if !key_revoked(&storage, &key, mountpoint).await {
            continue;
        }
        let removed = sessions
            .upgrade()
            .and_then(|s| s.lock().unwrap_or_else(|e| e.into_inner()).remove(&id));
        if let Some(s) = removed {
            tracing::info!(mountpoint, session = %id, "stream key revoked or disabled: WHIP publish ended");
            s.close("stream key revoked").await;
        }
        return;
    }
}

/// A refusal as logged: the reason, never a token.
fn redacted(e: &PublishError) -> String {
    match e {
        PublishError::Unauthorized(why) => format!("401 {why}"),
        PublishError::NotFound => "404 no such mountpoint".into(),
        PublishError::BadOffer(why) => format!("400 {why}"),
        PublishError::Busy(why) => format!("409 {why}"),
        PublishError::Unavailable(why) => format!("503 {why}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_a_mountpoint_or_a_key() {
        assert_eq!(target("42"), Some(Target::Mountpoint(42)));
        assert_eq!(target(&"ab".repeat(32)), Some(Target::Key));
        assert_eq!(target("../etc"), None);
        assert_eq!(target(""), None);
        assert_eq!(target("99999999999999999999999"), None);
    }
}
