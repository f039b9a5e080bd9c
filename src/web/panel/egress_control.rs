//! What the panel asks of the restreaming service. The panel sits below the services and sees
//! them only through traits they implement (as it sees SIP trunks through
//! [`super::trunk_check::TrunkRegistrar`]); `services::egress::EgressService` implements this
//! one.

use super::egress::EgressState;
use super::error::PanelError;

/// A running egress as the panel shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningEgress {
    /// Egress id (as the streaming plugin's `egress_list` names it).
    pub id: u64,
    /// Registry egress target it was started from; `None` for an inline URL.
    pub target_id: Option<i64>,
    /// Where it stands.
    pub state: EgressState,
    /// Why it is reconnecting or failed.
    pub reason: Option<String>,
}

/// The restreaming service, seen from the panel.
#[async_trait::async_trait]
pub trait EgressControl: Send + Sync {
    /// The egresses running now.
    fn running(&self) -> Vec<RunningEgress>;

    /// Every running egress as the streaming plugin's `egress_list` shows it (the live view;
    /// never a key).
    fn listing(&self) -> Vec<serde_json::Value>;

    /// Starts the egress of registry target `target_id`.
    ///
    /// Errors: `unprocessable` (URL or key unusable), `already_exists` (an egress to the same
    /// destination runs), `not_found`, `invalid_input` (disabled target, missing mountpoint or
    /// no media to send), `internal` (the codecs could not start).
    async fn start_target(&self, target_id: i64) -> Result<(), PanelError>;

    /// Stops egress `id`. Errors: `not_found`.
    fn stop(&self, id: u64) -> Result<(), PanelError>;
}
