//! The org's usage events.

use axum::extract::{Query, State};
use serde::Deserialize;
use tenantry_core::InstallId;
use tenantry_store::{UsageEvent, UsageFilter};
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::ApiResult;
use crate::extract::Tenant;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list))
}

#[derive(Deserialize, IntoParams)]
pub struct UsageQuery {
    install_id: Option<InstallId>,
    limit: Option<u32>,
}

/// Usage events (one per invocation), oldest first.
#[utoipa::path(get, path = "/v1/usage", tag = "usage", params(UsageQuery), responses((status = 200, body = Vec<UsageEvent>)))]
async fn list(
    State(s): State<AppState>,
    Tenant(t, _): Tenant,
    Query(q): Query<UsageQuery>,
) -> ApiResult<axum::Json<Vec<UsageEvent>>> {
    let f = UsageFilter {
        install_id: q.install_id,
        limit: q.limit,
        ..UsageFilter::default()
    };
    Ok(axum::Json(
        tenantry_service::usage::list(&s.svc, &t, &f).await?,
    ))
}
