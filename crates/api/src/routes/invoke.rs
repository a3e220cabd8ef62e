//! Invoking plugin actions.

use axum::extract::State;
use tenantry_core::InstallId;
use tenantry_service::invoke::{self, InvokeRequest, InvokeResponse};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::ApiResult;
use crate::extract::{Json, Path, Tenant};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(invoke_action))
}

/// Invoke an action of an install (agents must be bound to it). The plugin's
/// outcome (`OK`, `OUT_OF_FUEL`, `EGRESS_DENIED`, …) is in the body with its stats;
/// HTTP errors mean the invocation did not start.
#[utoipa::path(post, path = "/v1/installs/{install_id}/invoke", tag = "invoke", request_body = InvokeRequest, params(("install_id" = InstallId, Path)), responses((status = 200, body = InvokeResponse)))]
async fn invoke_action(
    State(s): State<AppState>,
    Tenant(t, ctx): Tenant,
    Path(id): Path<InstallId>,
    Json(b): Json<InvokeRequest>,
) -> ApiResult<axum::Json<InvokeResponse>> {
    Ok(axum::Json(invoke::invoke(&s.svc, &t, &ctx, id, &b).await?))
}
