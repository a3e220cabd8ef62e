//! Publishing a signed version (its own module: it has a larger body limit).

use axum::extract::State;
use axum::http::StatusCode;
use base64::Engine;
use serde::Deserialize;
use tenantry_service::registry::{self, DetachedSignature};
use tenantry_store::VersionRecord;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::ApiResult;
use crate::extract::{Authed, Json};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(publish))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishRequest {
    /// The manifest JSON text exactly as signed.
    manifest: String,
    /// The component, base64.
    artifact_base64: String,
    signature: DetachedSignature,
}

/// Publish a signed plugin version. Any authenticated principal may call it; the
/// signature decides whether it is accepted.
#[utoipa::path(post, path = "/v1/plugins", tag = "registry", request_body = PublishRequest, responses((status = 201, body = VersionRecord)))]
async fn publish(
    State(s): State<AppState>,
    _auth: Authed,
    Json(b): Json<PublishRequest>,
) -> ApiResult<(StatusCode, axum::Json<VersionRecord>)> {
    let artifact = base64::engine::general_purpose::STANDARD
        .decode(b.artifact_base64.as_bytes())
        .map_err(|_| tenantry_core::Error::invalid("artifact_base64 is not valid base64"))?;
    let v = registry::publish(&s.svc, b.manifest.as_bytes(), &artifact, &b.signature).await?;
    Ok((StatusCode::CREATED, axum::Json(v)))
}
