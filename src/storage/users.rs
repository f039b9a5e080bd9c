//! Admin-panel users: username, argon2 password hash, role, creation and last-login times.

use sqlx::FromRow;

use super::error::{Result, StorageError};
use super::pool::{delete_by_id, with_pool, Pool};
use super::types::{Page, Role, Timestamp, UserId};
use super::{password, validate};

const ENTITY: &str = "user";

/// An admin-panel user. The password hash stays inside the storage layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Row id.
    pub id: UserId,
    /// Login name, unique.
    pub username: String,
    /// What the user may do.
    pub role: Role,
    /// When the user was created.
    pub created: Timestamp,
    /// Last successful login, if any.
    pub last_login: Option<Timestamp>,
}

/// What it takes to create a user (the password is passed separately and only its hash stored).
#[derive(Debug, Clone)]
pub struct NewUser {
    /// Login name: 1..=64 characters.
    pub username: String,
    /// Role.
    pub role: Role,
}

#[derive(FromRow)]
struct Row {
    id: i64,
    username: String,
    role: String,
    created_at_ms: i64,
    last_login_ms: Option<i64>,
}

impl TryFrom<Row> for User {
    type Error = StorageError;

    fn try_from(r: Row) -> Result<User> {
        Ok(User {
            id: UserId(r.id),
            username: r.username,
            role: r
                .role
                .parse()
                .map_err(|e: StorageError| StorageError::Corrupt {
                    entity: ENTITY,
                    reason: e.to_string(),
                })?,
            created: Timestamp(r.created_at_ms),
            last_login: r.last_login_ms.map(Timestamp),
        })
    }
}

const COLUMNS: &str = "id, username, role, created_at_ms, last_login_ms";

/// Minimum password length accepted for admin users.
pub const MIN_PASSWORD_LEN: usize = 8;

fn check_password(password: &str) -> Result<()> {
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(StorageError::Invalid {
            field: "password",
            reason: format!("at least {MIN_PASSWORD_LEN} characters"),
        });
    }
    validate::bounded_text("password", password, validate::MAX_TEXT_LEN)
}

/// Repository of admin users.
pub struct Users<'a> {
    pool: &'a Pool,
}

impl<'a> Users<'a> {
    pub(crate) fn new(pool: &'a Pool) -> Self {
        Users { pool }
    }

    /// Creates a user with an argon2 hash of `password`. `Invalid` for a bad username or a
    /// password outside 8..=256 characters or holding control characters, `AlreadyExists`
    /// when the username is taken.
    pub async fn create(&self, new: &NewUser, password: &str) -> Result<User> {
        validate::username(&new.username)?;
        check_password(password)?;
        let hash = password::hash(password).await?;
        let sql = format!(
            "INSERT INTO admin_users (username, password_hash, role, created_at_ms) \
             VALUES ($1, $2, $3, $4) RETURNING {COLUMNS}"
        );
        let row: Row = with_pool!(self.pool, p => {
            sqlx::query_as(&sql)
                .bind(&new.username)
                .bind(&hash)
                .bind(new.role.as_str())
                .bind(Timestamp::now().0)
                .fetch_one(p)
                .await
        })
        .map_err(StorageError::classify(ENTITY))?;
        row.try_into()
    }

    /// The user with this id; `NotFound` when there is none.
    pub async fn get(&self, id: UserId) -> Result<User> {
        let sql = format!("SELECT {COLUMNS} FROM admin_users WHERE id = $1");
        let row: Row =
            with_pool!(self.pool, p => sqlx::query_as(&sql).bind(id.0).fetch_one(p).await)
                .map_err(StorageError::classify(ENTITY))?;
        row.try_into()
    }

    /// The user with this username; `NotFound` when there is none.
    pub async fn get_by_username(&self, username: &str) -> Result<User> {
        let sql = format!("SELECT {COLUMNS} FROM admin_users WHERE username = $1");
        let row: Row =
            with_pool!(self.pool, p => sqlx::query_as(&sql).bind(username).fetch_one(p).await)
                .map_err(StorageError::classify(ENTITY))?;
        row.try_into()
    }

    /// Users ordered by id.
    pub async fn list(&self, page: Page) -> Result<Vec<User>> {
        let (limit, offset) = page.sql_bounds();
        let sql = format!("SELECT {COLUMNS} FROM admin_users ORDER BY id LIMIT $1 OFFSET $2");
        let rows: Vec<Row> = with_pool!(self.pool, p => {
            sqlx::query_as(&sql).bind(limit).bind(offset).fetch_all(p).await
        })
        .map_err(StorageError::classify(ENTITY))?;
        rows.into_iter().map(User::try_from).collect()
    }

    /// Number of users with the admin role.
    pub async fn count_admins(&self) -> Result<i64> {
        let n: i64 = with_pool!(self.pool, p => {
            sqlx::query_scalar("SELECT count(*) FROM admin_users WHERE role = 'admin'")
                .fetch_one(p)
                .await
        })?;
        Ok(n)
    }

    /// Changes a user's role; `NotFound` when there is no such user.
    pub async fn set_role(&self, id: UserId, role: Role) -> Result<User> {
        let sql = format!("UPDATE admin_users SET role = $1 WHERE id = $2 RETURNING {COLUMNS}");
        let row: Row = with_pool!(self.pool, p => {
            sqlx::query_as(&sql).bind(role.as_str()).bind(id.0).fetch_one(p).await
        })
        .map_err(StorageError::classify(ENTITY))?;
        row.try_into()
    }

    /// Replaces a user's password; `Invalid` under the same rules as [`Users::create`],
    /// `NotFound` when there is no such user.
    pub async fn set_password(&self, id: UserId, password: &str) -> Result<()> {
        check_password(password)?;
        let hash = password::hash(password).await?;
        let done = with_pool!(self.pool, p => {
            sqlx::query("UPDATE admin_users SET password_hash = $1 WHERE id = $2")
                .bind(&hash)
                .bind(id.0)
                .execute(p)
                .await
                .map(|r| r.rows_affected())
        })?;
        found(done)
    }

    /// Checks a login; on success records the login time and returns the user.
    /// A wrong password and an unknown user both yield `Ok(None)`, so callers cannot tell them
    /// apart (no username probing).
    pub async fn authenticate(&self, username: &str, password: &str) -> Result<Option<User>> {
        let hit: Option<(i64, String)> = with_pool!(self.pool, p => {
            sqlx::query_as("SELECT id, password_hash FROM admin_users WHERE username = $1")
                .bind(username)
                .fetch_optional(p)
                .await
        })?;
        let Some((id, hash)) = hit else {
            // Spend the same argon2 time as a real check so response times do not reveal
            // which usernames exist.
            let _ = password::hash(password).await;
            return Ok(None);
        };
        if !password::verify(password, &hash).await {
            return Ok(None);
        }
        self.record_login(UserId(id), Timestamp::now())
            .await
            .map(Some)
    }

    /// Sets the last-login time; `NotFound` when there is no such user.
    pub async fn record_login(&self, id: UserId, at: Timestamp) -> Result<User> {
        let sql =
            format!("UPDATE admin_users SET last_login_ms = $1 WHERE id = $2 RETURNING {COLUMNS}");
        let row: Row = with_pool!(self.pool, p => {
            sqlx::query_as(&sql).bind(at.0).bind(id.0).fetch_one(p).await
        })
        .map_err(StorageError::classify(ENTITY))?;
        row.try_into()
    }

    /// Deletes a user (SIP accounts it could use lose that permission); `NotFound` when there
    /// is none.
    pub async fn delete(&self, id: UserId) -> Result<()> {
        delete_by_id(self.pool, "admin_users", id.0, ENTITY).await
    }
}

fn found(rows_affected: u64) -> Result<()> {
    if rows_affected == 0 {
        Err(StorageError::NotFound { entity: ENTITY })
    } else {
        Ok(())
    }
}
