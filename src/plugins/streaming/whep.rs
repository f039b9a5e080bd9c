//! WHEP viewers of mountpoints: the [`WhepBackend`] of `src/web/whep.rs`. Each session is a
//! PeerConnection answering the player's offer with the mountpoint's streams (send-only), fed
//! by the same fan-out and [`ViewerSink`] as a janus.js viewer, from the last keyframe on.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};

use futures::future::BoxFuture;

use super::mountpoints::{Attached, MountpointEntry, Mountpoints};
use super::offer_codecs;
use super::viewer::ViewerSink;
use crate::ids::Mid;
use crate::media::{
    AnswerPlan, DataMessage, Direction, Jsep, LocalCandidate, MediaEngine, MediaKind, Peer,
    PeerListener, RemoteCandidate, RtcpFeedback, RtpPacket, StreamInfo, StreamPlan,
};
use crate::web::whep::{
    IceFragment, TrickleError, TrickleOutcome, WhepBackend, WhepError, WhepSession,
};

/// One WHEP viewer.
struct Session {
    id: String,
    /// The ICE session: changed by an ICE restart (only on `PATCH`, never per packet).
    ice: tokio::sync::Mutex<IceSession>,
    /// How the offer was answered, to answer it again on an ICE restart.
    plan: AnswerPlan,
    mountpoint: Arc<MountpointEntry>,
    sink: OnceLock<Arc<ViewerSink>>,
    attached: Mutex<Option<Attached>>,
    vp8: std::sync::atomic::AtomicBool,
    peer: OnceLock<Arc<Peer>>,
    sessions: Weak<Mutex<HashMap<String, Arc<Session>>>>,
}

/// The current ICE session of a WHEP session or a WHIP publish.
pub(super) struct IceSession {
    /// Entity tag (RFC 9725 §4.3.1), new at each restart.
    pub(super) etag: String,
    /// The client's `a=ice-ufrag`: a fragment with another one asks for a restart.
    pub(super) remote_ufrag: Option<String>,
    /// The client's offer as last applied.
    pub(super) offer: String,
}

impl IceSession {
    /// Applies a `PATCH` (RFC 9725 §4.3) of session `session` (`protocol`: "WHEP" or "WHIP",
    /// for the log) to `peer`: refuses a stale `If-Match`; restarts ICE when the fragment
    /// brings another `ice-ufrag` (answering the restarted offer with `plan`: a new ETag and
    /// the gateway's fragment); adds the trickled candidates, skipping mDNS names.
    ///
    /// Errors: [`TrickleError::StaleEtag`], [`TrickleError::Unusable`] for a restart without
    /// `ice-pwd`, a failed restart or a refused candidate.
    pub(super) async fn apply(
        &mut self,
        peer: &Peer,
        plan: &AnswerPlan,
        if_match: Option<String>,
        fragment: IceFragment,
        session: &str,
        protocol: &str,
    ) -> Result<TrickleOutcome, TrickleError> {
        if !if_match
            .as_deref()
            .is_none_or(|t| t == "*" || t == self.etag)
        {
            tracing::info!(%session, "{protocol} trickle for another ICE session refused");
            return Err(TrickleError::StaleEtag);
        }
        let restart = fragment
            .ufrag
            .as_ref()
            .is_some_and(|u| Some(u) != self.remote_ufrag.as_ref());
        let mut outcome = TrickleOutcome::Applied;
        if restart {
            let (Some(ufrag), Some(pwd)) = (fragment.ufrag.clone(), fragment.pwd.clone()) else {
                tracing::info!(%session, "{protocol} ICE restart without ice-pwd refused");
                return Err(TrickleError::Unusable(
                    "an ICE restart needs both a=ice-ufrag and a=ice-pwd".into(),
                ));
            };
            let offer = restarted_offer(&self.offer, &ufrag, &pwd);
            let (answer, _) = peer
                .answer(&Jsep::offer(offer.clone()), plan)
                .await
                .map_err(|e| {
                    tracing::info!(%session, error = %e, "{protocol} ICE restart failed");
                    TrickleError::Unusable(format!("ICE restart failed: {e}"))
                })?;
            self.offer = offer;
            self.remote_ufrag = Some(ufrag);
            self.etag = new_etag();
            tracing::info!(%session, "{protocol} ICE restart");
            outcome = TrickleOutcome::Restarted {
                fragment: answer_fragment(&answer.sdp),
                etag: self.etag.clone(),
            };
        }
        let count = fragment.candidates.len();
        for (mid, candidate) in fragment.candidates {
            // An mDNS name (a browser hiding its address) cannot be resolved here: the
            // browser's checks reach us anyway (peer-reflexive), so it is skipped.
            if candidate
                .split_whitespace()
                .nth(4)
                .is_some_and(|a| a.ends_with(".local"))
            {
                tracing::debug!(%session, "mDNS candidate skipped");
                continue;
            }
            let remote = RemoteCandidate {
                sdp_mline_index: mid.is_none().then_some(0),
                sdp_mid: mid,
                candidate,
            };
            if let Err(e) = peer.add_remote_candidate(remote).await {
                tracing::info!(%session, error = %e, "{protocol} trickled candidate refused");
                return Err(TrickleError::Unusable(format!("candidate not usable: {e}")));
            }
        }
        tracing::debug!(%session, count, end = fragment.end_of_candidates, "{protocol} candidates trickled");
        Ok(outcome)
    }
}

/// A fresh entity tag.
pub(super) fn new_etag() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// `offer` with the ICE credentials `ufrag`/`pwd` instead of its own and without its
/// candidates: what the client's offer would be after its ICE restart (RFC 9725 §4.3.3: the
/// rest of the session stays as negotiated).
pub(super) fn restarted_offer(offer: &str, ufrag: &str, pwd: &str) -> String {
    let mut out = String::with_capacity(offer.len());
    for line in offer.lines().map(str::trim_end) {
        if line.starts_with("a=candidate:") || line == "a=end-of-candidates" {
            continue;
        }
        if line.starts_with("a=ice-ufrag:") {
            out.push_str("a=ice-ufrag:");
            out.push_str(ufrag);
        } else if line.starts_with("a=ice-pwd:") {
            out.push_str("a=ice-pwd:");
            out.push_str(pwd);
        } else {
            out.push_str(line);
        }
        out.push_str("\r\n");
    }
    out
}

/// The RFC 8840 fragment of our side of `answer`: its ICE credentials and the candidates of
/// its first media section (every section shares them with BUNDLE).
pub(super) fn answer_fragment(answer: &str) -> String {
    let lines: Vec<&str> = answer.lines().map(str::trim_end).collect();
    let first = |prefix: &str| lines.iter().find(|l| l.starts_with(prefix)).copied();
    let mut out = String::new();
    for l in [first("a=ice-ufrag:"), first("a=ice-pwd:")]
        .into_iter()
        .flatten()
    {
        out.push_str(l);
        out.push_str("\r\n");
    }
    let section = lines
        .iter()
        .skip_while(|l| !l.starts_with("m="))
        .take_while({
            let mut seen = false;
            move |l| {
                let more = !(l.starts_with("m=") && seen);
                seen = true;
                more
            }
        });
    for l in section {
        if l.starts_with("m=") || l.starts_with("a=mid:") || l.starts_with("a=candidate:") {
            out.push_str(l);
            out.push_str("\r\n");
        }
    }
    out.push_str("a=end-of-candidates\r\n");
    out
}

impl Session {
    fn detach(&self) {
        let attached = self
            .attached
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(a) = attached {
            self.mountpoint.detach_sink(a);
        }
    }

    async fn close(&self) {
        self.detach();
        if let Some(peer) = self.peer.get() {
            peer.close().await;
        }
    }
}

impl PeerListener for Session {
    fn on_connected(&self) {
        let Some(sink) = self.sink.get() else { return };
        let mut attached = self.attached.lock().unwrap_or_else(|e| e.into_inner());
        if attached.is_none() {
            let vp8 = self.vp8.load(std::sync::atomic::Ordering::Relaxed);
            match self.mountpoint.attach_sink(sink.clone(), vp8) {
                Ok(a) => *attached = Some(a),
                Err(e) => {
                    tracing::warn!(mountpoint = self.mountpoint.id, error = %e, "WHEP viewer not attached");
                    return;
                }
            }
            tracing::info!(mountpoint = self.mountpoint.id, session = %self.id, vp8, "WHEP viewer playing");
        }
    }

    fn on_media(&self, _kind: MediaKind, _mid: &Mid, _receiving: bool) {}

    fn on_rtp(&self, _stream: &StreamInfo, _packet: RtpPacket) {}

    fn on_rtcp(&self, kind: MediaKind, feedback: RtcpFeedback) {
        if kind != MediaKind::Video || feedback != RtcpFeedback::KeyframeRequest {
            return;
        }
        let attached = self.attached.lock().unwrap_or_else(|e| e.into_inner());
        if let (Some(a), Some(sink)) = (&*attached, self.sink.get()) {
            if sink.keyframe_request_due() {
                a.request_keyframe(&self.mountpoint);
                self.mountpoint.request_source_keyframe();
            }
        }
    }

    fn on_data(&self, _label: &str, _message: DataMessage) {}

    fn on_local_candidate(&self, _candidate: LocalCandidate) {}

    fn on_slowlink(&self, _kind: MediaKind, _mid: &Mid, _uplink: bool, _lost: u64) {}

    fn on_failed(&self, reason: &'static str) {
        tracing::info!(mountpoint = self.mountpoint.id, session = %self.id, reason, "WHEP viewer gone");
        self.detach();
        if let Some(sessions) = self.sessions.upgrade() {
            let removed = sessions
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&self.id);
            if let Some(s) = removed {
                tokio::spawn(async move { s.close().await });
            }
        }
    }
}

/// The WHEP backend over the plugin's mountpoints.
pub struct Whep {
    mountpoints: Arc<Mountpoints>,
    media: Arc<MediaEngine>,
    sessions: Arc<Mutex<HashMap<String, Arc<Session>>>>,
}

impl Whep {
    /// A backend playing `mountpoints` through `media`.
    pub fn new(mountpoints: Arc<Mountpoints>, media: Arc<MediaEngine>) -> Self {
        Self {
            mountpoints,
            media,
            sessions: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    async fn start(
        &self,
        mountpoint: &str,
        offer: String,
        token: Option<String>,
    ) -> Result<WhepSession, WhepError> {
        let id: u64 = mountpoint.parse().map_err(|_| WhepError::NotFound)?;
        let mp = self.mountpoints.get(id).ok_or(WhepError::NotFound)?;
        if let Some(pin) = &mp.settings().pin {
            match token {
                Some(t) if pin.matches(&t).await => {}
                _ => return Err(WhepError::Unauthorized),
            }
        }
        if !mp.enabled.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(WhepError::Unavailable("mountpoint disabled".into()));
        }
        let mut plan = AnswerPlan::default();
        for s in mp.streams() {
            let stream = Some(StreamPlan::new(Direction::SendOnly, offer_codecs(&s.codec)));
            match s.kind {
                MediaKind::Audio => plan.audio = stream,
                MediaKind::Video => plan.video = stream,
            }
        }
        let remote_ufrag = offer
            .lines()
            .find_map(|l| l.trim_end().strip_prefix("a=ice-ufrag:"))
            .map(str::to_string);
        let session = Arc::new(Session {
            id: format!("{:016x}", rand::random::<u64>()),
            ice: tokio::sync::Mutex::new(IceSession {
                etag: new_etag(),
                remote_ufrag,
                offer: offer.clone(),
            }),
            plan: plan.clone(),
            mountpoint: mp.clone(),
            sink: OnceLock::new(),
            attached: Mutex::new(None),
            vp8: std::sync::atomic::AtomicBool::new(false),
            peer: OnceLock::new(),
            sessions: Arc::downgrade(&self.sessions),
        });
        let peer = self
            .media
            .create_peer(session.clone())
            .await
            .map_err(|e| WhepError::Unavailable(e.to_string()))?;
        let _ = session.peer.set(peer.clone());
        let (answer, negotiated) = match peer.answer(&Jsep::offer(offer), &plan).await {
            Ok(a) => a,
            Err(e) => {
                peer.close().await;
                return Err(WhepError::BadOffer(e.to_string()));
            }
        };
        let sends = negotiated
            .streams
            .iter()
            .any(|s| s.codec.is_some() && s.direction.sends());
        if !sends {
            peer.close().await;
            return Err(WhepError::BadOffer(
                "the offer has no audio or video this mountpoint can send".into(),
            ));
        }
        let sink = Arc::new(ViewerSink::new(peer.sender(), 111, 96));
        for s in mp.streams() {
            sink.set_clock(s.kind, s.codec.clock_rate());
        }
        for kind in MediaKind::ALL {
            if let Some(s) = negotiated.first(kind) {
                sink.set_pt(kind, s.pt.0);
                if kind == MediaKind::Video && s.codec == Some(crate::media::Codec::Vp8) {
                    session
                        .vp8
                        .store(true, std::sync::atomic::Ordering::Relaxed);
                }
            }
        }
        let _ = session.sink.set(sink);
        self.sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(session.id.clone(), session.clone());
        tracing::info!(mountpoint = id, session = %session.id, "WHEP session answered");
        let etag = session.ice.lock().await.etag.clone();
        Ok(WhepSession {
            id: session.id.clone(),
            answer: answer.sdp,
            etag,
        })
    }

    /// Applies a trickled fragment: the candidates go to the PeerConnection as janus.js'
    /// `trickle` ones do. A fragment with other ICE credentials is an ICE restart: the offer
    /// is answered again with them (new local credentials and candidates, a new ETag) and our
    /// side goes back as a fragment.
    async fn add_candidates(
        &self,
        mountpoint: &str,
        session: &str,
        if_match: Option<String>,
        fragment: IceFragment,
    ) -> Result<TrickleOutcome, TrickleError> {
        let found = self
            .sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(session)
            .filter(|s| s.mountpoint.id.to_string() == mountpoint)
            .cloned();
        let Some(s) = found else {
            return Err(TrickleError::NotFound);
        };
        let Some(peer) = s.peer.get() else {
            return Err(TrickleError::NotFound);
        };
        // Held to the end: a trickle waits for a restart in progress, and sees its ETag.
        let mut ice = s.ice.lock().await;
        ice.apply(peer, &s.plan, if_match, fragment, &s.id, "WHEP")
            .await
    }
}

impl WhepBackend for Whep {
    fn play(
        &self,
        mountpoint: String,
        offer: String,
        token: Option<String>,
    ) -> BoxFuture<'_, Result<WhepSession, WhepError>> {
        Box::pin(async move { self.start(&mountpoint, offer, token).await })
    }

    fn stop(&self, mountpoint: String, session: String) -> BoxFuture<'_, bool> {
        Box::pin(async move {
            let removed = {
                let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
                match sessions.get(&session) {
                    Some(s) if s.mountpoint.id.to_string() == mountpoint => {
                        sessions.remove(&session)
                    }
                    _ => None,
                }
            };
            match removed {
                Some(s) => {
                    s.close().await;
                    tracing::info!(mountpoint = %mountpoint, session = %session, "WHEP session deleted");
                    true
                }
                None => false,
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\na=ice-ufrag:old1\r\na=ice-pwd:oldpasswordoldpassword\r\na=candidate:1 1 udp 1 127.0.0.1 5000 typ host\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:1\r\na=ice-ufrag:old1\r\na=ice-pwd:oldpasswordoldpassword\r\n";

    #[test]
    fn restarted_offers_carry_the_new_credentials_only() {
        let o = restarted_offer(OFFER, "new1", "newpasswordnewpassword");
        assert_eq!(o.matches("a=ice-ufrag:new1").count(), 2);
        assert_eq!(o.matches("a=ice-pwd:newpasswordnewpassword").count(), 2);
        assert!(!o.contains("old1") && !o.contains("a=candidate"));
        assert!(o.contains("a=group:BUNDLE 0 1"));
    }

    #[test]
    fn answer_fragments_have_credentials_and_first_section_candidates() {
        let f = answer_fragment(OFFER);
        assert_eq!(
            f,
            "a=ice-ufrag:old1\r\na=ice-pwd:oldpasswordoldpassword\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\na=candidate:1 1 udp 1 127.0.0.1 5000 typ host\r\na=end-of-candidates\r\n"
        );
        let parsed = IceFragment::parse(&f).unwrap();
        assert_eq!(parsed.candidates.len(), 1);
    }
}
