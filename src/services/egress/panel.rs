//! The panel's view of the restreaming service ([`EgressControl`]): running egresses with their
//! state, and start/stop of registry targets with the panel's error codes.

use super::state::EgressState;
use super::{EgressError, EgressService};
use crate::web::panel::egress::EgressState as PanelState;
use crate::web::panel::egress_control::{EgressControl, RunningEgress};
use crate::web::panel::error::{ErrorCode, PanelError};

/// The panel's state of `state`, with the reason when reconnecting or failed.
fn panel_state(state: &EgressState) -> (PanelState, Option<String>) {
    match state {
        EgressState::Connecting => (PanelState::Connecting, None),
        EgressState::Live => (PanelState::Live, None),
        EgressState::Reconnecting { reason, .. } => {
            (PanelState::Reconnecting, Some(reason.clone()))
        }
        EgressState::Failed { reason } => (PanelState::Failed, Some(reason.clone())),
        EgressState::Stopped => (PanelState::NotStarted, None),
    }
}

/// The panel's error for a refused start or stop.
fn refused(e: EgressError) -> PanelError {
    let code = match e {
        EgressError::Target(_) => ErrorCode::Unprocessable,
        EgressError::Start(_) => ErrorCode::Internal,
        EgressError::Duplicate { .. } => ErrorCode::AlreadyExists,
        EgressError::NotFound(_) => ErrorCode::NotFound,
        EgressError::NoMountpoint(_) | EgressError::NoMedia(_) | EgressError::Registry(_) => {
            ErrorCode::InvalidInput
        }
    };
    PanelError::new(code, e.to_string())
}

#[async_trait::async_trait]
impl EgressControl for EgressService {
    fn running(&self) -> Vec<RunningEgress> {
        self.list(None)
            .into_iter()
            .map(|info| {
                let (state, reason) = panel_state(&info.state);
                RunningEgress {
                    id: info.id,
                    target_id: info.egress_target_id,
                    state,
                    reason,
                }
            })
            .collect()
    }

    fn listing(&self) -> Vec<serde_json::Value> {
        self.list(None)
            .iter()
            .filter_map(|info| serde_json::to_value(info).ok())
            .collect()
    }

    async fn start_target(&self, target_id: i64) -> Result<(), PanelError> {
        self.start_registered(&target_id.to_string(), Default::default())
            .await
            .map(|_| ())
            .map_err(refused)
    }

    fn stop(&self, id: u64) -> Result<(), PanelError> {
        EgressService::stop(self, id).map(|_| ()).map_err(refused)
    }
}
