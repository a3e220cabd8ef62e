//! Installs and agent bindings of the caller's org.

use axum::extract::State;
use axum::http::StatusCode;
use tenantry_api_types::{
    AgentId, Binding, ChangeVersion, Install, InstallId, InstallPatch, InstallRequest, InstallView,
};
use tenantry_service::installs;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::ApiResult;
use crate::extract::{Json, Path, Tenant};
use crate::wire::{ToDomain, ToWire};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get, update, remove))
        .routes(routes!(change_version))
        .routes(routes!(list_bindings))
        .routes(routes!(bind, unbind))
}

/// Installs of the org.
#[utoipa::path(get, path = "/v1/installs", tag = "installs", responses((status = 200, body = Vec<Install>)))]
async fn list(
    State(s): State<AppState>,
    Tenant(t, _): Tenant,
) -> ApiResult<axum::Json<Vec<Install>>> {
    Ok(axum::Json(installs::list(&s.svc, &t).await?.to_wire()))
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
        axum::Json(
            installs::install(&s.svc, &t, &ctx, &b.to_domain())
                .await?
                .to_wire(),
        ),
    ))
}

/// One install, with requested vs granted permissions.
#[utoipa::path(get, path = "/v1/installs/{install_id}", tag = "installs", params(("install_id" = InstallId, Path)), responses((status = 200, body = InstallView)))]
async fn get(
    State(s): State<AppState>,
    Tenant(t, _): Tenant,
    Path(id): Path<tenantry_core::InstallId>,
) -> ApiResult<axum::Json<InstallView>> {
    Ok(axum::Json(installs::get(&s.svc, &t, id).await?.to_wire()))
}

/// Change config, grants or the enabled flag.
#[utoipa::path(patch, path = "/v1/installs/{install_id}", tag = "installs", request_body = InstallPatch, params(("install_id" = InstallId, Path)), responses((status = 200, body = InstallView)))]
async fn update(
    State(s): State<AppState>,
    Tenant(t, ctx): Tenant,
    Path(id): Path<tenantry_core::InstallId>,
    Json(b): Json<InstallPatch>,
) -> ApiResult<axum::Json<InstallView>> {
    Ok(axum::Json(
        installs::update(&s.svc, &t, &ctx, id, &b.to_domain())
            .await?
            .to_wire(),
    ))
}

/// Uninstall (destroys the install's secrets and data).
#[utoipa::path(delete, path = "/v1/installs/{install_id}", tag = "installs", params(("install_id" = InstallId, Path)), responses((status = 204)))]
async fn remove(
    State(s): State<AppState>,
    Tenant(t, ctx): Tenant,
    Path(id): Path<tenantry_core::InstallId>,
) -> ApiResult<StatusCode> {
    installs::uninstall(&s.svc, &t, &ctx, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Upgrade or roll back an install.
#[utoipa::path(post, path = "/v1/installs/{install_id}/version", tag = "installs", request_body = ChangeVersion, params(("install_id" = InstallId, Path)), responses((status = 200, body = InstallView)))]
async fn change_version(
    State(s): State<AppState>,
    Tenant(t, ctx): Tenant,
    Path(id): Path<tenantry_core::InstallId>,
    Json(b): Json<ChangeVersion>,
) -> ApiResult<axum::Json<InstallView>> {
    Ok(axum::Json(
        installs::change_version(&s.svc, &t, &ctx, id, b.version.as_deref())
            .await?
            .to_wire(),
    ))
}

/// Agent ↔ install bindings of the org.
#[utoipa::path(get, path = "/v1/bindings", tag = "installs", responses((status = 200, body = Vec<Binding>)))]
async fn list_bindings(
    State(s): State<AppState>,
    Tenant(t, _): Tenant,
) -> ApiResult<axum::Json<Vec<Binding>>> {
    Ok(axum::Json(installs::bindings(&s.svc, &t).await?.to_wire()))
}

/// Let an agent use an install.
#[utoipa::path(put, path = "/v1/agents/{agent_id}/installs/{install_id}", tag = "installs", params(("agent_id" = AgentId, Path), ("install_id" = InstallId, Path)), responses((status = 201, body = Binding)))]
async fn bind(
    State(s): State<AppState>,
    Tenant(t, ctx): Tenant,
    Path((agent, install)): Path<(tenantry_core::AgentId, tenantry_core::InstallId)>,
) -> ApiResult<(StatusCode, axum::Json<Binding>)> {
    Ok((
        StatusCode::CREATED,
        axum::Json(
            installs::bind(&s.svc, &t, &ctx, agent, install)
                .await?
                .to_wire(),
        ),
    ))
}

/// Remove a binding.
#[utoipa::path(delete, path = "/v1/agents/{agent_id}/installs/{install_id}", tag = "installs", params(("agent_id" = AgentId, Path), ("install_id" = InstallId, Path)), responses((status = 204)))]
async fn unbind(
    State(s): State<AppState>,
    Tenant(t, ctx): Tenant,
    Path((agent, install)): Path<(tenantry_core::AgentId, tenantry_core::InstallId)>,
) -> ApiResult<StatusCode> {
    installs::unbind(&s.svc, &t, &ctx, agent, install).await?;
    Ok(StatusCode::NO_CONTENT)
}
