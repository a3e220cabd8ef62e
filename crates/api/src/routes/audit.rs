//! The org's audit trail.

use axum::extract::State;
use serde::Deserialize;
use tenantry_api_types::{AuditEntry, AuditVerification, CheckpointResult, OrgId};
use tenantry_store::AuditFilter;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::ApiResult;
use crate::extract::{Operator, Path, Query, Tenant};
use crate::wire::ToWire;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(verify))
        .routes(routes!(verify_org))
        .routes(routes!(list_operator))
        .routes(routes!(verify_operator))
        .routes(routes!(checkpoint))
        .routes(routes!(checkpoint_org))
        .routes(routes!(checkpoint_operator))
}

#[derive(Deserialize, IntoParams)]
pub struct AuditQuery {
    /// e.g. `install.create`
    action: Option<String>,
    target: Option<String>,
    actor_id: Option<uuid::Uuid>,
    /// At most this many entries (1-1000, default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

impl AuditQuery {
    fn filter(self) -> ApiResult<AuditFilter> {
        Ok(AuditFilter {
            action: self.action,
            target: self.target,
            actor_id: self.actor_id,
            since: None,
            limit: crate::extract::page_limit("limit", self.limit, 1000)?,
        })
    }
}

/// Audit entries, newest first.
#[utoipa::path(get, path = "/v1/audit", tag = "audit", params(AuditQuery), responses((status = 200, body = Vec<AuditEntry>)))]
async fn list(
    State(s): State<AppState>,
    Tenant(t, _): Tenant,
    Query(q): Query<AuditQuery>,
) -> ApiResult<axum::Json<Vec<AuditEntry>>> {
    let f = q.filter()?;
    Ok(axum::Json(
        tenantry_service::audit::list(&s.svc, &t, &f)
            .await?
            .to_wire(),
    ))
}

/// Check the org's audit trail: every entry against its hash and its link to the
/// entry before. Org admins.
#[utoipa::path(get, path = "/v1/audit/verify", tag = "audit", responses((status = 200, body = AuditVerification)))]
async fn verify(
    State(s): State<AppState>,
    Tenant(t, _): Tenant,
) -> ApiResult<axum::Json<AuditVerification>> {
    Ok(axum::Json(
        tenantry_service::audit::verify(&s.svc, &t).await?.to_wire(),
    ))
}

/// Check an org's audit trail (operator): counts and hashes, no entry's content.
#[utoipa::path(get, path = "/v1/orgs/{org_id}/audit/verify", tag = "audit", params(("org_id" = OrgId, Path)), responses((status = 200, body = AuditVerification)))]
async fn verify_org(
    State(s): State<AppState>,
    Operator(op, _): Operator,
    Path(org): Path<tenantry_core::OrgId>,
) -> ApiResult<axum::Json<AuditVerification>> {
    Ok(axum::Json(
        tenantry_service::audit::verify_as_operator(&s.svc, &op, org)
            .await?
            .to_wire(),
    ))
}

/// The operator's own audit trail, newest first (operator): orgs created, tiers,
/// limits, suspensions, break-glass grants, publishers and their keys, publishes.
#[utoipa::path(get, path = "/v1/operator/audit", tag = "audit", params(AuditQuery), responses((status = 200, body = Vec<AuditEntry>)))]
async fn list_operator(
    State(s): State<AppState>,
    Operator(op, _): Operator,
    Query(q): Query<AuditQuery>,
) -> ApiResult<axum::Json<Vec<AuditEntry>>> {
    let f = q.filter()?;
    Ok(axum::Json(
        tenantry_service::audit::list_operator(&s.svc, &op, &f)
            .await?
            .to_wire(),
    ))
}

/// Check the operator's own audit trail (operator).
#[utoipa::path(get, path = "/v1/operator/audit/verify", tag = "audit", responses((status = 200, body = AuditVerification)))]
async fn verify_operator(
    State(s): State<AppState>,
    Operator(op, _): Operator,
) -> ApiResult<axum::Json<AuditVerification>> {
    Ok(axum::Json(
        tenantry_service::audit::verify_operator(&s.svc, &op)
            .await?
            .to_wire(),
    ))
}

/// Sign a checkpoint of the org's audit trail now (org admins): it pins the trail's
/// last entry with the server's audit key.
#[utoipa::path(post, path = "/v1/audit/checkpoint", tag = "audit", responses((status = 200, body = CheckpointResult)))]
async fn checkpoint(
    State(s): State<AppState>,
    Tenant(t, ctx): Tenant,
) -> ApiResult<axum::Json<CheckpointResult>> {
    Ok(axum::Json(
        tenantry_service::audit::checkpoint(&s.svc, &t, &ctx)
            .await?
            .to_wire(),
    ))
}

/// Sign a checkpoint of an org's audit trail now (operator).
#[utoipa::path(post, path = "/v1/orgs/{org_id}/audit/checkpoint", tag = "audit", params(("org_id" = OrgId, Path)), responses((status = 200, body = CheckpointResult)))]
async fn checkpoint_org(
    State(s): State<AppState>,
    Operator(op, ctx): Operator,
    Path(org): Path<tenantry_core::OrgId>,
) -> ApiResult<axum::Json<CheckpointResult>> {
    Ok(axum::Json(
        tenantry_service::audit::checkpoint_as_operator(&s.svc, &op, &ctx, org)
            .await?
            .to_wire(),
    ))
}

/// Sign a checkpoint of the operator's own audit trail now (operator).
#[utoipa::path(post, path = "/v1/operator/audit/checkpoint", tag = "audit", responses((status = 200, body = CheckpointResult)))]
async fn checkpoint_operator(
    State(s): State<AppState>,
    Operator(op, ctx): Operator,
) -> ApiResult<axum::Json<CheckpointResult>> {
    Ok(axum::Json(
        tenantry_service::audit::checkpoint_operator(&s.svc, &op, &ctx)
            .await?
            .to_wire(),
    ))
}
