//! Install secrets: write-only.

use axum::extract::State;
use axum::http::StatusCode;
use tenantry_api_types::{InstallId, SecretMeta, SetSecret};
use tenantry_service::secrets;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::ApiResult;
use crate::extract::{Json, Path, Tenant};
use crate::wire::{ToDomain, ToWire};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(set, delete))
}

/// Names and times of an install's secrets (never values).
#[utoipa::path(get, path = "/v1/installs/{install_id}/secrets", tag = "secrets", params(("install_id" = InstallId, Path)), responses((status = 200, body = Vec<SecretMeta>)))]
async fn list(
    State(s): State<AppState>,
    Tenant(t, _): Tenant,
    Path(id): Path<tenantry_core::InstallId>,
) -> ApiResult<axum::Json<Vec<SecretMeta>>> {
    Ok(axum::Json(secrets::list(&s.svc, &t, id).await?.to_wire()))
}

/// Set a secret (owners only).
#[utoipa::path(put, path = "/v1/installs/{install_id}/secrets/{name}", tag = "secrets", request_body = SetSecret, params(("install_id" = InstallId, Path), ("name" = String, Path)), responses((status = 200, body = SecretMeta)))]
async fn set(
    State(s): State<AppState>,
    Tenant(t, ctx): Tenant,
    Path((id, name)): Path<(tenantry_core::InstallId, String)>,
    Json(b): Json<SetSecret>,
) -> ApiResult<axum::Json<SecretMeta>> {
    Ok(axum::Json(
        secrets::set(&s.svc, &t, &ctx, id, &name, b.value.to_domain())
            .await?
            .to_wire(),
    ))
}

/// Delete a secret (owners only).
#[utoipa::path(delete, path = "/v1/installs/{install_id}/secrets/{name}", tag = "secrets", params(("install_id" = InstallId, Path), ("name" = String, Path)), responses((status = 204)))]
async fn delete(
    State(s): State<AppState>,
    Tenant(t, ctx): Tenant,
    Path((id, name)): Path<(tenantry_core::InstallId, String)>,
) -> ApiResult<StatusCode> {
    secrets::delete(&s.svc, &t, &ctx, id, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
