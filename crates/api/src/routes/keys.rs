//! The operator's key management: rotating the master key while serving.

use axum::extract::State;
use serde::Deserialize;
use tenantry_api_types::MasterKeyRotation;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::ApiResult;
use crate::extract::{Operator, Query};
use crate::wire::ToWire;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(rotate_master))
}

#[derive(Deserialize, IntoParams)]
pub struct RotateQuery {
    /// At most this many orgs changed by this call (1-10000, default 100); run it
    /// again while `remaining` is above zero.
    #[param(minimum = 1, maximum = 10000)]
    limit: Option<u32>,
}

/// Seal again under the new master key whatever still needs the one being retired
/// (operator; needs `previous_master_key_file` on the server, else `409 CONFLICT`):
/// vault files, and org keys wrapped by the old master key alone (rotated). Each
/// step is whole on its own, so an interrupted rotation resumes when run again.
#[utoipa::path(post, path = "/v1/operator/master-key/rotate", tag = "orgs", params(RotateQuery), responses((status = 200, body = MasterKeyRotation)))]
async fn rotate_master(
    State(s): State<AppState>,
    Operator(op, ctx): Operator,
    Query(q): Query<RotateQuery>,
) -> ApiResult<axum::Json<MasterKeyRotation>> {
    let limit = crate::extract::page_limit("limit", q.limit, 10_000)?.unwrap_or(100);
    Ok(axum::Json(
        tenantry_service::keys::rotate_master(&s.svc, &op, &ctx, limit)
            .await?
            .to_wire(),
    ))
}
