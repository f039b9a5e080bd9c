//! Recordings: voicemail messages, room and stream recordings. Files live on disk under the
//! recordings directory; a row points at one by relative path.

use sqlx::FromRow;

use super::error::{Result, StorageError};
use super::pool::{with_pool, Pool};
use super::types::{Page, RecordingId, RecordingKind, Timestamp};
use super::validate;

const ENTITY: &str = "recording";

/// What it takes to register a recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRecording {
    /// Where it came from.
    pub kind: RecordingKind,
    /// Owning user, room or mailbox (extension), 1..=64 characters.
    pub owner: String,
    /// Caller id (voicemail) or publisher, if known.
    pub caller: Option<String>,
    /// File path relative to the recordings directory; unique.
    pub file_path: String,
    /// Codec of the file, e.g. `opus`.
    pub codec: String,
    /// Length in milliseconds.
    pub duration_ms: u64,
    /// File size in bytes.
    pub size_bytes: u64,
    /// When the recording was made.
    pub created: Timestamp,
}

impl NewRecording {
    fn validate(&self) -> Result<()> {
        validate::name("owner", &self.owner)?;
        if let Some(c) = &self.caller {
            validate::bounded_text("caller", c, validate::MAX_TEXT_LEN)?;
        }
        validate::relative_path("file path", &self.file_path)?;
        validate::codec("codec", &self.codec)?;
        Ok(())
    }
}

/// A stored recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recording {
    /// Row id.
    pub id: RecordingId,
    /// What was registered.
    pub meta: NewRecording,
    /// Whether the owner has listened to it (voicemail's "new message" flag).
    pub heard: bool,
    /// Who was called, for a call recording (see [`Recordings::set_parties`]).
    pub callee: Option<String>,
}

/// Which recordings a list or count covers; `None` fields match everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordingFilter {
    /// Only this kind.
    pub kind: Option<RecordingKind>,
    /// Only this owner or mailbox.
    pub owner: Option<String>,
    /// Only heard (`Some(true)`) or unheard (`Some(false)`) ones.
    pub heard: Option<bool>,
}

#[derive(FromRow)]
struct Row {
    id: i64,
    kind: String,
    owner: String,
    caller: Option<String>,
    file_path: String,
    codec: String,
    duration_ms: i64,
    size_bytes: i64,
    created_at_ms: i64,
    heard: bool,
    callee: Option<String>,
}

fn corrupt(e: impl ToString) -> StorageError {
    StorageError::Corrupt {
        entity: ENTITY,
        reason: e.to_string(),
    }
}

impl TryFrom<Row> for Recording {
    type Error = StorageError;

    fn try_from(r: Row) -> Result<Recording> {
        Ok(Recording {
            id: RecordingId(r.id),
            meta: NewRecording {
                kind: r.kind.parse().map_err(corrupt)?,
                owner: r.owner,
                caller: r.caller,
                file_path: r.file_path,
                codec: r.codec,
                duration_ms: u64::try_from(r.duration_ms).map_err(corrupt)?,
                size_bytes: u64::try_from(r.size_bytes).map_err(corrupt)?,
                created: Timestamp(r.created_at_ms),
            },
            heard: r.heard,
            callee: r.callee,
        })
    }
}

const COLUMNS: &str = "id, kind, owner, caller, file_path, codec, duration_ms, size_bytes, \
    created_at_ms, heard, callee";

const INSERT: &str = "INSERT INTO recordings (kind, owner, caller, file_path, codec, duration_ms, \
    size_bytes, created_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";

/// A half-open range of creation times, `from <= created < to`; `None` bounds are open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CreatedRange {
    /// Earliest creation time included.
    pub from: Option<Timestamp>,
    /// First creation time excluded.
    pub to: Option<Timestamp>,
}

impl RecordingFilter {
    /// `WHERE` clause naming only the filters that are set, with placeholders `$1..`: an
    /// always-present `($1 IS NULL OR col = $1)` form would stop both engines from using the
    /// `(owner, id)` index. At most eight statement texts exist, so prepared-statement caching
    /// still works.
    fn where_clause(&self) -> (String, usize) {
        self.where_clause_in(CreatedRange::default())
    }

    /// [`RecordingFilter::where_clause`] plus the set bounds of `range` (bound after the
    /// filter's own values, `from` before `to`).
    fn where_clause_in(&self, range: CreatedRange) -> (String, usize) {
        let mut clauses = Vec::new();
        for (set, column, op) in [
            (self.kind.is_some(), "kind", "="),
            (self.owner.is_some(), "owner", "="),
            (self.heard.is_some(), "heard", "="),
            (range.from.is_some(), "created_at_ms", ">="),
            (range.to.is_some(), "created_at_ms", "<"),
        ] {
            if set {
                clauses.push(format!("{column} {op} ${}", clauses.len() + 1));
            }
        }
        let n = clauses.len();
        if clauses.is_empty() {
            (String::new(), 0)
        } else {
            (format!("WHERE {}", clauses.join(" AND ")), n)
        }
    }
}

/// Binds the set bounds of a [`CreatedRange`] after [`bind_filter!`]'s values.
macro_rules! bind_range {
    ($q:expr, $r:expr) => {{
        let mut q = $q;
        if let Some(from) = $r.from {
            q = q.bind(from.0);
        }
        if let Some(to) = $r.to {
            q = q.bind(to.0);
        }
        q
    }};
}

/// Binds the set fields of a [`RecordingFilter`] in [`RecordingFilter::where_clause`] order.
macro_rules! bind_filter {
    ($q:expr, $f:expr) => {{
        let mut q = $q;
        if let Some(kind) = $f.kind {
            q = q.bind(kind.as_str());
        }
        if let Some(owner) = &$f.owner {
            q = q.bind(owner);
        }
        if let Some(heard) = $f.heard {
            q = q.bind(heard);
        }
        q
    }};
}

fn to_i64(field: &'static str, v: u64) -> Result<i64> {
    i64::try_from(v).map_err(|_| StorageError::Invalid {
        field,
        reason: "too large".into(),
    })
}

/// Binds the 8 columns of a new recording in `INSERT` order.
macro_rules! bind_new {
    ($q:expr, $r:expr, $dur:expr, $size:expr) => {
        $q.bind($r.kind.as_str())
            .bind(&$r.owner)
            .bind(&$r.caller)
            .bind(&$r.file_path)
            .bind(&$r.codec)
            .bind($dur)
            .bind($size)
            .bind($r.created.0)
    };
}

/// Rows per multi-row `INSERT` in [`Recordings::create_batch`]: 8 binds per row stays far below
/// SQLite's 32766 and PostgreSQL's 65535 bind limits.
pub const BATCH_CHUNK: usize = 200;

/// Validates and inserts the rows of `$items` in chunks inside one transaction on pool `$p` of
/// database type `$db`; evaluates to the number of rows.
macro_rules! insert_chunks {
    ($db:ty, $p:expr, $items:expr) => {{
        let mut tx = $p.begin().await?;
        let mut total = 0u64;
        let mut chunk: Vec<(NewRecording, i64, i64)> = Vec::with_capacity(BATCH_CHUNK);
        loop {
            chunk.clear();
            for new in $items.by_ref().take(BATCH_CHUNK) {
                new.validate()?;
                let dur = to_i64("duration", new.duration_ms)?;
                let size = to_i64("size", new.size_bytes)?;
                chunk.push((new, dur, size));
            }
            if chunk.is_empty() {
                break;
            }
            let mut qb = sqlx::QueryBuilder::<$db>::new(
                "INSERT INTO recordings (kind, owner, caller, file_path, codec, duration_ms, \
                 size_bytes, created_at_ms) ",
            );
            qb.push_values(chunk.iter(), |mut b, (r, dur, size)| {
                b.push_bind(r.kind.as_str())
                    .push_bind(r.owner.as_str())
                    .push_bind(r.caller.as_deref())
                    .push_bind(r.file_path.as_str())
                    .push_bind(r.codec.as_str())
                    .push_bind(*dur)
                    .push_bind(*size)
                    .push_bind(r.created.0);
            });
            qb.build()
                .execute(&mut *tx)
                .await
                .map_err(StorageError::classify(ENTITY))?;
            total += chunk.len() as u64;
        }
        tx.commit().await?;
        total
    }};
}

/// Repository of recordings.
pub struct Recordings<'a> {
    pool: &'a Pool,
}

impl<'a> Recordings<'a> {
    pub(crate) fn new(pool: &'a Pool) -> Self {
        Recordings { pool }
    }

    /// Registers a recording.
    pub async fn create(&self, new: &NewRecording) -> Result<Recording> {
        new.validate()?;
        let dur = to_i64("duration", new.duration_ms)?;
        let size = to_i64("size", new.size_bytes)?;
        let sql = format!("{INSERT} RETURNING {COLUMNS}");
        let row: Row = with_pool!(self.pool, p => {
            bind_new!(sqlx::query_as(&sql), new, dur, size).fetch_one(p).await
        })
        .map_err(StorageError::classify(ENTITY))?;
        row.try_into()
    }

    /// Registers many recordings in one transaction (an import or a directory rescan): either
    /// all rows are written or none. Returns how many were inserted.
    ///
    /// Rows go out as multi-row `INSERT`s of `BATCH_CHUNK` (200) rows, which saves a round trip
    /// per row (most of the cost on PostgreSQL). Items are validated as they are consumed; the
    /// first invalid one rolls everything back.
    pub async fn create_batch<I>(&self, items: I) -> Result<u64>
    where
        I: IntoIterator<Item = NewRecording>,
    {
        let mut items = items.into_iter();
        let n = match self.pool {
            Pool::Sqlite(p) => insert_chunks!(sqlx::Sqlite, p, items),
            Pool::Postgres(p) => insert_chunks!(sqlx::Postgres, p, items),
        };
        Ok(n)
    }

    /// The recording with this id.
    pub async fn get(&self, id: RecordingId) -> Result<Recording> {
        let sql = format!("SELECT {COLUMNS} FROM recordings WHERE id = $1");
        let row: Row =
            with_pool!(self.pool, p => sqlx::query_as(&sql).bind(id.0).fetch_one(p).await)
                .map_err(StorageError::classify(ENTITY))?;
        row.try_into()
    }

    /// Recordings matching `filter`, newest first.
    pub async fn list(&self, filter: &RecordingFilter, page: Page) -> Result<Vec<Recording>> {
        let (limit, offset) = page.sql_bounds();
        let (clause, n) = filter.where_clause();
        let sql = format!(
            "SELECT {COLUMNS} FROM recordings {clause} ORDER BY id DESC LIMIT ${} OFFSET ${}",
            n + 1,
            n + 2
        );
        let rows: Vec<Row> = with_pool!(self.pool, p => {
            bind_filter!(sqlx::query_as(&sql), filter)
                .bind(limit)
                .bind(offset)
                .fetch_all(p)
                .await
        })
        .map_err(StorageError::classify(ENTITY))?;
        rows.into_iter().map(Recording::try_from).collect()
    }

    /// Number of recordings matching `filter` (e.g. unheard voicemail of a mailbox).
    pub async fn count(&self, filter: &RecordingFilter) -> Result<i64> {
        let (clause, _) = filter.where_clause();
        let sql = format!("SELECT count(*) FROM recordings {clause}");
        let n: i64 = with_pool!(self.pool, p => {
            bind_filter!(sqlx::query_scalar(&sql), filter)
                .fetch_one(p)
                .await
        })?;
        Ok(n)
    }

    /// Recordings matching `filter` and created within `range`, newest first, and how many
    /// match in all (for paging): what the admin panel's recordings page lists.
    pub async fn search(
        &self,
        filter: &RecordingFilter,
        range: CreatedRange,
        page: Page,
    ) -> Result<(Vec<Recording>, i64)> {
        let (limit, offset) = page.sql_bounds();
        let (clause, n) = filter.where_clause_in(range);
        let sql = format!(
            "SELECT {COLUMNS} FROM recordings {clause} ORDER BY id DESC LIMIT ${} OFFSET ${}",
            n + 1,
            n + 2
        );
        let count_sql = format!("SELECT count(*) FROM recordings {clause}");
        let (rows, total): (Vec<Row>, i64) = with_pool!(self.pool, p => {
            let rows = bind_range!(bind_filter!(sqlx::query_as(&sql), filter), range)
                .bind(limit)
                .bind(offset)
                .fetch_all(p)
                .await
                .map_err(StorageError::classify(ENTITY))?;
            let total = bind_range!(bind_filter!(sqlx::query_scalar(&count_sql), filter), range)
                .fetch_one(p)
                .await?;
            (rows, total)
        });
        let rows = rows
            .into_iter()
            .map(Recording::try_from)
            .collect::<Result<Vec<_>>>()?;
        Ok((rows, total))
    }

    /// Marks a recording heard or unheard.
    pub async fn set_heard(&self, id: RecordingId, heard: bool) -> Result<Recording> {
        let sql = format!("UPDATE recordings SET heard = $1 WHERE id = $2 RETURNING {COLUMNS}");
        let row: Row = with_pool!(self.pool, p => {
            sqlx::query_as(&sql).bind(heard).bind(id.0).fetch_one(p).await
        })
        .map_err(StorageError::classify(ENTITY))?;
        row.try_into()
    }

    /// Sets the length and size of a recording whose row was registered when it started (with
    /// zero for both), once its file is closed. A row still at zero after a crash marks a file
    /// that was never finished.
    pub async fn finish(
        &self,
        id: RecordingId,
        duration_ms: u64,
        size_bytes: u64,
    ) -> Result<Recording> {
        let dur = to_i64("duration", duration_ms)?;
        let size = to_i64("size", size_bytes)?;
        let sql = format!(
            "UPDATE recordings SET duration_ms = $1, size_bytes = $2 WHERE id = $3 \
             RETURNING {COLUMNS}"
        );
        let row: Row = with_pool!(self.pool, p => {
            sqlx::query_as(&sql).bind(dur).bind(size).bind(id.0).fetch_one(p).await
        })
        .map_err(StorageError::classify(ENTITY))?;
        row.try_into()
    }

    /// Records who called whom on a call recording (`caller` and `callee`, SIP URIs or numbers,
    /// each at most `MAX_TEXT_LEN` characters; `None` leaves a column empty).
    ///
    /// Errors: `Invalid` for a text too long, `NotFound` for an unknown id.
    pub async fn set_parties(
        &self,
        id: RecordingId,
        caller: Option<&str>,
        callee: Option<&str>,
    ) -> Result<Recording> {
        for (field, text) in [("caller", caller), ("callee", callee)] {
            if let Some(t) = text {
                validate::bounded_text(field, t, validate::MAX_TEXT_LEN)?;
            }
        }
        let sql = format!(
            "UPDATE recordings SET caller = $1, callee = $2 WHERE id = $3 RETURNING {COLUMNS}"
        );
        let row: Row = with_pool!(self.pool, p => {
            sqlx::query_as(&sql).bind(caller).bind(callee).bind(id.0).fetch_one(p).await
        })
        .map_err(StorageError::classify(ENTITY))?;
        row.try_into()
    }

    /// Deletes the row and returns it, so the caller can remove the file it pointed at.
    pub async fn delete(&self, id: RecordingId) -> Result<Recording> {
        let sql = format!("DELETE FROM recordings WHERE id = $1 RETURNING {COLUMNS}");
        let row: Row =
            with_pool!(self.pool, p => sqlx::query_as(&sql).bind(id.0).fetch_one(p).await)
                .map_err(StorageError::classify(ENTITY))?;
        row.try_into()
    }

    /// Deletes every recording of `owner` (a removed mailbox or user); returns how many.
    /// The files are the caller's to remove.
    pub async fn delete_by_owner(&self, owner: &str) -> Result<u64> {
        let n = with_pool!(self.pool, p => {
            sqlx::query("DELETE FROM recordings WHERE owner = $1")
                .bind(owner)
                .execute(p)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(n)
    }
}

/// The file of a message row's relative path `rel` inside `dir` (the recordings directory);
/// `None` for anything but a plain relative path (no `..`, no root, no `.`), so a row cannot
/// point outside.
pub fn message_file(dir: &std::path::Path, rel: &str) -> Option<std::path::PathBuf> {
    let relative = std::path::Path::new(rel);
    let plain = !rel.is_empty()
        && relative
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
    plain.then(|| dir.join(relative))
}
