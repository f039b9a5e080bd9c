//! `/users`: the panel's own users (admin only, reading included: the list says who holds
//! power). Passwords are argon2-hashed by the registry and never returned.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::{AdminUser, JsonBody};
use super::error::{ErrorBody, ErrorCode, PanelError, PanelResult};
use super::PanelState;
use crate::storage::{NewUser, Page, Role, User, UserId};

/// A role as the API spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RoleName {
    /// Everything.
    Admin,
    /// Read only.
    Viewer,
}

impl From<Role> for RoleName {
    fn from(r: Role) -> Self {
        match r {
            Role::Admin => RoleName::Admin,
            Role::Viewer => RoleName::Viewer,
        }
    }
}

impl From<RoleName> for Role {
    fn from(r: RoleName) -> Self {
        match r {
            RoleName::Admin => Role::Admin,
            RoleName::Viewer => Role::Viewer,
        }
    }
}

/// A panel user (never its password hash).
#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    /// Row id.
    pub id: i64,
    /// Login name.
    pub username: String,
    /// Role.
    pub role: RoleName,
    /// Creation time, Unix ms.
    pub created_ms: i64,
    /// Last successful login, Unix ms.
    pub last_login_ms: Option<i64>,
}

impl From<User> for UserView {
    fn from(u: User) -> Self {
        UserView {
            id: u.id.0,
            username: u.username,
            role: u.role.into(),
            created_ms: u.created.0,
            last_login_ms: u.last_login.map(|t| t.0),
        }
    }
}

/// `POST /users` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUserRequest {
    /// Login name, 1..=64 characters.
    pub username: String,
    /// Password, 8..=256 characters.
    pub password: String,
    /// Role.
    pub role: RoleName,
}

/// `PATCH /users/{id}` body: the fields to change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserUpdate {
    /// New role.
    pub role: Option<RoleName>,
    /// New password (ends the user's sessions, except the one making the change).
    pub password: Option<String>,
}

/// Every user.
#[utoipa::path(get, path = "/users", tag = "users",
    responses((status = 200, body = [UserView]), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("session" = [])))]
pub async fn list_users(
    State(state): State<PanelState>,
    _admin: AdminUser,
) -> PanelResult<Json<Vec<UserView>>> {
    let users = state
        .storage()
        .users()
        .list(Page::first(Page::MAX_LIMIT))
        .await?;
    Ok(Json(users.into_iter().map(UserView::from).collect()))
}

/// Creates a user.
#[utoipa::path(post, path = "/users", tag = "users", request_body = NewUserRequest,
    responses((status = 201, body = UserView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("session" = [], "csrf" = [])))]
pub async fn create_user(
    State(state): State<PanelState>,
    AdminUser(admin): AdminUser,
    JsonBody(body): JsonBody<NewUserRequest>,
) -> PanelResult<(StatusCode, Json<UserView>)> {
    let user = state
        .storage()
        .users()
        .create(
            &NewUser {
                username: body.username,
                role: body.role.into(),
            },
            &body.password,
        )
        .await?;
    tracing::info!(by = %admin.user.username, user = %user.username, role = %user.role, "panel: user created");
    Ok((StatusCode::CREATED, Json(user.into())))
}

async fn ensure_other_admin(state: &PanelState, target: &User) -> PanelResult<()> {
    if target.role == Role::Admin && state.storage().users().count_admins().await? <= 1 {
        return Err(PanelError::new(
            ErrorCode::LastAdmin,
            "this is the last admin user; make another admin first",
        ));
    }
    Ok(())
}

/// Changes a user's role or password.
#[utoipa::path(patch, path = "/users/{id}", tag = "users", request_body = UserUpdate,
    params(("id" = i64, Path, description = "User id")),
    responses((status = 200, body = UserView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("session" = [], "csrf" = [])))]
pub async fn update_user(
    State(state): State<PanelState>,
    AdminUser(admin): AdminUser,
    Path(id): Path<i64>,
    JsonBody(body): JsonBody<UserUpdate>,
) -> PanelResult<Json<UserView>> {
    let users = state.storage().users();
    let mut user = users.get(UserId(id)).await?;
    if let Some(role) = body.role {
        let role = Role::from(role);
        if role != user.role {
            if role == Role::Viewer {
                ensure_other_admin(&state, &user).await?;
            }
            user = users.set_role(user.id, role).await?;
            tracing::info!(by = %admin.user.username, user = %user.username, role = %role, "panel: role changed");
        }
    }
    if let Some(password) = body.password {
        users.set_password(user.id, &password).await?;
        state
            .sessions()
            .close_user_except(user.id, &admin.session_id);
        tracing::info!(by = %admin.user.username, user = %user.username, "panel: password changed");
    }
    Ok(Json(user.into()))
}

/// Deletes a user and ends its sessions.
#[utoipa::path(delete, path = "/users/{id}", tag = "users",
    params(("id" = i64, Path, description = "User id")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("session" = [], "csrf" = [])))]
pub async fn delete_user(
    State(state): State<PanelState>,
    AdminUser(admin): AdminUser,
    Path(id): Path<i64>,
) -> PanelResult<StatusCode> {
    let users = state.storage().users();
    let user = users.get(UserId(id)).await?;
    ensure_other_admin(&state, &user).await?;
    users.delete(user.id).await?;
    state.sessions().close_user(user.id);
    tracing::info!(by = %admin.user.username, user = %user.username, "panel: user deleted");
    Ok(StatusCode::NO_CONTENT)
}
