//! Publishing a signed version (its own module: it has a larger body limit).

use axum::extract::State;
use axum::http::StatusCode;
use base64::Engine;
use tenantry_api_types::{PublishRequest, Version};
use tenantry_service::registry;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::ApiResult;
use crate::extract::{Authed, Ctx, Json};
use crate::wire::{ToDomain, ToWire};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(publish))
}

/// Publish a signed plugin version. Any authenticated principal may call it; the
/// signature decides whether it is accepted.
#[utoipa::path(post, path = "/v1/plugins", tag = "registry", request_body = PublishRequest, responses((status = 201, body = Version)))]
async fn publish(
    State(s): State<AppState>,
    Authed(session): Authed,
    Ctx(ctx): Ctx,
    Json(b): Json<PublishRequest>,
) -> ApiResult<(StatusCode, axum::Json<Version>)> {
    let artifact = base64::engine::general_purpose::STANDARD
        .decode(b.artifact_base64.as_bytes())
        .map_err(|_| tenantry_core::Error::invalid("artifact_base64 is not valid base64"))?;
    let signature = b.signature.to_domain();
    let v = registry::publish(
        &s.svc,
        &session,
        &ctx,
        b.manifest.as_bytes(),
        &artifact,
        &signature,
    )
    .await?;
    Ok((StatusCode::CREATED, axum::Json(v.to_wire())))
}
