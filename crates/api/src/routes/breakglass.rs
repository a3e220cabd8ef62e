//! Break-glass: the operator opens, lists and closes grants in an org; the org's
//! admins list them and may close one.

use axum::extract::State;
use axum::http::StatusCode;
use tenantry_api_types::{ApiKeyId, BreakGlassGrant, OpenBreakGlass, OpenedBreakGlass, OrgId};
use tenantry_core::Error;
use tenantry_service::breakglass::{self, OpenRequest};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::ApiResult;
use crate::extract::{Json, Operator, Path, Tenant};
use crate::wire::breakglass::{grant, grants, opened};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(open, list_org))
        .routes(routes!(close_org))
        .routes(routes!(approve))
        .routes(routes!(list))
        .routes(routes!(close))
}

/// A grant row that does not read back as one is a bug, not the caller's fault.
fn shown<T>(v: Option<T>) -> ApiResult<T> {
    v.ok_or_else(|| {
        tracing::error!("a break-glass grant without its ticket or expiry");
        Error::internal().into()
    })
}

/// Open a break-glass grant in an org (operator): a token for that org only, tied to
/// a ticket, read-only unless `write`, that expires after `ttl_seconds`. Every
/// request made with it is audited in the org.
#[utoipa::path(post, path = "/v1/orgs/{org_id}/breakglass", tag = "breakglass", request_body = OpenBreakGlass, params(("org_id" = OrgId, Path)), responses((status = 201, body = OpenedBreakGlass)))]
async fn open(
    State(s): State<AppState>,
    Operator(op, ctx): Operator,
    Path(org): Path<tenantry_core::OrgId>,
    Json(b): Json<OpenBreakGlass>,
) -> ApiResult<(StatusCode, axum::Json<OpenedBreakGlass>)> {
    let req = OpenRequest {
        ticket: b.ticket,
        reason: b.reason,
        ttl: time::Duration::seconds(b.ttl_seconds.into()),
        write: b.write,
    };
    let k = breakglass::open(&s.svc, &op, &ctx, org, &req).await?;
    Ok((StatusCode::CREATED, axum::Json(shown(opened(k))?)))
}

/// An org's break-glass grants, open and past, newest first (operator).
#[utoipa::path(get, path = "/v1/orgs/{org_id}/breakglass", tag = "breakglass", params(("org_id" = OrgId, Path)), responses((status = 200, body = Vec<BreakGlassGrant>)))]
async fn list_org(
    State(s): State<AppState>,
    Operator(op, _): Operator,
    Path(org): Path<tenantry_core::OrgId>,
) -> ApiResult<axum::Json<Vec<BreakGlassGrant>>> {
    Ok(axum::Json(grants(
        breakglass::list_as_operator(&s.svc, &op, org).await?,
    )))
}

/// Close a grant early (operator).
#[utoipa::path(post, path = "/v1/orgs/{org_id}/breakglass/{grant_id}/close", tag = "breakglass", params(("org_id" = OrgId, Path), ("grant_id" = ApiKeyId, Path)), responses((status = 200, body = BreakGlassGrant)))]
async fn close_org(
    State(s): State<AppState>,
    Operator(op, ctx): Operator,
    Path((org, id)): Path<(tenantry_core::OrgId, tenantry_core::ApiKeyId)>,
) -> ApiResult<axum::Json<BreakGlassGrant>> {
    let g = breakglass::close_as_operator(&s.svc, &op, &ctx, org, id).await?;
    Ok(axum::Json(shown(grant(g))?))
}

/// Approve a pending grant (operator; another operator key than the one that opened
/// it): where the server asks for a second operator (`breakglass_approval`), a
/// grant's token works only once approved. `409 CONFLICT` if it is not pending or
/// no longer open; `403` for the opener's own key.
#[utoipa::path(post, path = "/v1/orgs/{org_id}/breakglass/{grant_id}/approve", tag = "breakglass", params(("org_id" = OrgId, Path), ("grant_id" = ApiKeyId, Path)), responses((status = 200, body = BreakGlassGrant)))]
async fn approve(
    State(s): State<AppState>,
    Operator(op, ctx): Operator,
    Path((org, id)): Path<(tenantry_core::OrgId, tenantry_core::ApiKeyId)>,
) -> ApiResult<axum::Json<BreakGlassGrant>> {
    let g = breakglass::approve(&s.svc, &op, &ctx, org, id).await?;
    Ok(axum::Json(shown(grant(g))?))
}

/// The operator's break-glass grants in this org, open and past, newest first (org
/// admins).
#[utoipa::path(get, path = "/v1/breakglass", tag = "breakglass", responses((status = 200, body = Vec<BreakGlassGrant>)))]
async fn list(
    State(s): State<AppState>,
    Tenant(t, _): Tenant,
) -> ApiResult<axum::Json<Vec<BreakGlassGrant>>> {
    Ok(axum::Json(grants(breakglass::list(&s.svc, &t).await?)))
}

/// End the operator's break-glass grant in this org early (owners and admins).
#[utoipa::path(delete, path = "/v1/breakglass/{grant_id}", tag = "breakglass", params(("grant_id" = ApiKeyId, Path)), responses((status = 200, body = BreakGlassGrant)))]
async fn close(
    State(s): State<AppState>,
    Tenant(t, ctx): Tenant,
    Path(id): Path<tenantry_core::ApiKeyId>,
) -> ApiResult<axum::Json<BreakGlassGrant>> {
    let g = breakglass::close(&s.svc, &t, &ctx, id).await?;
    Ok(axum::Json(shown(grant(g))?))
}
