//! Where an egress is, as the `egress` events and `egress_list` report it, and the task that
//! follows an RTMP publisher's state into it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bifrons_rtmp::client::PublisherState;
use serde::Serialize;
use tokio::sync::{broadcast, watch};

/// The state of one egress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum EgressState {
    /// Connecting to the RTMP server and asking to publish.
    Connecting,
    /// The server accepted the publish: media flows.
    Live,
    /// The connection failed; the next attempt comes after `retry_in_ms`.
    Reconnecting {
        /// Consecutive failed attempts.
        attempt: u32,
        /// Wait before the next attempt, ms.
        retry_in_ms: u64,
        /// Why the last attempt failed.
        reason: String,
    },
    /// Given up (the server refused the publish, e.g. a wrong key, or an `rtmps://` server's
    /// certificate is not trusted: `TLS: …`). The egress stays listed
    /// until `egress_stop`.
    Failed {
        /// Why.
        reason: String,
    },
    /// Stopped by `egress_stop` (or its mountpoint was destroyed).
    Stopped,
}

impl EgressState {
    /// The state's name: `connecting`, `live`, `reconnecting`, `failed`, `stopped`.
    pub fn name(&self) -> &'static str {
        match self {
            EgressState::Connecting => "connecting",
            EgressState::Live => "live",
            EgressState::Reconnecting { .. } => "reconnecting",
            EgressState::Failed { .. } => "failed",
            EgressState::Stopped => "stopped",
        }
    }

    /// Whether the egress is over (failed or stopped).
    pub fn is_final(&self) -> bool {
        matches!(self, EgressState::Failed { .. } | EgressState::Stopped)
    }

    fn from_publisher(state: &PublisherState) -> Self {
        match state {
            PublisherState::Connecting => EgressState::Connecting,
            PublisherState::Publishing => EgressState::Live,
            PublisherState::Reconnecting {
                attempt,
                delay,
                error,
            } => EgressState::Reconnecting {
                attempt: *attempt,
                retry_in_ms: delay.as_millis() as u64,
                reason: error.clone(),
            },
            PublisherState::Failed(reason) => EgressState::Failed {
                reason: reason.clone(),
            },
            PublisherState::Closed => EgressState::Stopped,
        }
    }
}

/// A state change of one egress (what the service broadcasts).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EgressEvent {
    /// The egress.
    pub id: u64,
    /// Its mountpoint's id.
    pub mountpoint: u64,
    /// The new state.
    #[serde(flatten)]
    pub state: EgressState,
}

/// Follows `publisher` until it ends: each change is stored in `current`, broadcast on
/// `events`, and `on_live` is called when it (re)connects (the encoder then makes an IDR).
pub(super) async fn follow(
    id: u64,
    mountpoint: u64,
    mut publisher: watch::Receiver<PublisherState>,
    current: Arc<Mutex<EgressState>>,
    events: broadcast::Sender<EgressEvent>,
    on_live: impl Fn(),
) {
    let mut last: Option<EgressState> = None;
    loop {
        let state = EgressState::from_publisher(&publisher.borrow_and_update());
        if last.as_ref() != Some(&state) {
            if state == EgressState::Live {
                on_live();
            }
            {
                let mut slot = current.lock().unwrap_or_else(|e| e.into_inner());
                // `Stopped` is set by the service itself; a closing publisher does not undo it.
                if *slot == EgressState::Stopped {
                    return;
                }
                *slot = state.clone();
            }
            match &state {
                EgressState::Failed { reason } => {
                    tracing::warn!(egress = id, mountpoint, %reason, "egress failed")
                }
                EgressState::Reconnecting {
                    reason, attempt, ..
                } => {
                    tracing::info!(egress = id, mountpoint, attempt, %reason, "egress reconnecting")
                }
                s => tracing::info!(egress = id, mountpoint, state = s.name(), "egress state"),
            }
            let _ = events.send(EgressEvent {
                id,
                mountpoint,
                state: state.clone(),
            });
            if state.is_final() {
                return;
            }
            last = Some(state);
        }
        if publisher.changed().await.is_err() {
            return;
        }
    }
}

/// Reconnect delays of an egress: from 500 ms, doubling, up to 10 s.
pub(super) const BACKOFF: (Duration, Duration) =
    (Duration::from_millis(500), Duration::from_secs(10));

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_serialize_with_their_name_and_reason() {
        let e = EgressEvent {
            id: 3,
            mountpoint: 9,
            state: EgressState::Failed {
                reason: "refused by server: NetStream.Publish.BadName".into(),
            },
        };
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["state"], "failed");
        assert_eq!(v["id"], 3);
        assert!(v["reason"].as_str().unwrap().contains("BadName"));
        assert_eq!(
            serde_json::to_value(EgressState::Live).unwrap()["state"],
            "live"
        );
    }
}
