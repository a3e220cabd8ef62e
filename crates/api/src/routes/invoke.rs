//! Invoking plugin actions.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue};
use tenantry_core::InstallId;
use tenantry_service::invoke::{self, InvokeRequest, InvokeResponse};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::ApiResult;
use crate::extract::{Invoking, Json, Path};

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
    Path(id): Path<InstallId>,
    Json(b): Json<InvokeRequest>,
) -> ApiResult<(HeaderMap, axum::Json<InvokeResponse>)> {
    let done = invoke::invoke(&s.svc, &who, &ctx, id, &b).await?;
    let mut headers = HeaderMap::new();
    for (name, value) in done.rate_limit.headers() {
        // Rendered from numbers and fixed names, so always a valid value.
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    }
    Ok((headers, axum::Json(done.response)))
}
