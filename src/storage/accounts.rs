//! SIP accounts: browser-facing identities mapped to a trunk, with an optional voicemail box.

use sqlx::FromRow;

use super::error::{Result, StorageError};
use super::pool::{delete_by_id, with_pool, Pool};
use super::types::{AccountId, Page, Timestamp, TrunkId, UserId};
use super::{password, validate};

const ENTITY: &str = "sip account";

/// The argon2 hash columns of `sip_accounts`.
#[derive(Clone, Copy)]
enum HashColumn {
    VoicemailPin,
    WebSecret,
}

impl HashColumn {
    fn name(self) -> &'static str {
        match self {
            HashColumn::VoicemailPin => "voicemail_pin_hash",
            HashColumn::WebSecret => "web_secret_hash",
        }
    }
}

/// Shortest web secret accepted, characters.
pub const MIN_WEB_SECRET_LEN: usize = 8;
/// Longest web secret accepted, characters.
pub const MAX_WEB_SECRET_LEN: usize = 256;

/// Everything an operator sets on an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountSpec {
    /// Extension (also the mailbox number), unique, 1..=64 characters.
    pub extension: String,
    /// Display name shown to callees, up to 128 characters.
    pub display_name: String,
    /// The account's SIP URI (`sip:` or `sips:`).
    pub sip_uri: String,
    /// Trunk its calls go through.
    pub trunk_id: TrunkId,
    /// Bifrons user allowed to use it, if any.
    pub user_id: Option<UserId>,
    /// Opaque token a client may present instead of a user login, if any (unique).
    pub access_token: Option<String>,
    /// Whether unanswered calls go to voicemail.
    pub voicemail_enabled: bool,
}

impl AccountSpec {
    fn validate(&self) -> Result<()> {
        validate::name("extension", &self.extension)?;
        validate::bounded_text(
            "display name",
            &self.display_name,
            validate::MAX_DISPLAY_NAME_LEN,
        )?;
        validate::sip_uri("sip uri", &self.sip_uri)?;
        if let Some(t) = &self.access_token {
            validate::name("access token", t)?;
        }
        Ok(())
    }
}

/// A stored account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Row id.
    pub id: AccountId,
    /// The operator's settings.
    pub spec: AccountSpec,
    /// Whether a voicemail PIN is set (the PIN itself is only stored hashed).
    pub has_voicemail_pin: bool,
    /// Whether a web secret is set (browsers register for the account with it; only its
    /// argon2 hash is stored).
    pub has_web_secret: bool,
    /// When it was created.
    pub created: Timestamp,
}

#[derive(FromRow)]
struct Row {
    id: i64,
    extension: String,
    display_name: String,
    sip_uri: String,
    trunk_id: i64,
    user_id: Option<i64>,
    access_token: Option<String>,
    voicemail_enabled: bool,
    has_pin: bool,
    has_web_secret: bool,
    created_at_ms: i64,
}

impl From<Row> for Account {
    fn from(r: Row) -> Account {
        Account {
            id: AccountId(r.id),
            spec: AccountSpec {
                extension: r.extension,
                display_name: r.display_name,
                sip_uri: r.sip_uri,
                trunk_id: TrunkId(r.trunk_id),
                user_id: r.user_id.map(UserId),
                access_token: r.access_token,
                voicemail_enabled: r.voicemail_enabled,
            },
            has_voicemail_pin: r.has_pin,
            has_web_secret: r.has_web_secret,
            created: Timestamp(r.created_at_ms),
        }
    }
}

const COLUMNS: &str = "id, extension, display_name, sip_uri, trunk_id, user_id, access_token, \
    voicemail_enabled, (voicemail_pin_hash IS NOT NULL) AS has_pin, \
    (web_secret_hash IS NOT NULL) AS has_web_secret, created_at_ms";

/// Repository of SIP accounts.
pub struct Accounts<'a> {
    pool: &'a Pool,
}

impl<'a> Accounts<'a> {
    pub(crate) fn new(pool: &'a Pool) -> Self {
        Accounts { pool }
    }

    /// Creates an account. `Invalid` when a field fails validation, `AlreadyExists` when the
    /// extension or access token is taken, `NotFound` when the trunk or user does not exist.
    pub async fn create(&self, spec: &AccountSpec) -> Result<Account> {
        spec.validate()?;
        let sql = format!(
            "INSERT INTO sip_accounts (extension, display_name, sip_uri, trunk_id, user_id, access_token, \
             voicemail_enabled, created_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {COLUMNS}"
        );
        let row: Row = with_pool!(self.pool, p => {
            sqlx::query_as(&sql)
                .bind(&spec.extension)
                .bind(&spec.display_name)
                .bind(&spec.sip_uri)
                .bind(spec.trunk_id.0)
                .bind(spec.user_id.map(|u| u.0))
                .bind(&spec.access_token)
                .bind(spec.voicemail_enabled)
                .bind(Timestamp::now().0)
                .fetch_one(p)
                .await
        })
        .map_err(StorageError::classify(ENTITY))?;
        Ok(row.into())
    }

    /// The account with this id; `NotFound` when there is none.
    pub async fn get(&self, id: AccountId) -> Result<Account> {
        let sql = format!("SELECT {COLUMNS} FROM sip_accounts WHERE id = $1");
        let row: Row =
            with_pool!(self.pool, p => sqlx::query_as(&sql).bind(id.0).fetch_one(p).await)
                .map_err(StorageError::classify(ENTITY))?;
        Ok(row.into())
    }

    /// The account with this extension; `NotFound` when there is none.
    pub async fn get_by_extension(&self, extension: &str) -> Result<Account> {
        let sql = format!("SELECT {COLUMNS} FROM sip_accounts WHERE extension = $1");
        let row: Row =
            with_pool!(self.pool, p => sqlx::query_as(&sql).bind(extension).fetch_one(p).await)
                .map_err(StorageError::classify(ENTITY))?;
        Ok(row.into())
    }

    /// Accounts ordered by id.
    pub async fn list(&self, page: Page) -> Result<Vec<Account>> {
        let (limit, offset) = page.sql_bounds();
        let sql = format!("SELECT {COLUMNS} FROM sip_accounts ORDER BY id LIMIT $1 OFFSET $2");
        let rows: Vec<Row> = with_pool!(self.pool, p => {
            sqlx::query_as(&sql).bind(limit).bind(offset).fetch_all(p).await
        })
        .map_err(StorageError::classify(ENTITY))?;
        Ok(rows.into_iter().map(Account::from).collect())
    }

    /// Replaces every setting of an account (the voicemail PIN is kept). Fails like
    /// [`Accounts::create`], and with `NotFound` when the account does not exist.
    pub async fn update(&self, id: AccountId, spec: &AccountSpec) -> Result<Account> {
        spec.validate()?;
        let sql = format!(
            "UPDATE sip_accounts SET extension = $1, display_name = $2, sip_uri = $3, trunk_id = $4, \
             user_id = $5, access_token = $6, voicemail_enabled = $7 WHERE id = $8 RETURNING {COLUMNS}"
        );
        let row: Row = with_pool!(self.pool, p => {
            sqlx::query_as(&sql)
                .bind(&spec.extension)
                .bind(&spec.display_name)
                .bind(&spec.sip_uri)
                .bind(spec.trunk_id.0)
                .bind(spec.user_id.map(|u| u.0))
                .bind(&spec.access_token)
                .bind(spec.voicemail_enabled)
                .bind(id.0)
                .fetch_one(p)
                .await
        })
        .map_err(StorageError::classify(ENTITY))?;
        Ok(row.into())
    }

    /// Stores `hash` (an argon2 PHC string, or none) in `column`; `NotFound` when the account
    /// does not exist.
    async fn set_hash(
        &self,
        id: AccountId,
        column: HashColumn,
        hash: Option<String>,
    ) -> Result<()> {
        let sql = format!(
            "UPDATE sip_accounts SET {} = $1 WHERE id = $2",
            column.name()
        );
        let done = with_pool!(self.pool, p => {
            sqlx::query(&sql)
                .bind(&hash)
                .bind(id.0)
                .execute(p)
                .await
                .map(|r| r.rows_affected())
        })?;
        if done == 0 {
            return Err(StorageError::NotFound { entity: ENTITY });
        }
        Ok(())
    }

    /// Whether `candidate` matches the hash in `column` (false when none is set); `NotFound`
    /// when the account does not exist.
    async fn verify_hash(
        &self,
        id: AccountId,
        column: HashColumn,
        candidate: &str,
    ) -> Result<bool> {
        let sql = format!("SELECT {} FROM sip_accounts WHERE id = $1", column.name());
        let hash: Option<String> = with_pool!(self.pool, p => {
            sqlx::query_scalar(&sql).bind(id.0).fetch_one(p).await
        })
        .map_err(StorageError::classify(ENTITY))?;
        Ok(match hash {
            Some(h) => password::verify(candidate, &h).await,
            None => false,
        })
    }

    /// Sets (4 to 12 digits) or clears the voicemail PIN; only an argon2 hash is stored.
    /// `Invalid` for a malformed PIN, `NotFound` when the account does not exist.
    pub async fn set_voicemail_pin(&self, id: AccountId, pin: Option<&str>) -> Result<()> {
        let hash = match pin {
            Some(pin) => {
                validate::pin(pin)?;
                Some(password::hash(pin).await?)
            }
            None => None,
        };
        self.set_hash(id, HashColumn::VoicemailPin, hash).await
    }

    /// Whether `pin` opens the account's mailbox (false when no PIN is set); `NotFound` when
    /// the account does not exist.
    pub async fn verify_voicemail_pin(&self, id: AccountId, pin: &str) -> Result<bool> {
        self.verify_hash(id, HashColumn::VoicemailPin, pin).await
    }

    /// Sets (8 to 256 characters) or clears the account's web secret, the one a browser gives
    /// to register for the account through the SIP plugin; only an argon2 hash is stored.
    /// `Invalid` for a secret of the wrong length, `NotFound` when the account does not exist.
    pub async fn set_web_secret(&self, id: AccountId, secret: Option<&str>) -> Result<()> {
        let hash = match secret {
            Some(secret) => {
                let chars = secret.chars().count();
                if !(MIN_WEB_SECRET_LEN..=MAX_WEB_SECRET_LEN).contains(&chars) {
                    return Err(StorageError::Invalid {
                        field: "web secret",
                        reason: format!(
                            "must be {MIN_WEB_SECRET_LEN} to {MAX_WEB_SECRET_LEN} characters"
                        ),
                    });
                }
                Some(password::hash(secret).await?)
            }
            None => None,
        };
        self.set_hash(id, HashColumn::WebSecret, hash).await
    }

    /// Whether `secret` is the account's web secret (argon2, constant-time comparison; false
    /// when none is set); `NotFound` when the account does not exist.
    pub async fn verify_web_secret(&self, id: AccountId, secret: &str) -> Result<bool> {
        self.verify_hash(id, HashColumn::WebSecret, secret).await
    }

    /// The account of `extension` if `secret` is its web secret; `None` for a wrong secret, no
    /// secret set, or no such account. An unknown extension costs the same hash check as a
    /// known one, so the answer's timing does not tell which accounts exist.
    pub async fn authenticate_web(&self, extension: &str, secret: &str) -> Result<Option<Account>> {
        static DECOY: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
        match self.get_by_extension(extension).await {
            Ok(account) => Ok(self
                .verify_web_secret(account.id, secret)
                .await?
                .then_some(account)),
            Err(StorageError::NotFound { .. }) => {
                let decoy = DECOY
                    .get_or_try_init(|| password::hash("decoy web secret"))
                    .await?;
                let _ = password::verify(secret, decoy).await;
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Binds the account to the streaming mountpoint `mountpoint` (its id) as a listen line,
    /// or unbinds it (`None`): the gateway opens the line of a bound account by itself and
    /// answers its inbound calls with the mountpoint's audio. `Invalid` for 0 or an id above
    /// 2^63 - 1, `NotFound` when the account does not exist. Whether the mountpoint exists is
    /// the caller's check (mountpoints live in two tables, see [`super::Mountpoints`]).
    pub async fn set_listen_mountpoint(
        &self,
        id: AccountId,
        mountpoint: Option<u64>,
    ) -> Result<()> {
        let value = match mountpoint {
            None => None,
            Some(m) => Some(i64::try_from(m).ok().filter(|m| *m > 0).ok_or_else(|| {
                StorageError::Invalid {
                    field: "listen mountpoint",
                    reason: "an id from 1 to 2^63 - 1".into(),
                }
            })?),
        };
        let done = with_pool!(self.pool, p => {
            sqlx::query("UPDATE sip_accounts SET listen_mountpoint = $1 WHERE id = $2")
                .bind(value)
                .bind(id.0)
                .execute(p)
                .await
                .map(|r| r.rows_affected())
        })
        .map_err(StorageError::classify(ENTITY))?;
        if done == 0 {
            return Err(StorageError::NotFound { entity: ENTITY });
        }
        Ok(())
    }

    /// The accounts bound to a mountpoint as listen lines, by id, each with its mountpoint id.
    pub async fn listen_lines(&self) -> Result<Vec<(Account, u64)>> {
        #[derive(FromRow)]
        struct ListenRow {
            #[sqlx(flatten)]
            account: Row,
            listen_mountpoint: i64,
        }
        let sql = format!(
            "SELECT {COLUMNS}, listen_mountpoint FROM sip_accounts \
             WHERE listen_mountpoint IS NOT NULL ORDER BY id"
        );
        let rows: Vec<ListenRow> =
            with_pool!(self.pool, p => sqlx::query_as(&sql).fetch_all(p).await)
                .map_err(StorageError::classify(ENTITY))?;
        Ok(rows
            .into_iter()
            .map(|r| (r.account.into(), r.listen_mountpoint.unsigned_abs()))
            .collect())
    }

    /// Deletes an account; `NotFound` when there is none.
    pub async fn delete(&self, id: AccountId) -> Result<()> {
        delete_by_id(self.pool, "sip_accounts", id.0, ENTITY).await
    }
}
