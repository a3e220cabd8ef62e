//! Invoking plugin actions.

use axum::extract::State;
use axum::http::HeaderMap;
use tenantry_api_types::{InstallId, InvokeRequest, InvokeResponse};
use tenantry_service::invoke;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::{ApiResult, rate_limit_headers};
use crate::extract::{Invoking, Json, Path};
use crate::wire::{ToDomain, ToWire};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(invoke_action))
}

/// Invoke an action of an install (agents must be bound to it). The plugin's
/// outcome (`OK`, `OUT_OF_FUEL`, `EGRESS_DENIED`, …) is in the body with its stats;
/// HTTP errors mean the invocation did not start. `RateLimit` and `RateLimit-Policy`
/// say where the org (and the install, when it has its own limit) stands.
#[utoipa::path(post, path = "/v1/installs/{install_id}/invoke", tag = "invoke", request_body = InvokeRequest, params(("install_id" = InstallId, Path)), responses((status = 200, body = InvokeResponse, headers(
    ("RateLimit" = String, description = "Each rate limit the invocation was counted against: `\"org\";r=<remaining>;t=<seconds to full>`, then `\"install\";…` when the install has its own limit"),
    ("RateLimit-Policy" = String, description = "The same limits' quotas: `\"org\";q=<per window>;w=<window seconds>`"),
))))]
async fn invoke_action(
    State(s): State<AppState>,
    Invoking(who, ctx): Invoking,
    Path(id): Path<tenantry_core::InstallId>,
    Json(b): Json<InvokeRequest>,
) -> ApiResult<(HeaderMap, axum::Json<InvokeResponse>)> {
    let done = invoke::invoke(&s.svc, &who, &ctx, id, &b.to_domain()).await?;
    let mut headers = HeaderMap::new();
    rate_limit_headers(&done.rate_limits, &mut headers);
    Ok((headers, axum::Json(done.response.to_wire())))
}
