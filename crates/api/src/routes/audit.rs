//! The org's audit trail.

use axum::extract::State;
use serde::Deserialize;
use tenantry_api_types::AuditEntry;
use tenantry_store::AuditFilter;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::ApiResult;
use crate::extract::{Query, Tenant};
use crate::wire::ToWire;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list))
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

/// Audit entries, newest first.
#[utoipa::path(get, path = "/v1/audit", tag = "audit", params(AuditQuery), responses((status = 200, body = Vec<AuditEntry>)))]
async fn list(
    State(s): State<AppState>,
    Tenant(t, _): Tenant,
    Query(q): Query<AuditQuery>,
) -> ApiResult<axum::Json<Vec<AuditEntry>>> {
    let f = AuditFilter {
        action: q.action,
        target: q.target,
        actor_id: q.actor_id,
        since: None,
        limit: crate::extract::page_limit("limit", q.limit, 1000)?,
    };
    Ok(axum::Json(
        tenantry_service::audit::list(&s.svc, &t, &f)
            .await?
            .to_wire(),
    ))
}
