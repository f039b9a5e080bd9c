//! `/accounts`: browser-facing SIP accounts. The access token is a credential: it is shown
//! once when (re)generated and afterwards only `has_access_token`; the voicemail PIN is
//! write-only (argon2 in the registry).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::{AdminUser, JsonBody, Viewer};
use super::error::{ErrorBody, PanelError, PanelResult};
use super::session::random_token;
use super::PanelState;
use crate::audio_file;
use crate::storage::{
    Account, AccountId, AccountSpec, Mailbox, MailboxSettings, MwiMode, Page, TrunkId, UserId,
};

/// An account as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountView {
    /// Row id.
    pub id: i64,
    /// Extension (also the mailbox number).
    pub extension: String,
    /// Display name.
    pub display_name: String,
    /// SIP URI.
    pub sip_uri: String,
    /// Trunk its calls use.
    pub trunk_id: i64,
    /// Panel user allowed to use it.
    pub user_id: Option<i64>,
    /// Whether an access token is set (the token is shown only when generated).
    pub has_access_token: bool,
    /// Whether unanswered calls go to voicemail.
    pub voicemail_enabled: bool,
    /// Whether a voicemail PIN is set.
    pub has_voicemail_pin: bool,
    /// Creation time, Unix ms.
    pub created_ms: i64,
}

impl From<Account> for AccountView {
    fn from(a: Account) -> Self {
        AccountView {
            id: a.id.0,
            extension: a.spec.extension,
            display_name: a.spec.display_name,
            sip_uri: a.spec.sip_uri,
            trunk_id: a.spec.trunk_id.0,
            user_id: a.spec.user_id.map(|u| u.0),
            has_access_token: a.spec.access_token.is_some(),
            voicemail_enabled: a.spec.voicemail_enabled,
            has_voicemail_pin: a.has_voicemail_pin,
            created_ms: a.created.0,
        }
    }
}

/// `POST /accounts` and `PUT /accounts/{id}` body (the access token is kept on `PUT`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountInput {
    /// Extension, 1..=64 characters, unique.
    pub extension: String,
    /// Display name, up to 128 characters (default: the extension).
    pub display_name: Option<String>,
    /// SIP URI (`sip:` or `sips:`).
    pub sip_uri: String,
    /// Trunk id.
    pub trunk_id: i64,
    /// Panel user allowed to use the account.
    pub user_id: Option<i64>,
    /// Whether unanswered calls go to voicemail (default `false`).
    pub voicemail_enabled: Option<bool>,
}

impl AccountInput {
    fn into_spec(self, access_token: Option<String>) -> AccountSpec {
        let extension = self.extension.trim().to_owned();
        AccountSpec {
            display_name: self
                .display_name
                .map(|d| d.trim().to_owned())
                .filter(|d| !d.is_empty())
                .unwrap_or_else(|| extension.clone()),
            extension,
            sip_uri: self.sip_uri.trim().to_owned(),
            trunk_id: TrunkId(self.trunk_id),
            user_id: self.user_id.map(UserId),
            access_token,
            voicemail_enabled: self.voicemail_enabled.unwrap_or(false),
        }
    }
}

/// A freshly generated access token: shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccessTokenCreated {
    /// The account.
    pub account: AccountView,
    /// The token (64 hex characters); it cannot be read back later.
    pub access_token: String,
}

/// `PUT /accounts/{id}/voicemail-pin` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VoicemailPin {
    /// 4 to 12 digits, or `null` to remove the PIN.
    pub pin: Option<String>,
}

/// Every account.
#[utoipa::path(get, path = "/accounts", tag = "accounts",
    responses((status = 200, body = [AccountView]), (status = 401, body = ErrorBody)),
    security(("session" = [])))]
pub async fn list_accounts(
    State(state): State<PanelState>,
    _viewer: Viewer,
) -> PanelResult<Json<Vec<AccountView>>> {
    let accounts = state
        .storage()
        .accounts()
        .list(Page::first(Page::MAX_LIMIT))
        .await?;
    Ok(Json(accounts.into_iter().map(AccountView::from).collect()))
}

/// One account.
#[utoipa::path(get, path = "/accounts/{id}", tag = "accounts",
    params(("id" = i64, Path, description = "Account id")),
    responses((status = 200, body = AccountView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("session" = [])))]
pub async fn get_account(
    State(state): State<PanelState>,
    _viewer: Viewer,
    Path(id): Path<i64>,
) -> PanelResult<Json<AccountView>> {
    Ok(Json(
        state.storage().accounts().get(AccountId(id)).await?.into(),
    ))
}

/// Creates an account.
#[utoipa::path(post, path = "/accounts", tag = "accounts", request_body = AccountInput,
    responses((status = 201, body = AccountView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, description = "No such trunk or user", body = ErrorBody),
        (status = 409, body = ErrorBody)),
    security(("session" = [], "csrf" = [])))]
pub async fn create_account(
    State(state): State<PanelState>,
    AdminUser(admin): AdminUser,
    JsonBody(body): JsonBody<AccountInput>,
) -> PanelResult<(StatusCode, Json<AccountView>)> {
    let account = state
        .storage()
        .accounts()
        .create(&body.into_spec(None))
        .await?;
    tracing::info!(by = %admin.user.username, extension = %account.spec.extension, "panel: account created");
    Ok((StatusCode::CREATED, Json(account.into())))
}

/// Replaces an account's settings (its access token and PIN stay).
#[utoipa::path(put, path = "/accounts/{id}", tag = "accounts", request_body = AccountInput,
    params(("id" = i64, Path, description = "Account id")),
    responses((status = 200, body = AccountView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("session" = [], "csrf" = [])))]
pub async fn update_account(
    State(state): State<PanelState>,
    AdminUser(admin): AdminUser,
    Path(id): Path<i64>,
    JsonBody(body): JsonBody<AccountInput>,
) -> PanelResult<Json<AccountView>> {
    let accounts = state.storage().accounts();
    let old = accounts.get(AccountId(id)).await?;
    let account = accounts
        .update(old.id, &body.into_spec(old.spec.access_token))
        .await?;
    tracing::info!(by = %admin.user.username, extension = %account.spec.extension, "panel: account updated");
    Ok(Json(account.into()))
}

/// Deletes an account.
#[utoipa::path(delete, path = "/accounts/{id}", tag = "accounts",
    params(("id" = i64, Path, description = "Account id")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("session" = [], "csrf" = [])))]
pub async fn delete_account(
    State(state): State<PanelState>,
    AdminUser(admin): AdminUser,
    Path(id): Path<i64>,
) -> PanelResult<StatusCode> {
    state.storage().accounts().delete(AccountId(id)).await?;
    tracing::info!(by = %admin.user.username, account_id = id, "panel: account deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// Generates a new access token (replacing any old one) and shows it once.
#[utoipa::path(post, path = "/accounts/{id}/access-token", tag = "accounts",
    params(("id" = i64, Path, description = "Account id")),
    responses((status = 200, body = AccessTokenCreated), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("session" = [], "csrf" = [])))]
pub async fn reset_access_token(
    State(state): State<PanelState>,
    AdminUser(admin): AdminUser,
    Path(id): Path<i64>,
) -> PanelResult<Json<AccessTokenCreated>> {
    let accounts = state.storage().accounts();
    let mut spec = accounts.get(AccountId(id)).await?.spec;
    let token = random_token();
    spec.access_token = Some(token.clone());
    let account = accounts.update(AccountId(id), &spec).await?;
    tracing::info!(by = %admin.user.username, extension = %account.spec.extension, "panel: access token reset");
    Ok(Json(AccessTokenCreated {
        account: account.into(),
        access_token: token,
    }))
}

/// Sets or removes the voicemail PIN.
#[utoipa::path(put, path = "/accounts/{id}/voicemail-pin", tag = "accounts", request_body = VoicemailPin,
    params(("id" = i64, Path, description = "Account id")),
    responses((status = 200, body = AccountView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("session" = [], "csrf" = [])))]
pub async fn set_voicemail_pin(
    State(state): State<PanelState>,
    AdminUser(admin): AdminUser,
    Path(id): Path<i64>,
    JsonBody(body): JsonBody<VoicemailPin>,
) -> PanelResult<Json<AccountView>> {
    let accounts = state.storage().accounts();
    accounts
        .set_voicemail_pin(AccountId(id), body.pin.as_deref())
        .await?;
    let account = accounts.get(AccountId(id)).await?;
    tracing::info!(by = %admin.user.username, extension = %account.spec.extension,
        pin_set = account.has_voicemail_pin, "panel: voicemail PIN changed");
    Ok(Json(account.into()))
}

/// Folder of uploaded greetings, relative to the recordings directory.
pub const GREETINGS_DIR: &str = "voicemail/greetings";

/// An account's mailbox as the API shows it (the PIN is write-only: only `has_pin`).
#[derive(Debug, Serialize, ToSchema)]
pub struct MailboxView {
    /// Account id.
    pub account_id: i64,
    /// Extension: the mailbox number.
    pub extension: String,
    /// Whether unanswered calls go to the mailbox.
    pub enabled: bool,
    /// Uploaded greeting file, relative to the recordings directory; `null`: the generated
    /// tone.
    pub greeting_file: Option<String>,
    /// Messages kept at most; `null`: no limit.
    pub max_messages: Option<u32>,
    /// Longest message, seconds; `null`: `[voicemail] max_seconds`.
    pub max_length_s: Option<u32>,
    /// SIP message waiting (RFC 3842): `off`, `unsolicited` or `subscribe`.
    pub mwi: String,
    /// Whether a PIN is set.
    pub has_pin: bool,
}

impl From<Mailbox> for MailboxView {
    fn from(m: Mailbox) -> Self {
        MailboxView {
            account_id: m.account_id.0,
            extension: m.extension,
            enabled: m.settings.enabled,
            greeting_file: m.settings.greeting_file,
            max_messages: m.settings.max_messages,
            max_length_s: m.settings.max_length_s,
            mwi: m.settings.mwi.to_string(),
            has_pin: m.has_pin,
        }
    }
}

/// `PUT /accounts/{id}/mailbox` body: the settings to replace (the greeting is uploaded
/// separately and kept). `pin`: absent keeps it, `null` removes it, 4 to 12 digits set it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MailboxInput {
    /// Whether unanswered calls go to the mailbox.
    pub enabled: bool,
    /// Messages kept at most (1 to 100000), `null` for no limit.
    pub max_messages: Option<u32>,
    /// Longest message, seconds (1 to 3600), `null` for `[voicemail] max_seconds`.
    pub max_length_s: Option<u32>,
    /// `off` (default), `unsolicited` or `subscribe`.
    pub mwi: Option<String>,
    /// New PIN (4 to 12 digits), or `null` to remove it; absent keeps it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub pin: Option<Option<String>>,
}

/// Tells an absent field (`None`) from an explicit `null` (`Some(None)`).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// An account's mailbox settings.
#[utoipa::path(get, path = "/accounts/{id}/mailbox", tag = "accounts",
    params(("id" = i64, Path, description = "Account id")),
    responses((status = 200, body = MailboxView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("session" = [])))]
pub async fn get_mailbox(
    State(state): State<PanelState>,
    _viewer: Viewer,
    Path(id): Path<i64>,
) -> PanelResult<Json<MailboxView>> {
    Ok(Json(
        state.storage().mailboxes().get(AccountId(id)).await?.into(),
    ))
}

/// Replaces an account's mailbox settings (the greeting stays; the PIN as `pin` says).
#[utoipa::path(put, path = "/accounts/{id}/mailbox", tag = "accounts", request_body = MailboxInput,
    params(("id" = i64, Path, description = "Account id")),
    responses((status = 200, body = MailboxView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("session" = [], "csrf" = [])))]
pub async fn set_mailbox(
    State(state): State<PanelState>,
    AdminUser(admin): AdminUser,
    Path(id): Path<i64>,
    JsonBody(body): JsonBody<MailboxInput>,
) -> PanelResult<Json<MailboxView>> {
    let boxes = state.storage().mailboxes();
    let old = boxes.get(AccountId(id)).await?;
    let mwi: MwiMode = match &body.mwi {
        Some(m) => m.parse()?,
        None => MwiMode::Off,
    };
    let settings = MailboxSettings {
        enabled: body.enabled,
        greeting_file: old.settings.greeting_file,
        max_messages: body.max_messages,
        max_length_s: body.max_length_s,
        mwi,
    };
    // The PIN is checked before anything is written.
    if let Some(Some(pin)) = &body.pin {
        crate::storage::validate::pin(pin)?;
    }
    boxes.set(old.account_id, &settings).await?;
    if let Some(pin) = &body.pin {
        boxes.set_pin(old.account_id, pin.as_deref()).await?;
    }
    let mailbox = boxes.get(old.account_id).await?;
    tracing::info!(by = %admin.user.username, extension = %mailbox.extension,
        enabled = settings.enabled, pin_changed = body.pin.is_some(), "panel: mailbox updated");
    Ok(Json(mailbox.into()))
}

/// Uploads the mailbox greeting: the request body is an Ogg Opus or 16-bit PCM WAV file (up
/// to 2 MiB; 60 s are played at most). It is decoded once to check it, stored under
/// `voicemail/greetings/` in the recordings directory, and replaces any previous one.
#[utoipa::path(put, path = "/accounts/{id}/mailbox/greeting", tag = "accounts",
    request_body(content = Vec<u8>, content_type = "audio/ogg", description = "Ogg Opus or WAV (audio/wav) file"),
    params(("id" = i64, Path, description = "Account id")),
    responses((status = 200, body = MailboxView), (status = 400, description = "Not a usable Ogg Opus or WAV file", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 413, description = "Larger than 2 MiB")),
    security(("session" = [], "csrf" = [])))]
pub async fn upload_greeting(
    State(state): State<PanelState>,
    AdminUser(admin): AdminUser,
    Path(id): Path<i64>,
    body: axum::body::Bytes,
) -> PanelResult<Json<MailboxView>> {
    let boxes = state.storage().mailboxes();
    let old = boxes.get(AccountId(id)).await?;
    let data = body.clone();
    let checked = tokio::task::spawn_blocking(move || audio_file::greeting_pcm_8k(&data))
        .await
        .map_err(|e| PanelError::internal("checking a greeting", e))?;
    if let Err(e) = checked {
        return Err(PanelError::invalid("greeting", e.to_string()));
    }
    let ext = if body.starts_with(b"OggS") {
        "ogg"
    } else {
        "wav"
    };
    let rel = format!(
        "{GREETINGS_DIR}/{}-{:016x}.{ext}",
        old.extension,
        rand::random::<u64>()
    );
    let full = state.recordings_dir().join(&rel);
    if let Some(dir) = full.parent() {
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|e| PanelError::internal("creating the greetings folder", e))?;
    }
    tokio::fs::write(&full, &body)
        .await
        .map_err(|e| PanelError::internal("writing a greeting", e))?;
    let mut settings = old.settings.clone();
    settings.greeting_file = Some(rel);
    let mailbox = boxes.set(old.account_id, &settings).await?;
    remove_greeting(&state, old.settings.greeting_file.as_deref()).await;
    tracing::info!(by = %admin.user.username, extension = %mailbox.extension, bytes = body.len(),
        "panel: mailbox greeting uploaded");
    Ok(Json(mailbox.into()))
}

/// Back to the generated greeting tone; the uploaded file is removed.
#[utoipa::path(delete, path = "/accounts/{id}/mailbox/greeting", tag = "accounts",
    params(("id" = i64, Path, description = "Account id")),
    responses((status = 200, body = MailboxView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)),
    security(("session" = [], "csrf" = [])))]
pub async fn delete_greeting(
    State(state): State<PanelState>,
    AdminUser(admin): AdminUser,
    Path(id): Path<i64>,
) -> PanelResult<Json<MailboxView>> {
    let boxes = state.storage().mailboxes();
    let old = boxes.get(AccountId(id)).await?;
    let mut settings = old.settings.clone();
    settings.greeting_file = None;
    let mailbox = boxes.set(old.account_id, &settings).await?;
    remove_greeting(&state, old.settings.greeting_file.as_deref()).await;
    tracing::info!(by = %admin.user.username, extension = %mailbox.extension, "panel: mailbox greeting removed");
    Ok(Json(mailbox.into()))
}

/// Removes a replaced greeting file (only one inside the greetings folder; failures logged).
async fn remove_greeting(state: &PanelState, rel: Option<&str>) {
    let Some(rel) = rel.filter(|r| r.starts_with(GREETINGS_DIR)) else {
        return;
    };
    if let Some(path) = crate::storage::message_file(state.recordings_dir(), rel) {
        if let Err(e) = tokio::fs::remove_file(&path).await {
            tracing::warn!(file = %rel, error = %e, "old greeting not removed");
        }
    }
}
