//! Mailbox settings of SIP accounts: enabled flag and PIN (columns of `sip_accounts`), greeting
//! file, message limits and message-waiting mode (table `mailboxes`, migration 0011). An account
//! without a `mailboxes` row has the defaults of [`MailboxSettings::default`].

use std::fmt;
use std::str::FromStr;

use sqlx::FromRow;

use super::accounts::Accounts;
use super::error::{Result, StorageError};
use super::pool::{with_pool, Pool};
use super::types::AccountId;
use super::validate;

const ENTITY: &str = "sip account";

/// Most messages a mailbox may be set to keep.
pub const MAX_MESSAGES_LIMIT: u32 = 100_000;
/// Longest message a mailbox may be set to take, seconds (as `[voicemail] max_seconds`).
pub const MAX_LENGTH_LIMIT_S: u32 = 3_600;

/// How the account's SIP side hears about waiting messages (RFC 3842 `message-summary`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MwiMode {
    /// No SIP NOTIFY (browser handles still get the plugin's `voicemail` event).
    #[default]
    Off,
    /// NOTIFY sent without a subscription (RFC 3842 §3.1, for PBXs configured so).
    Unsolicited,
    /// NOTIFY only within a `SUBSCRIBE` dialog of event package `message-summary`.
    Subscribe,
}

impl MwiMode {
    /// The value as stored and shown: `off`, `unsolicited`, `subscribe`.
    pub fn as_str(self) -> &'static str {
        match self {
            MwiMode::Off => "off",
            MwiMode::Unsolicited => "unsolicited",
            MwiMode::Subscribe => "subscribe",
        }
    }
}

impl fmt::Display for MwiMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl FromStr for MwiMode {
    type Err = StorageError;

    /// Parses `off`, `unsolicited` or `subscribe`; `Invalid { field: "message waiting" }`
    /// otherwise.
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "off" => Ok(MwiMode::Off),
            "unsolicited" => Ok(MwiMode::Unsolicited),
            "subscribe" => Ok(MwiMode::Subscribe),
            other => Err(StorageError::Invalid {
                field: "message waiting",
                reason: format!("unknown value {other:?} (off, unsolicited, subscribe)"),
            }),
        }
    }
}

/// What an operator sets on a mailbox.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MailboxSettings {
    /// Whether unanswered calls go to the mailbox (`sip_accounts.voicemail_enabled`).
    pub enabled: bool,
    /// Uploaded greeting, a path relative to the recordings directory (Ogg/Opus or WAV);
    /// `None`: the generated tone.
    pub greeting_file: Option<String>,
    /// Messages kept at most (1..=[`MAX_MESSAGES_LIMIT`]); a full mailbox takes no new message.
    /// `None`: no limit.
    pub max_messages: Option<u32>,
    /// Longest message, seconds (1..=[`MAX_LENGTH_LIMIT_S`]); `None`: `[voicemail] max_seconds`.
    pub max_length_s: Option<u32>,
    /// SIP message waiting.
    pub mwi: MwiMode,
}

impl MailboxSettings {
    fn validate(&self) -> Result<()> {
        if let Some(g) = &self.greeting_file {
            validate::relative_path("greeting file", g)?;
        }
        let check = |field: &'static str, v: Option<u32>, max: u32| match v {
            Some(n) if !(1..=max).contains(&n) => Err(StorageError::Invalid {
                field,
                reason: format!("1 to {max}"),
            }),
            _ => Ok(()),
        };
        check("max messages", self.max_messages, MAX_MESSAGES_LIMIT)?;
        check("max length", self.max_length_s, MAX_LENGTH_LIMIT_S)
    }
}

/// The mailbox of one account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    /// The account.
    pub account_id: AccountId,
    /// Its extension: the mailbox number, and the `owner` of its `voicemail` recordings.
    pub extension: String,
    /// The settings.
    pub settings: MailboxSettings,
    /// Whether a PIN is set (only its argon2 hash is stored; it is never returned).
    pub has_pin: bool,
}

#[derive(FromRow)]
struct Row {
    id: i64,
    extension: String,
    voicemail_enabled: bool,
    has_pin: bool,
    greeting_file: Option<String>,
    max_messages: Option<i64>,
    max_length_s: Option<i64>,
    mwi_mode: Option<String>,
}

fn corrupt(e: impl ToString) -> StorageError {
    StorageError::Corrupt {
        entity: "mailbox",
        reason: e.to_string(),
    }
}

impl TryFrom<Row> for Mailbox {
    type Error = StorageError;

    fn try_from(r: Row) -> Result<Mailbox> {
        let count = |v: Option<i64>| v.map(u32::try_from).transpose().map_err(corrupt);
        Ok(Mailbox {
            account_id: AccountId(r.id),
            extension: r.extension,
            settings: MailboxSettings {
                enabled: r.voicemail_enabled,
                greeting_file: r.greeting_file,
                max_messages: count(r.max_messages)?,
                max_length_s: count(r.max_length_s)?,
                mwi: match r.mwi_mode {
                    Some(m) => m.parse().map_err(corrupt)?,
                    None => MwiMode::Off,
                },
            },
            has_pin: r.has_pin,
        })
    }
}

const SELECT: &str = "SELECT a.id, a.extension, a.voicemail_enabled, \
    (a.voicemail_pin_hash IS NOT NULL) AS has_pin, m.greeting_file, m.max_messages, \
    m.max_length_s, m.mwi_mode FROM sip_accounts a LEFT JOIN mailboxes m ON m.account_id = a.id";

const UPSERT: &str = "INSERT INTO mailboxes (account_id, greeting_file, max_messages, \
    max_length_s, mwi_mode) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (account_id) DO UPDATE SET \
    greeting_file = excluded.greeting_file, max_messages = excluded.max_messages, \
    max_length_s = excluded.max_length_s, mwi_mode = excluded.mwi_mode";

/// Repository of mailbox settings.
pub struct Mailboxes<'a> {
    pool: &'a Pool,
}

impl<'a> Mailboxes<'a> {
    pub(crate) fn new(pool: &'a Pool) -> Self {
        Mailboxes { pool }
    }

    /// The mailbox of account `id` (defaults when never set); `NotFound` for no such account.
    pub async fn get(&self, id: AccountId) -> Result<Mailbox> {
        let sql = format!("{SELECT} WHERE a.id = $1");
        let row: Row =
            with_pool!(self.pool, p => sqlx::query_as(&sql).bind(id.0).fetch_one(p).await)
                .map_err(StorageError::classify(ENTITY))?;
        row.try_into()
    }

    /// The mailbox of the account with this extension; `NotFound` when there is none.
    pub async fn get_by_extension(&self, extension: &str) -> Result<Mailbox> {
        let sql = format!("{SELECT} WHERE a.extension = $1");
        let row: Row =
            with_pool!(self.pool, p => sqlx::query_as(&sql).bind(extension).fetch_one(p).await)
                .map_err(StorageError::classify(ENTITY))?;
        row.try_into()
    }

    /// Replaces every setting of account `id`'s mailbox (the PIN is kept), in one transaction.
    /// `Invalid` for an out-of-range limit or a greeting path escaping the recordings
    /// directory, `NotFound` for no such account.
    pub async fn set(&self, id: AccountId, settings: &MailboxSettings) -> Result<Mailbox> {
        settings.validate()?;
        let max_messages = settings.max_messages.map(i64::from);
        let max_length = settings.max_length_s.map(i64::from);
        with_pool!(self.pool, p => {
            let mut tx = p.begin().await?;
            let done = sqlx::query("UPDATE sip_accounts SET voicemail_enabled = $1 WHERE id = $2")
                .bind(settings.enabled)
                .bind(id.0)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if done == 0 {
                return Err(StorageError::NotFound { entity: ENTITY });
            }
            sqlx::query(UPSERT)
                .bind(id.0)
                .bind(&settings.greeting_file)
                .bind(max_messages)
                .bind(max_length)
                .bind(settings.mwi.as_str())
                .execute(&mut *tx)
                .await
                .map_err(StorageError::classify(ENTITY))?;
            tx.commit().await?;
        });
        self.get(id).await
    }

    /// Sets (4 to 12 digits) or clears the mailbox PIN; only an argon2 hash is stored.
    /// `Invalid` for a malformed PIN, `NotFound` for no such account.
    pub async fn set_pin(&self, id: AccountId, pin: Option<&str>) -> Result<()> {
        Accounts::new(self.pool).set_voicemail_pin(id, pin).await
    }

    /// Whether `pin` opens the mailbox (argon2, constant time; false when none is set).
    pub async fn verify_pin(&self, id: AccountId, pin: &str) -> Result<bool> {
        Accounts::new(self.pool).verify_voicemail_pin(id, pin).await
    }
}
