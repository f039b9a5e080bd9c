//! `/trunks`: SIP trunks. The digest password is write-only: answers say `has_password`.
//! Every change is passed on to the SIP service at once (a trunk registers, re-registers or
//! unregisters), and `/trunks/{id}/test` runs a live registration attempt.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::{AdminUser, JsonBody, Viewer};
use super::error::{ErrorBody, ErrorCode, PanelError, PanelResult};
use super::trunk_check::TrunkTestResult;
use super::PanelState;
use crate::storage::{DtmfMode, Page, Secret, Transport, Trunk, TrunkId, TrunkSpec, TrunkSrtp};

/// SIP transport towards the registrar.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TransportName {
    /// UDP.
    Udp,
    /// TCP.
    Tcp,
    /// TLS.
    Tls,
}

/// How DTMF digits are sent.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DtmfName {
    /// RTP telephone-events (RFC 4733).
    Rfc4733,
    /// SIP INFO.
    Info,
    /// In-band tones.
    Inband,
}

/// SDES-SRTP the trunk requires towards its PBX (Janus' `srtp` names).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SrtpName {
    /// No requirement (the browser's `srtp` choice only).
    Off,
    /// Crypto offered in RTP/AVP; plain RTP if the PBX has none.
    SdesOptional,
    /// RTP/SAVP only; calls without SRTP fail.
    SdesMandatory,
}

impl From<TrunkSrtp> for SrtpName {
    fn from(s: TrunkSrtp) -> Self {
        match s {
            TrunkSrtp::Off => SrtpName::Off,
            TrunkSrtp::Optional => SrtpName::SdesOptional,
            TrunkSrtp::Mandatory => SrtpName::SdesMandatory,
        }
    }
}

impl From<SrtpName> for TrunkSrtp {
    fn from(s: SrtpName) -> Self {
        match s {
            SrtpName::Off => TrunkSrtp::Off,
            SrtpName::SdesOptional => TrunkSrtp::Optional,
            SrtpName::SdesMandatory => TrunkSrtp::Mandatory,
        }
    }
}

impl From<Transport> for TransportName {
    fn from(t: Transport) -> Self {
        match t {
            Transport::Udp => TransportName::Udp,
            Transport::Tcp => TransportName::Tcp,
            Transport::Tls => TransportName::Tls,
        }
    }
}

impl From<TransportName> for Transport {
    fn from(t: TransportName) -> Self {
        match t {
            TransportName::Udp => Transport::Udp,
            TransportName::Tcp => Transport::Tcp,
            TransportName::Tls => Transport::Tls,
        }
    }
}

impl From<DtmfMode> for DtmfName {
    fn from(d: DtmfMode) -> Self {
        match d {
            DtmfMode::Rfc4733 => DtmfName::Rfc4733,
            DtmfMode::Info => DtmfName::Info,
            DtmfMode::Inband => DtmfName::Inband,
        }
    }
}

impl From<DtmfName> for DtmfMode {
    fn from(d: DtmfName) -> Self {
        match d {
            DtmfName::Rfc4733 => DtmfMode::Rfc4733,
            DtmfName::Info => DtmfMode::Info,
            DtmfName::Inband => DtmfMode::Inband,
        }
    }
}

/// A trunk as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct TrunkView {
    /// Row id.
    pub id: i64,
    /// Unique name.
    pub name: String,
    /// Registrar, a `sip:`/`sips:` URI.
    pub registrar_uri: String,
    /// Transport.
    pub transport: TransportName,
    /// User part of REGISTER's From/To.
    pub username: Option<String>,
    /// Digest username, when it differs.
    pub auth_username: Option<String>,
    /// Whether a digest password is stored (the password itself is never returned).
    pub has_password: bool,
    /// Pinned digest realm.
    pub realm: Option<String>,
    /// Whether Bifrons registers.
    pub register: bool,
    /// Registration lifetime, seconds.
    pub register_expiry_s: u32,
    /// Outbound proxy URI.
    pub outbound_proxy: Option<String>,
    /// Allowed codecs, most preferred first.
    pub codecs: Vec<String>,
    /// DTMF mode.
    pub dtmf_mode: DtmfName,
    /// Whether the trunk is used.
    pub enabled: bool,
    /// SDES-SRTP required towards the PBX.
    pub srtp: SrtpName,
    /// Creation time, Unix ms.
    pub created_ms: i64,
}

impl From<Trunk> for TrunkView {
    fn from(t: Trunk) -> Self {
        let s = t.spec;
        TrunkView {
            id: t.id.0,
            name: s.name,
            registrar_uri: s.registrar_uri,
            transport: s.transport.into(),
            username: s.username,
            auth_username: s.auth_username,
            has_password: s.password.is_some(),
            realm: s.realm,
            register: s.register,
            register_expiry_s: s.register_expiry_s,
            outbound_proxy: s.outbound_proxy,
            codecs: s.codecs,
            dtmf_mode: s.dtmf_mode.into(),
            enabled: s.enabled,
            srtp: s.srtp.into(),
            created_ms: t.created.0,
        }
    }
}

/// `POST /trunks` and `PUT /trunks/{id}` body; absent optional fields take the defaults
/// (UDP, register for 3600 s, opus/PCMU/PCMA, RFC 4733, enabled).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrunkInput {
    /// Unique name, 1..=64 characters.
    pub name: String,
    /// Registrar, a `sip:`/`sips:` URI.
    pub registrar_uri: String,
    /// Transport (default `udp`).
    pub transport: Option<TransportName>,
    /// User part of REGISTER's From/To.
    pub username: Option<String>,
    /// Digest username, when it differs.
    pub auth_username: Option<String>,
    /// Digest password. On `PUT`, absent keeps the stored one and `""` removes it.
    pub password: Option<String>,
    /// Pinned digest realm.
    pub realm: Option<String>,
    /// Whether Bifrons registers (default `true`).
    pub register: Option<bool>,
    /// Registration lifetime in seconds (default 3600).
    pub register_expiry_s: Option<u32>,
    /// Outbound proxy URI.
    pub outbound_proxy: Option<String>,
    /// Allowed codecs, most preferred first.
    pub codecs: Option<Vec<String>>,
    /// DTMF mode (default `rfc4733`).
    pub dtmf_mode: Option<DtmfName>,
    /// Whether the trunk is used (default `true`).
    pub enabled: Option<bool>,
    /// SDES-SRTP required towards the PBX (default `off`).
    pub srtp: Option<SrtpName>,
}

fn non_empty(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

impl TrunkInput {
    /// The spec to store; `kept` is the stored password for `PUT`.
    fn into_spec(self, kept: Option<Secret>) -> TrunkSpec {
        let mut spec = TrunkSpec::new(self.name.trim(), self.registrar_uri.trim());
        if let Some(t) = self.transport {
            spec.transport = t.into();
        }
        spec.username = non_empty(self.username);
        spec.auth_username = non_empty(self.auth_username);
        spec.password = match self.password {
            None => kept,
            Some(p) if p.is_empty() => None,
            Some(p) => Some(Secret::new(p)),
        };
        spec.realm = non_empty(self.realm);
        if let Some(r) = self.register {
            spec.register = r;
        }
        if let Some(e) = self.register_expiry_s {
            spec.register_expiry_s = e;
        }
        spec.outbound_proxy = non_empty(self.outbound_proxy);
        if let Some(c) = self.codecs {
            spec.codecs = c;
        }
        if let Some(d) = self.dtmf_mode {
            spec.dtmf_mode = d.into();
        }
        if let Some(e) = self.enabled {
            spec.enabled = e;
        }
        if let Some(s) = self.srtp {
            spec.srtp = s.into();
        }
        spec
    }
}

/// Every trunk.
#[utoipa::path(get, path = "/trunks", tag = "trunks",
    responses((status = 200, body = [TrunkView]), (status = 401, body = ErrorBody)),
    security(("session" = [])))]
pub async fn list_trunks(
    State(state): State<PanelState>,
    _viewer: Viewer,
) -> PanelResult<Json<Vec<TrunkView>>> {
    let trunks = state
        .storage()
        .trunks()
        .list(Page::first(Page::MAX_LIMIT))
        .await?;
    Ok(Json(trunks.into_iter().map(TrunkView::from).collect()))
}

/// One trunk.
#[utoipa::path(get, path = "/trunks/{id}", tag = "trunks",
    params(("id" = i64, Path, description = "Trunk id")),
    responses((status = 200, body = TrunkView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("session" = [])))]
pub async fn get_trunk(
    State(state): State<PanelState>,
    _viewer: Viewer,
    Path(id): Path<i64>,
) -> PanelResult<Json<TrunkView>> {
    Ok(Json(
        state.storage().trunks().get(TrunkId(id)).await?.into(),
    ))
}

/// Creates a trunk.
#[utoipa::path(post, path = "/trunks", tag = "trunks", request_body = TrunkInput,
    responses((status = 201, body = TrunkView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("session" = [], "csrf" = [])))]
pub async fn create_trunk(
    State(state): State<PanelState>,
    AdminUser(admin): AdminUser,
    JsonBody(body): JsonBody<TrunkInput>,
) -> PanelResult<(StatusCode, Json<TrunkView>)> {
    let trunk = state
        .storage()
        .trunks()
        .create(&body.into_spec(None))
        .await?;
    tracing::info!(by = %admin.user.username, trunk = %trunk.spec.name, "panel: trunk created");
    state.trunk_registrar().registry_changed();
    Ok((StatusCode::CREATED, Json(trunk.into())))
}

/// Replaces a trunk's settings.
#[utoipa::path(put, path = "/trunks/{id}", tag = "trunks", request_body = TrunkInput,
    params(("id" = i64, Path, description = "Trunk id")),
    responses((status = 200, body = TrunkView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("session" = [], "csrf" = [])))]
pub async fn update_trunk(
    State(state): State<PanelState>,
    AdminUser(admin): AdminUser,
    Path(id): Path<i64>,
    JsonBody(body): JsonBody<TrunkInput>,
) -> PanelResult<Json<TrunkView>> {
    let trunks = state.storage().trunks();
    let old = trunks.get(TrunkId(id)).await?;
    let trunk = trunks
        .update(old.id, &body.into_spec(old.spec.password))
        .await?;
    tracing::info!(by = %admin.user.username, trunk = %trunk.spec.name, "panel: trunk updated");
    state.trunk_registrar().registry_changed();
    Ok(Json(trunk.into()))
}

/// Deletes a trunk (refused with `in_use` while accounts use it).
#[utoipa::path(delete, path = "/trunks/{id}", tag = "trunks",
    params(("id" = i64, Path, description = "Trunk id")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("session" = [], "csrf" = [])))]
pub async fn delete_trunk(
    State(state): State<PanelState>,
    AdminUser(admin): AdminUser,
    Path(id): Path<i64>,
) -> PanelResult<StatusCode> {
    state.storage().trunks().delete(TrunkId(id)).await?;
    tracing::info!(by = %admin.user.username, trunk_id = id, "panel: trunk deleted");
    state.trunk_registrar().registry_changed();
    Ok(StatusCode::NO_CONTENT)
}

/// Tests a trunk now with its stored credentials: a REGISTER (removed again at once) when the
/// trunk registers on its own, else an OPTIONS to its registrar. Answers the live result; a
/// refusal by the registrar is a `200` with `ok: false` and the SIP status. Runs for at most
/// the SIP transaction timeout (64 × T1, 32 s by default). The password is never returned.
#[utoipa::path(post, path = "/trunks/{id}/test", tag = "trunks",
    params(("id" = i64, Path, description = "Trunk id")),
    responses((status = 200, body = TrunkTestResult), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 503, description = "No SIP service in this gateway", body = ErrorBody)),
    security(("session" = [], "csrf" = [])))]
pub async fn test_trunk(
    State(state): State<PanelState>,
    AdminUser(admin): AdminUser,
    Path(id): Path<i64>,
) -> PanelResult<Json<TrunkTestResult>> {
    let trunk = state.storage().trunks().get(TrunkId(id)).await?;
    let name = trunk.spec.name.clone();
    let result = state.trunk_registrar().test(trunk).await.ok_or_else(|| {
        PanelError::new(
            ErrorCode::Unavailable,
            "the SIP plugin is not running in this gateway",
        )
    })?;
    tracing::info!(by = %admin.user.username, trunk = %name, ok = result.ok, code = result.code, "panel: trunk tested");
    Ok(Json(result))
}
