//! Install secrets: write-only.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use tenantry_core::InstallId;
use tenantry_crypto::SecretValue;
use tenantry_service::secrets;
use tenantry_store::SecretMeta;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::ApiResult;
use crate::extract::{Json, Path, Tenant};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(set, delete))
}

/// The secret's value. Deserialised straight into a zeroizing type; never echoed.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetSecret {
    #[schema(value_type = String, min_length = 1, max_length = 16384)]
    #[serde(deserialize_with = "secret_value")]
    value: SecretValue,
}

fn secret_value<'de, D: serde::Deserializer<'de>>(d: D) -> Result<SecretValue, D::Error> {
    String::deserialize(d).map(SecretValue::from)
}

/// Names and times of an install's secrets (never values).
#[utoipa::path(get, path = "/v1/installs/{install_id}/secrets", tag = "secrets", params(("install_id" = InstallId, Path)), responses((status = 200, body = Vec<SecretMeta>)))]
async fn list(
    State(s): State<AppState>,
    Tenant(t, _): Tenant,
    Path(id): Path<InstallId>,
) -> ApiResult<axum::Json<Vec<SecretMeta>>> {
    Ok(axum::Json(secrets::list(&s.svc, &t, id).await?))
}

/// Set a secret (owners only).
#[utoipa::path(put, path = "/v1/installs/{install_id}/secrets/{name}", tag = "secrets", request_body = SetSecret, params(("install_id" = InstallId, Path), ("name" = String, Path)), responses((status = 200, body = SecretMeta)))]
async fn set(
    State(s): State<AppState>,
    Tenant(t, ctx): Tenant,
    Path((id, name)): Path<(InstallId, String)>,
    Json(b): Json<SetSecret>,
) -> ApiResult<axum::Json<SecretMeta>> {
    Ok(axum::Json(
        secrets::set(&s.svc, &t, &ctx, id, &name, b.value).await?,
    ))
}

/// Delete a secret (owners only).
#[utoipa::path(delete, path = "/v1/installs/{install_id}/secrets/{name}", tag = "secrets", params(("install_id" = InstallId, Path), ("name" = String, Path)), responses((status = 204)))]
async fn delete(
    State(s): State<AppState>,
    Tenant(t, ctx): Tenant,
    Path((id, name)): Path<(InstallId, String)>,
) -> ApiResult<StatusCode> {
    secrets::delete(&s.svc, &t, &ctx, id, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
