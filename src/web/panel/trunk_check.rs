//! What the panel asks of the SIP service about trunks: "the registry changed, apply it now"
//! (after a create, edit or delete) and "test this trunk now". The panel sits below the
//! services and sees them only through [`TrunkRegistrar`], which the SIP service implements
//! (`services::sip::TrunkLines`).

use std::sync::Arc;

use futures::future::BoxFuture;
use serde::Serialize;
use utoipa::ToSchema;

use crate::storage::Trunk;

/// The live outcome of one test of a trunk: a REGISTER with the trunk's stored credentials
/// (then removed again), or an OPTIONS when the trunk does not register.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct TrunkTestResult {
    /// Whether the registrar accepted (REGISTER 2xx) or answered at all (OPTIONS, any final
    /// answer but a timeout means the trunk is reachable; 2xx counts as `ok`).
    pub ok: bool,
    /// `REGISTER` or `OPTIONS`.
    pub method: String,
    /// Final SIP status (`408` when no answer came within timer B/F, absent when the request
    /// could not be sent).
    pub code: Option<u16>,
    /// Reason phrase or what went wrong, e.g. `OK`, `Unauthorized`, `Forbidden`.
    pub reason: String,
    /// Time from sending the request to its final answer, ms (digest challenges included).
    pub rtt_ms: u64,
    /// Lifetime the registrar granted, seconds (REGISTER only).
    pub expires_s: Option<u32>,
}

/// The SIP service as the trunk pages use it.
pub trait TrunkRegistrar: Send + Sync {
    /// The trunks of the registry changed: (re-)register, or unregister, what changed now
    /// instead of at the next registry poll. Returns at once.
    fn registry_changed(&self);

    /// Tests `trunk` now with its stored credentials. `None` when no SIP service runs in this
    /// process (the SIP plugin is disabled).
    fn test(&self, trunk: Trunk) -> BoxFuture<'_, Option<TrunkTestResult>>;
}

/// No SIP service: changes are only stored, tests are refused.
#[derive(Debug, Default)]
pub struct NoTrunkRegistrar;

impl TrunkRegistrar for NoTrunkRegistrar {
    fn registry_changed(&self) {}

    fn test(&self, _trunk: Trunk) -> BoxFuture<'_, Option<TrunkTestResult>> {
        Box::pin(async { None })
    }
}

/// A shared registrar, as [`super::PanelContext`] holds it.
pub type SharedRegistrar = Arc<dyn TrunkRegistrar>;
