//! Users, agents and API keys of the caller's org.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use std::collections::BTreeSet;
use tenantry_core::{AgentId, ApiKeyId, Permission, Role, UserId};
use tenantry_service::members::{self, CreatedKey, KeyOwner};
use tenantry_store::{AgentRecord, ApiKeyRecord, UserRecord};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::ApiResult;
use crate::extract::{Json, Path, Tenant};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_users, add_user))
        .routes(routes!(set_role))
        .routes(routes!(list_agents, create_agent))
        .routes(routes!(delete_agent))
        .routes(routes!(list_keys, create_key))
        .routes(routes!(revoke_key))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddUser {
    #[schema(
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$",
        min_length = 1,
        max_length = 128
    )]
    name: String,
    role: Role,
}

/// Users of the org.
#[utoipa::path(get, path = "/v1/users", tag = "members", responses((status = 200, body = Vec<UserRecord>)))]
async fn list_users(
    State(s): State<AppState>,
    Tenant(t, _): Tenant,
) -> ApiResult<axum::Json<Vec<UserRecord>>> {
    Ok(axum::Json(members::list_users(&s.svc, &t).await?))
}

/// Add a user.
#[utoipa::path(post, path = "/v1/users", tag = "members", request_body = AddUser, responses((status = 201, body = UserRecord)))]
async fn add_user(
    State(s): State<AppState>,
    Tenant(t, ctx): Tenant,
    Json(b): Json<AddUser>,
) -> ApiResult<(StatusCode, axum::Json<UserRecord>)> {
    Ok((
        StatusCode::CREATED,
        axum::Json(members::add_user(&s.svc, &t, &ctx, &b.name, b.role).await?),
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetRole {
    role: Role,
}

/// Change a user's role.
#[utoipa::path(patch, path = "/v1/users/{user_id}", tag = "members", request_body = SetRole, params(("user_id" = UserId, Path)), responses((status = 200, body = UserRecord)))]
async fn set_role(
    State(s): State<AppState>,
    Tenant(t, ctx): Tenant,
    Path(user): Path<UserId>,
    Json(b): Json<SetRole>,
) -> ApiResult<axum::Json<UserRecord>> {
    Ok(axum::Json(
        members::set_role(&s.svc, &t, &ctx, user, b.role).await?,
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAgent {
    #[schema(
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$",
        min_length = 1,
        max_length = 128
    )]
    name: String,
    /// The user the agent acts for; the caller if omitted.
    on_behalf_of: Option<UserId>,
    /// Permissions, each held by that user's role and by the caller.
    grants: BTreeSet<Permission>,
}

/// Agents of the org.
#[utoipa::path(get, path = "/v1/agents", tag = "members", responses((status = 200, body = Vec<AgentRecord>)))]
async fn list_agents(
    State(s): State<AppState>,
    Tenant(t, _): Tenant,
) -> ApiResult<axum::Json<Vec<AgentRecord>>> {
    Ok(axum::Json(members::list_agents(&s.svc, &t).await?))
}

/// Create an agent acting on behalf of a user.
#[utoipa::path(post, path = "/v1/agents", tag = "members", request_body = CreateAgent, responses((status = 201, body = AgentRecord)))]
async fn create_agent(
    State(s): State<AppState>,
    Tenant(t, ctx): Tenant,
    Json(b): Json<CreateAgent>,
) -> ApiResult<(StatusCode, axum::Json<AgentRecord>)> {
    let a = members::create_agent(&s.svc, &t, &ctx, &b.name, b.on_behalf_of, b.grants).await?;
    Ok((StatusCode::CREATED, axum::Json(a)))
}

/// Delete an agent (its keys are revoked, its bindings removed).
#[utoipa::path(delete, path = "/v1/agents/{agent_id}", tag = "members", params(("agent_id" = AgentId, Path)), responses((status = 204)))]
async fn delete_agent(
    State(s): State<AppState>,
    Tenant(t, ctx): Tenant,
    Path(agent): Path<AgentId>,
) -> ApiResult<StatusCode> {
    members::delete_agent(&s.svc, &t, &ctx, agent).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    /// Whose key: `{"kind": "self"}`, `{"kind": "user", "id": …}` or `{"kind": "agent", "id": …}`.
    owner: KeyOwner,
    #[schema(
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$",
        min_length = 1,
        max_length = 128
    )]
    name: String,
    #[serde(default, with = "time::serde::rfc3339::option")]
    expires_at: Option<time::OffsetDateTime>,
}

/// API keys visible to the caller.
#[utoipa::path(get, path = "/v1/keys", tag = "members", responses((status = 200, body = Vec<ApiKeyRecord>)))]
async fn list_keys(
    State(s): State<AppState>,
    Tenant(t, _): Tenant,
) -> ApiResult<axum::Json<Vec<ApiKeyRecord>>> {
    Ok(axum::Json(members::list_keys(&s.svc, &t).await?))
}

/// Create an API key (the key is in the response, once).
#[utoipa::path(post, path = "/v1/keys", tag = "members", request_body = CreateKey, responses((status = 201, body = CreatedKey)))]
async fn create_key(
    State(s): State<AppState>,
    Tenant(t, ctx): Tenant,
    Json(b): Json<CreateKey>,
) -> ApiResult<(StatusCode, axum::Json<CreatedKey>)> {
    let k = members::create_key(&s.svc, &t, &ctx, b.owner, &b.name, b.expires_at).await?;
    Ok((StatusCode::CREATED, axum::Json(k)))
}

/// Revoke an API key.
#[utoipa::path(delete, path = "/v1/keys/{key_id}", tag = "members", params(("key_id" = ApiKeyId, Path)), responses((status = 200, body = ApiKeyRecord)))]
async fn revoke_key(
    State(s): State<AppState>,
    Tenant(t, ctx): Tenant,
    Path(key): Path<ApiKeyId>,
) -> ApiResult<axum::Json<ApiKeyRecord>> {
    Ok(axum::Json(
        members::revoke_key(&s.svc, &t, &ctx, key).await?,
    ))
}
