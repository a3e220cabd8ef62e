//! The operator's key management: its own API keys, and rotating the master key
//! while serving.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use tenantry_api_types::{CreateOperatorKey, CreatedOperatorKey, MasterKeyRotation, OperatorKey};
use tenantry_service::operators;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::ApiResult;
use crate::extract::{Json, Operator, Path, Query};
use crate::wire::ToWire;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(rotate_master))
        .routes(routes!(create_operator_key, list_operator_keys))
        .routes(routes!(revoke_operator_key))
}

/// Create an operator key (operator): shown once. Several named keys let the
/// operator rotate its own key and revoke a leaked one. Audited in the operator's
/// trail.
#[utoipa::path(post, path = "/v1/operator/keys", tag = "orgs", request_body = CreateOperatorKey, responses((status = 201, body = CreatedOperatorKey)))]
async fn create_operator_key(
    State(s): State<AppState>,
    Operator(op, ctx): Operator,
    Json(b): Json<CreateOperatorKey>,
) -> ApiResult<(StatusCode, axum::Json<CreatedOperatorKey>)> {
    let created = operators::create(&s.svc, &op, &ctx, &b.name, b.expires_at).await?;
    Ok((StatusCode::CREATED, axum::Json(created.to_wire())))
}

/// List operator keys (operator), revoked and expired ones included; never a hash.
#[utoipa::path(get, path = "/v1/operator/keys", tag = "orgs", responses((status = 200, body = Vec<OperatorKey>)))]
async fn list_operator_keys(
    State(s): State<AppState>,
    Operator(op, _): Operator,
) -> ApiResult<axum::Json<Vec<OperatorKey>>> {
    Ok(axum::Json(operators::list(&s.svc, &op).await?.to_wire()))
}

/// Revoke an operator key (operator), from the next request on. The last usable key
/// cannot be revoked (`409 CONFLICT`): create another first.
#[utoipa::path(delete, path = "/v1/operator/keys/{key_id}", tag = "orgs", params(("key_id" = tenantry_api_types::ApiKeyId, Path)), responses((status = 200, body = OperatorKey)))]
async fn revoke_operator_key(
    State(s): State<AppState>,
    Operator(op, ctx): Operator,
    Path(id): Path<tenantry_core::ApiKeyId>,
) -> ApiResult<axum::Json<OperatorKey>> {
    Ok(axum::Json(
        operators::revoke(&s.svc, &op, &ctx, id).await?.to_wire(),
    ))
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
