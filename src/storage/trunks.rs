//! SIP trunks: where and how Bifrons registers and sends calls towards a PBX or provider.

use sqlx::FromRow;

use super::error::{Result, StorageError};
use super::pool::{delete_by_id, with_pool, Pool};
use super::types::{DtmfMode, Page, Secret, Timestamp, Transport, TrunkId, TrunkSrtp};
use super::validate;

const ENTITY: &str = "sip trunk";

/// Everything an operator sets on a trunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrunkSpec {
    /// Unique name, 1..=64 characters.
    pub name: String,
    /// Registrar / proxy, a `sip:` or `sips:` URI.
    pub registrar_uri: String,
    /// Transport towards the registrar.
    pub transport: Transport,
    /// User part of the From/To of REGISTER.
    pub username: Option<String>,
    /// Digest username when it differs from `username`.
    pub auth_username: Option<String>,
    /// Digest password. Stored as given because digest needs it (see the storage README).
    pub password: Option<Secret>,
    /// Digest realm, when it must be pinned.
    pub realm: Option<String>,
    /// Whether Bifrons registers to the trunk.
    pub register: bool,
    /// Requested registration lifetime in seconds (> 0).
    pub register_expiry_s: u32,
    /// Outbound proxy URI, if any.
    pub outbound_proxy: Option<String>,
    /// Codec names allowed, most preferred first.
    pub codecs: Vec<String>,
    /// How DTMF is sent.
    pub dtmf_mode: DtmfMode,
    /// Disabled trunks are kept but not used.
    pub enabled: bool,
    /// SDES-SRTP the trunk requires towards its PBX (migration 0007).
    pub srtp: TrunkSrtp,
}

impl TrunkSpec {
    /// A trunk towards `registrar_uri` with common defaults (UDP, register for 3600 s, Opus then
    /// G.711, RFC 4733 DTMF, enabled).
    pub fn new(name: impl Into<String>, registrar_uri: impl Into<String>) -> Self {
        TrunkSpec {
            name: name.into(),
            registrar_uri: registrar_uri.into(),
            transport: Transport::Udp,
            username: None,
            auth_username: None,
            password: None,
            realm: None,
            register: true,
            register_expiry_s: 3600,
            outbound_proxy: None,
            codecs: vec!["opus".into(), "PCMU".into(), "PCMA".into()],
            dtmf_mode: DtmfMode::Rfc4733,
            enabled: true,
            srtp: TrunkSrtp::Off,
        }
    }

    fn validate(&self) -> Result<()> {
        validate::name("trunk name", &self.name)?;
        validate::sip_uri("registrar uri", &self.registrar_uri)?;
        for (field, v) in [
            ("username", &self.username),
            ("auth username", &self.auth_username),
            ("realm", &self.realm),
        ] {
            if let Some(v) = v {
                validate::bounded_text(field, v, validate::MAX_TEXT_LEN)?;
            }
        }
        if let Some(p) = &self.password {
            validate::bounded_text("password", p.expose(), validate::MAX_TEXT_LEN)?;
        }
        if let Some(proxy) = &self.outbound_proxy {
            validate::sip_uri("outbound proxy", proxy)?;
        }
        if self.register_expiry_s == 0 {
            return Err(StorageError::Invalid {
                field: "register expiry",
                reason: "must be at least 1 second".into(),
            });
        }
        if self.codecs.is_empty() || self.codecs.len() > 16 {
            return Err(StorageError::Invalid {
                field: "codecs",
                reason: "1 to 16 codecs".into(),
            });
        }
        for c in &self.codecs {
            validate::codec("codecs", c)?;
        }
        Ok(())
    }
}

/// A stored trunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trunk {
    /// Row id.
    pub id: TrunkId,
    /// The operator's settings.
    pub spec: TrunkSpec,
    /// When it was created.
    pub created: Timestamp,
}

#[derive(FromRow)]
struct Row {
    id: i64,
    name: String,
    registrar_uri: String,
    transport: String,
    username: Option<String>,
    auth_username: Option<String>,
    password: Option<String>,
    realm: Option<String>,
    register: bool,
    register_expiry_s: i64,
    outbound_proxy: Option<String>,
    codecs: String,
    dtmf_mode: String,
    enabled: bool,
    created_at_ms: i64,
    srtp: String,
}

fn corrupt(e: impl ToString) -> StorageError {
    StorageError::Corrupt {
        entity: ENTITY,
        reason: e.to_string(),
    }
}

impl TryFrom<Row> for Trunk {
    type Error = StorageError;

    fn try_from(r: Row) -> Result<Trunk> {
        Ok(Trunk {
            id: TrunkId(r.id),
            spec: TrunkSpec {
                name: r.name,
                registrar_uri: r.registrar_uri,
                transport: r.transport.parse().map_err(corrupt)?,
                username: r.username,
                auth_username: r.auth_username,
                password: r.password.map(Secret::new),
                realm: r.realm,
                register: r.register,
                register_expiry_s: u32::try_from(r.register_expiry_s).map_err(corrupt)?,
                outbound_proxy: r.outbound_proxy,
                codecs: r
                    .codecs
                    .split(',')
                    .filter(|c| !c.is_empty())
                    .map(str::to_owned)
                    .collect(),
                dtmf_mode: r.dtmf_mode.parse().map_err(corrupt)?,
                enabled: r.enabled,
                srtp: r.srtp.parse().map_err(corrupt)?,
            },
            created: Timestamp(r.created_at_ms),
        })
    }
}

const COLUMNS: &str =
    "id, name, registrar_uri, transport, username, auth_username, password, realm, \
    register, register_expiry_s, outbound_proxy, codecs, dtmf_mode, enabled, created_at_ms, srtp";

/// Binds the 14 settable columns of a trunk in column order ($1..$14).
macro_rules! bind_spec {
    ($q:expr, $s:expr) => {
        $q.bind(&$s.name)
            .bind(&$s.registrar_uri)
            .bind($s.transport.as_str())
            .bind(&$s.username)
            .bind(&$s.auth_username)
            .bind($s.password.as_ref().map(Secret::expose))
            .bind(&$s.realm)
            .bind($s.register)
            .bind(i64::from($s.register_expiry_s))
            .bind(&$s.outbound_proxy)
            .bind($s.codecs.join(","))
            .bind($s.dtmf_mode.as_str())
            .bind($s.enabled)
            .bind($s.srtp.as_str())
    };
}

/// Repository of SIP trunks.
pub struct Trunks<'a> {
    pool: &'a Pool,
}

impl<'a> Trunks<'a> {
    pub(crate) fn new(pool: &'a Pool) -> Self {
        Trunks { pool }
    }

    /// Creates a trunk. `Invalid` when a field fails validation (URIs, lengths, an expiry of
    /// 0 s, no codecs or more than 16, a malformed codec name), `AlreadyExists` when the name
    /// is taken.
    pub async fn create(&self, spec: &TrunkSpec) -> Result<Trunk> {
        spec.validate()?;
        let sql = format!(
            "INSERT INTO sip_trunks (name, registrar_uri, transport, username, auth_username, password, \
             realm, register, register_expiry_s, outbound_proxy, codecs, dtmf_mode, enabled, srtp, created_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) RETURNING {COLUMNS}"
        );
        let row: Row = with_pool!(self.pool, p => {
            bind_spec!(sqlx::query_as(&sql), spec).bind(Timestamp::now().0).fetch_one(p).await
        })
        .map_err(StorageError::classify(ENTITY))?;
        row.try_into()
    }

    /// The trunk with this id; `NotFound` when there is none.
    pub async fn get(&self, id: TrunkId) -> Result<Trunk> {
        let sql = format!("SELECT {COLUMNS} FROM sip_trunks WHERE id = $1");
        let row: Row =
            with_pool!(self.pool, p => sqlx::query_as(&sql).bind(id.0).fetch_one(p).await)
                .map_err(StorageError::classify(ENTITY))?;
        row.try_into()
    }

    /// The trunk with this name; `NotFound` when there is none.
    pub async fn get_by_name(&self, name: &str) -> Result<Trunk> {
        let sql = format!("SELECT {COLUMNS} FROM sip_trunks WHERE name = $1");
        let row: Row =
            with_pool!(self.pool, p => sqlx::query_as(&sql).bind(name).fetch_one(p).await)
                .map_err(StorageError::classify(ENTITY))?;
        row.try_into()
    }

    /// Trunks ordered by id.
    pub async fn list(&self, page: Page) -> Result<Vec<Trunk>> {
        let (limit, offset) = page.sql_bounds();
        let sql = format!("SELECT {COLUMNS} FROM sip_trunks ORDER BY id LIMIT $1 OFFSET $2");
        let rows: Vec<Row> = with_pool!(self.pool, p => {
            sqlx::query_as(&sql).bind(limit).bind(offset).fetch_all(p).await
        })
        .map_err(StorageError::classify(ENTITY))?;
        rows.into_iter().map(Trunk::try_from).collect()
    }

    /// Replaces every setting of a trunk. Fails like [`Trunks::create`], and with `NotFound`
    /// when the trunk does not exist.
    pub async fn update(&self, id: TrunkId, spec: &TrunkSpec) -> Result<Trunk> {
        spec.validate()?;
        let sql = format!(
            "UPDATE sip_trunks SET name = $1, registrar_uri = $2, transport = $3, username = $4, \
             auth_username = $5, password = $6, realm = $7, register = $8, register_expiry_s = $9, \
             outbound_proxy = $10, codecs = $11, dtmf_mode = $12, enabled = $13, srtp = $14 \
             WHERE id = $15 RETURNING {COLUMNS}"
        );
        let row: Row = with_pool!(self.pool, p => {
            bind_spec!(sqlx::query_as(&sql), spec).bind(id.0).fetch_one(p).await
        })
        .map_err(StorageError::classify(ENTITY))?;
        row.try_into()
    }

    /// Deletes a trunk; refused with `InUse` while SIP accounts point at it, `NotFound` when
    /// there is none.
    pub async fn delete(&self, id: TrunkId) -> Result<()> {
        delete_by_id(self.pool, "sip_trunks", id.0, ENTITY).await
    }
}
