//! Users, agents and API keys of the caller's org.

use axum::extract::State;
use axum::http::StatusCode;
use tenantry_api_types::{
    AddUser, Agent, AgentId, ApiKey, ApiKeyId, CreateAgent, CreateKey, CreatedKey, SetRole, User,
    UserId,
};
use tenantry_service::members;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::ApiResult;
use crate::extract::{Json, Path, Tenant};
use crate::wire::{ToDomain, ToWire};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_users, add_user))
        .routes(routes!(set_role))
        .routes(routes!(list_agents, create_agent))
        .routes(routes!(delete_agent))
        .routes(routes!(list_keys, create_key))
        .routes(routes!(revoke_key))
}

/// Users of the org.
#[utoipa::path(get, path = "/v1/users", tag = "members", responses((status = 200, body = Vec<User>)))]
async fn list_users(
    State(s): State<AppState>,
    Tenant(t, _): Tenant,
) -> ApiResult<axum::Json<Vec<User>>> {
    Ok(axum::Json(members::list_users(&s.svc, &t).await?.to_wire()))
}

/// Add a user.
#[utoipa::path(post, path = "/v1/users", tag = "members", request_body = AddUser, responses((status = 201, body = User)))]
async fn add_user(
    State(s): State<AppState>,
    Tenant(t, ctx): Tenant,
    Json(b): Json<AddUser>,
) -> ApiResult<(StatusCode, axum::Json<User>)> {
    let u = members::add_user(&s.svc, &t, &ctx, &b.name, b.role.to_domain()).await?;
    Ok((StatusCode::CREATED, axum::Json(u.to_wire())))
}

/// Change a user's role.
#[utoipa::path(patch, path = "/v1/users/{user_id}", tag = "members", request_body = SetRole, params(("user_id" = UserId, Path)), responses((status = 200, body = User)))]
async fn set_role(
    State(s): State<AppState>,
    Tenant(t, ctx): Tenant,
    Path(user): Path<tenantry_core::UserId>,
    Json(b): Json<SetRole>,
) -> ApiResult<axum::Json<User>> {
    Ok(axum::Json(
        members::set_role(&s.svc, &t, &ctx, user, b.role.to_domain())
            .await?
            .to_wire(),
    ))
}

/// Agents of the org.
#[utoipa::path(get, path = "/v1/agents", tag = "members", responses((status = 200, body = Vec<Agent>)))]
async fn list_agents(
    State(s): State<AppState>,
    Tenant(t, _): Tenant,
) -> ApiResult<axum::Json<Vec<Agent>>> {
    Ok(axum::Json(
        members::list_agents(&s.svc, &t).await?.to_wire(),
    ))
}

/// Create an agent acting on behalf of a user.
#[utoipa::path(post, path = "/v1/agents", tag = "members", request_body = CreateAgent, responses((status = 201, body = Agent)))]
async fn create_agent(
    State(s): State<AppState>,
    Tenant(t, ctx): Tenant,
    Json(b): Json<CreateAgent>,
) -> ApiResult<(StatusCode, axum::Json<Agent>)> {
    let a = members::create_agent(
        &s.svc,
        &t,
        &ctx,
        &b.name,
        b.on_behalf_of.to_domain(),
        b.grants.to_domain(),
    )
    .await?;
    Ok((StatusCode::CREATED, axum::Json(a.to_wire())))
}

/// Delete an agent (its keys are revoked, its bindings removed).
#[utoipa::path(delete, path = "/v1/agents/{agent_id}", tag = "members", params(("agent_id" = AgentId, Path)), responses((status = 204)))]
async fn delete_agent(
    State(s): State<AppState>,
    Tenant(t, ctx): Tenant,
    Path(agent): Path<tenantry_core::AgentId>,
) -> ApiResult<StatusCode> {
    members::delete_agent(&s.svc, &t, &ctx, agent).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// API keys visible to the caller.
#[utoipa::path(get, path = "/v1/keys", tag = "members", responses((status = 200, body = Vec<ApiKey>)))]
async fn list_keys(
    State(s): State<AppState>,
    Tenant(t, _): Tenant,
) -> ApiResult<axum::Json<Vec<ApiKey>>> {
    Ok(axum::Json(members::list_keys(&s.svc, &t).await?.to_wire()))
}

/// Create an API key (the key is in the response, once).
#[utoipa::path(post, path = "/v1/keys", tag = "members", request_body = CreateKey, responses((status = 201, body = CreatedKey)))]
async fn create_key(
    State(s): State<AppState>,
    Tenant(t, ctx): Tenant,
    Json(b): Json<CreateKey>,
) -> ApiResult<(StatusCode, axum::Json<CreatedKey>)> {
    let k =
        members::create_key(&s.svc, &t, &ctx, b.owner.to_domain(), &b.name, b.expires_at).await?;
    Ok((StatusCode::CREATED, axum::Json(k.to_wire())))
}

/// Revoke an API key.
#[utoipa::path(delete, path = "/v1/keys/{key_id}", tag = "members", params(("key_id" = ApiKeyId, Path)), responses((status = 200, body = ApiKey)))]
async fn revoke_key(
    State(s): State<AppState>,
    Tenant(t, ctx): Tenant,
    Path(key): Path<tenantry_core::ApiKeyId>,
) -> ApiResult<axum::Json<ApiKey>> {
    Ok(axum::Json(
        members::revoke_key(&s.svc, &t, &ctx, key).await?.to_wire(),
    ))
}
