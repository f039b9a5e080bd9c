//! `GET /live` (one snapshot) and `GET /live/events` (a snapshot every second over
//! Server-Sent Events, `event: snapshot`). Bitrates are computed here from the byte counters
//! of consecutive samples.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Mutex;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::Json;
use futures::Stream;
use tokio::time::Instant;

use super::auth::Viewer;
use super::error::ErrorBody;
use super::status::{LiveSession, LiveSnapshot};
use super::PanelState;
use crate::storage::Timestamp;

/// How often `/live/events` pushes a snapshot.
pub const PUSH_INTERVAL: Duration = Duration::from_secs(1);

type MediaKey = (u64, u64, String);

/// What was measured at the previous sample of one medium.
#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Instant,
    bytes_in: u64,
    bytes_out: u64,
    kbps_in: Option<f64>,
    kbps_out: Option<f64>,
}

/// Byte counters of the previous sample of each medium.
#[derive(Debug, Default)]
pub struct RateTracker {
    previous: Mutex<HashMap<MediaKey, Sample>>,
}

/// Samples closer than this to the previous one repeat its rates instead of measuring over a
/// span too short to mean anything (several live views sample at their own moments).
const MIN_SPAN: Duration = Duration::from_millis(200);

fn kbps(bytes_now: u64, bytes_then: u64, seconds: f64) -> Option<f64> {
    (seconds > 0.0 && bytes_now >= bytes_then)
        .then(|| ((bytes_now - bytes_then) as f64 * 8.0 / 1000.0 / seconds * 10.0).round() / 10.0)
}

impl RateTracker {
    /// Fills `kbps_in`/`kbps_out` from the previous sample and remembers this one; media no
    /// longer present are forgotten.
    pub fn annotate(&self, sessions: &mut [LiveSession], now: Instant) {
        let mut previous = self.previous.lock().unwrap_or_else(|p| p.into_inner());
        let mut next = HashMap::new();
        for s in sessions.iter_mut() {
            for h in &mut s.handles {
                for m in &mut h.media {
                    let key = (s.id, h.id, m.mid.clone());
                    let sample = match previous.get(&key) {
                        Some(old) if now.saturating_duration_since(old.at) < MIN_SPAN => {
                            m.kbps_in = old.kbps_in;
                            m.kbps_out = old.kbps_out;
                            *old
                        }
                        Some(old) => {
                            let secs = now.saturating_duration_since(old.at).as_secs_f64();
                            m.kbps_in = kbps(m.bytes_in, old.bytes_in, secs);
                            m.kbps_out = kbps(m.bytes_out, old.bytes_out, secs);
                            Sample {
                                at: now,
                                bytes_in: m.bytes_in,
                                bytes_out: m.bytes_out,
                                kbps_in: m.kbps_in,
                                kbps_out: m.kbps_out,
                            }
                        }
                        None => Sample {
                            at: now,
                            bytes_in: m.bytes_in,
                            bytes_out: m.bytes_out,
                            kbps_in: None,
                            kbps_out: None,
                        },
                    };
                    next.insert(key, sample);
                }
            }
        }
        *previous = next;
    }
}

/// Takes a snapshot: sessions from the core, the rest from the status board.
pub async fn snapshot(state: &PanelState) -> LiveSnapshot {
    let mut sessions = state.sessions_source().sessions().await;
    state.rates().annotate(&mut sessions, Instant::now());
    let (sip_registrations, publishers, feeds) = state.board().read_all();
    LiveSnapshot {
        generated_ms: Timestamp::now().0,
        sessions,
        sip_registrations,
        publishers,
        feeds,
        egresses: state.egress().map(|e| e.listing()).unwrap_or_default(),
    }
}

/// What is live now.
#[utoipa::path(get, path = "/live", tag = "live",
    responses((status = 200, body = LiveSnapshot), (status = 401, body = ErrorBody)),
    security(("session" = [])))]
pub async fn live(State(state): State<PanelState>, _viewer: Viewer) -> Json<LiveSnapshot> {
    Json(snapshot(&state).await)
}

/// A [`LiveSnapshot`] as JSON in an `event: snapshot` every second, until the client goes
/// away, its session ends (logout, password change, user deleted: checked before each event,
/// which also keeps a watched session from going idle) or the gateway stops.
#[utoipa::path(get, path = "/live/events", tag = "live",
    responses(
        (status = 200, description = "`text/event-stream` of `snapshot` events, each a LiveSnapshot", content_type = "text/event-stream", body = LiveSnapshot),
        (status = 401, body = ErrorBody)),
    security(("session" = [])))]
pub async fn live_events(
    State(state): State<PanelState>,
    viewer: Viewer,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    tracing::debug!(user = %viewer.user.username, "panel: live view opened");
    let stop = state.shutdown_token();
    let session_id = viewer.session_id;
    let stream = futures::stream::unfold((state, true), move |(state, first)| {
        let stop = stop.clone();
        let session_id = session_id.clone();
        async move {
            if !first {
                tokio::select! {
                    _ = tokio::time::sleep(PUSH_INTERVAL) => {}
                    _ = stop.cancelled() => return None,
                }
            }
            state.sessions().touch(&session_id, Instant::now())?;
            let snap = snapshot(&state).await;
            let event = Event::default()
                .event("snapshot")
                .json_data(&snap)
                .unwrap_or_else(|_| Event::default().event("error").data("serialization"));
            Some((Ok(event), (state, false)))
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

#[cfg(test)]
mod tests {
    use super::super::status::{LiveHandle, LiveMedia};
    use super::*;

    fn session(bytes_in: u64, bytes_out: u64) -> Vec<LiveSession> {
        vec![LiveSession {
            id: 1,
            transport: "t".into(),
            handles: vec![LiveHandle {
                id: 2,
                plugin: "p".into(),
                opaque_id: None,
                ice_state: None,
                dtls_state: None,
                peer_connection: None,
                selected_pair: None,
                media: vec![LiveMedia {
                    mid: "0".into(),
                    kind: "audio".into(),
                    packets_in: 0,
                    packets_out: 0,
                    bytes_in,
                    bytes_out,
                    kbps_in: None,
                    kbps_out: None,
                }],
            }],
        }]
    }

    #[test]
    fn bitrates_come_from_byte_deltas_over_time() {
        let t = RateTracker::default();
        let t0 = Instant::now();
        let mut a = session(0, 0);
        t.annotate(&mut a, t0);
        assert_eq!(a[0].handles[0].media[0].kbps_in, None);
        let mut b = session(8000, 4000);
        t.annotate(&mut b, t0 + Duration::from_secs(2));
        assert_eq!(b[0].handles[0].media[0].kbps_in, Some(32.0));
        assert_eq!(b[0].handles[0].media[0].kbps_out, Some(16.0));
        // A second viewer sampling 100 ms later sees the same rates, not a blank.
        let mut c = session(8100, 4000);
        t.annotate(&mut c, t0 + Duration::from_millis(2100));
        assert_eq!(c[0].handles[0].media[0].kbps_in, Some(32.0));
        // The next real sample measures from the 2 s one.
        let mut d = session(16000, 4000);
        t.annotate(&mut d, t0 + Duration::from_secs(4));
        assert_eq!(d[0].handles[0].media[0].kbps_in, Some(32.0));
        assert_eq!(d[0].handles[0].media[0].kbps_out, Some(0.0));
    }
}
