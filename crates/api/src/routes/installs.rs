//! Installs and agent bindings of the caller's org.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use tenantry_core::{AgentId, InstallId};
use tenantry_service::installs::{self, InstallPatch, InstallRequest, InstallView};
use tenantry_store::{BindingRecord, InstallRecord};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::ApiResult;
use crate::extract::{Json, Path, Tenant};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get, update, remove))
        .routes(routes!(change_version))
        .routes(routes!(list_bindings))
        .routes(routes!(bind, unbind))
}

/// Installs of the org.
#[utoipa::path(get, path = "/v1/installs", tag = "installs", responses((status = 200, body = Vec<InstallRecord>)))]
async fn list(
    State(s): State<AppState>,
    Tenant(t, _): Tenant,
) -> ApiResult<axum::Json<Vec<InstallRecord>>> {
    Ok(axum::Json(installs::list(&s.svc, &t).await?))
}

/// Install a plugin version into the org.
#[utoipa::path(post, path = "/v1/installs", tag = "installs", request_body = InstallRequest, responses((status = 201, body = InstallView)))]
async fn create(
    State(s): State<AppState>,
    Tenant(t, ctx): Tenant,
    Json(b): Json<InstallRequest>,
) -> ApiResult<(StatusCode, axum::Json<InstallView>)> {
    Ok((
        StatusCode::CREATED,
        axum::Json(installs::install(&s.svc, &t, &ctx, &b).await?),
    ))
}

/// One install, with requested vs granted permissions.
#[utoipa::path(get, path = "/v1/installs/{install_id}", tag = "installs", params(("install_id" = InstallId, Path)), responses((status = 200, body = InstallView)))]
async fn get(
    State(s): State<AppState>,
    Tenant(t, _): Tenant,
    Path(id): Path<InstallId>,
) -> ApiResult<axum::Json<InstallView>> {
    Ok(axum::Json(installs::get(&s.svc, &t, id).await?))
}

/// Change config, grants or the enabled flag.
#[utoipa::path(patch, path = "/v1/installs/{install_id}", tag = "installs", request_body = InstallPatch, params(("install_id" = InstallId, Path)), responses((status = 200, body = InstallView)))]
async fn update(
    State(s): State<AppState>,
    Tenant(t, ctx): Tenant,
    Path(id): Path<InstallId>,
    Json(b): Json<InstallPatch>,
) -> ApiResult<axum::Json<InstallView>> {
    Ok(axum::Json(
        installs::update(&s.svc, &t, &ctx, id, &b).await?,
    ))
}

/// Uninstall (destroys the install's secrets and data).
#[utoipa::path(delete, path = "/v1/installs/{install_id}", tag = "installs", params(("install_id" = InstallId, Path)), responses((status = 204)))]
async fn remove(
    State(s): State<AppState>,
    Tenant(t, ctx): Tenant,
    Path(id): Path<InstallId>,
) -> ApiResult<StatusCode> {
    installs::uninstall(&s.svc, &t, &ctx, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeVersion {
    /// Target version or requirement; omitted = roll back to the previous version.
    version: Option<String>,
}

/// Upgrade or roll back an install.
#[utoipa::path(post, path = "/v1/installs/{install_id}/version", tag = "installs", request_body = ChangeVersion, params(("install_id" = InstallId, Path)), responses((status = 200, body = InstallView)))]
async fn change_version(
    State(s): State<AppState>,
    Tenant(t, ctx): Tenant,
    Path(id): Path<InstallId>,
    Json(b): Json<ChangeVersion>,
) -> ApiResult<axum::Json<InstallView>> {
    Ok(axum::Json(
        installs::change_version(&s.svc, &t, &ctx, id, b.version.as_deref()).await?,
    ))
}

/// Agent ↔ install bindings of the org.
#[utoipa::path(get, path = "/v1/bindings", tag = "installs", responses((status = 200, body = Vec<BindingRecord>)))]
async fn list_bindings(
    State(s): State<AppState>,
    Tenant(t, _): Tenant,
) -> ApiResult<axum::Json<Vec<BindingRecord>>> {
    Ok(axum::Json(installs::bindings(&s.svc, &t).await?))
}

/// Let an agent use an install.
#[utoipa::path(put, path = "/v1/agents/{agent_id}/installs/{install_id}", tag = "installs", params(("agent_id" = AgentId, Path), ("install_id" = InstallId, Path)), responses((status = 201, body = BindingRecord)))]
async fn bind(
    State(s): State<AppState>,
    Tenant(t, ctx): Tenant,
    Path((agent, install)): Path<(AgentId, InstallId)>,
) -> ApiResult<(StatusCode, axum::Json<BindingRecord>)> {
    Ok((
        StatusCode::CREATED,
        axum::Json(installs::bind(&s.svc, &t, &ctx, agent, install).await?),
    ))
}

/// Remove a binding.
#[utoipa::path(delete, path = "/v1/agents/{agent_id}/installs/{install_id}", tag = "installs", params(("agent_id" = AgentId, Path), ("install_id" = InstallId, Path)), responses((status = 204)))]
async fn unbind(
    State(s): State<AppState>,
    Tenant(t, ctx): Tenant,
    Path((agent, install)): Path<(AgentId, InstallId)>,
) -> ApiResult<StatusCode> {
    installs::unbind(&s.svc, &t, &ctx, agent, install).await?;
    Ok(StatusCode::NO_CONTENT)
}
