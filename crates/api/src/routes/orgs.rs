//! Orgs: operator provisioning, and an org principal's view of its own org.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use tenantry_api_types::{
    CreateOrg, CreatedKey, DeletedOrg, ExportLine, KeyRotation, LimitsView, Org, OrgId, OrgView,
    ProvisionKey, ProvisionUser, SetTier, SuspendOrg, TierOverrides, User,
};
use tenantry_service::orgs;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::ApiResult;
use crate::extract::{Json, Operator, Path, Tenant};
use crate::wire::{ToDomain, ToWire};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_org, list_orgs))
        .routes(routes!(set_tier, delete_org))
        .routes(routes!(suspend))
        .routes(routes!(resume))
        .routes(routes!(provision_user, list_org_users))
        .routes(routes!(provision_key))
        .routes(routes!(current_org))
        .routes(routes!(export_org))
        .routes(routes!(rotate_key))
        .routes(routes!(set_limits))
        .routes(routes!(limits))
}

/// Create an org (operator).
#[utoipa::path(post, path = "/v1/orgs", tag = "orgs", request_body = CreateOrg, responses((status = 201, body = Org)))]
async fn create_org(
    State(s): State<AppState>,
    Operator(op, ctx): Operator,
    Json(b): Json<CreateOrg>,
) -> ApiResult<(StatusCode, axum::Json<Org>)> {
    let org = orgs::create(&s.svc, &op, &ctx, &b.name, b.tier.as_deref()).await?;
    Ok((StatusCode::CREATED, axum::Json(org.to_wire())))
}

/// List orgs (operator).
#[utoipa::path(get, path = "/v1/orgs", tag = "orgs", responses((status = 200, body = Vec<Org>)))]
async fn list_orgs(
    State(s): State<AppState>,
    Operator(op, _): Operator,
) -> ApiResult<axum::Json<Vec<Org>>> {
    Ok(axum::Json(orgs::list(&s.svc, &op).await?.to_wire()))
}

/// Change an org's tier (operator).
#[utoipa::path(patch, path = "/v1/orgs/{org_id}", tag = "orgs", request_body = SetTier, params(("org_id" = OrgId, Path)), responses((status = 200, body = Org)))]
async fn set_tier(
    State(s): State<AppState>,
    Operator(op, ctx): Operator,
    Path(org): Path<tenantry_core::OrgId>,
    Json(b): Json<SetTier>,
) -> ApiResult<axum::Json<Org>> {
    Ok(axum::Json(
        orgs::set_tier(&s.svc, &op, &ctx, org, &b.tier)
            .await?
            .to_wire(),
    ))
}

/// Delete a suspended org (operator): its key-encryption key is destroyed in the
/// key vault (crypto-shredding: its secrets decrypt from no copy of its data, old
/// backups included), its data is erased (the embedded file, or every pooled row,
/// its audit trail included: export it first), and its directory row goes, leaving
/// a tombstone so the id is never reused. The operator's trail records it.
/// `409 CONFLICT` while the org is not suspended. Repeat it after a failure: the
/// steps resume.
#[utoipa::path(delete, path = "/v1/orgs/{org_id}", tag = "orgs", params(("org_id" = OrgId, Path)), responses((status = 200, body = DeletedOrg)))]
async fn delete_org(
    State(s): State<AppState>,
    Operator(op, ctx): Operator,
    Path(org): Path<tenantry_core::OrgId>,
) -> ApiResult<axum::Json<DeletedOrg>> {
    Ok(axum::Json(
        orgs::delete(&s.svc, &op, &ctx, org).await?.to_wire(),
    ))
}

/// Suspend an org (operator): every key of the org is refused with `ORG_SUSPENDED`
/// until it is resumed; running invocations finish; its data is kept. The reason is
/// kept in the org's audit trail.
#[utoipa::path(post, path = "/v1/orgs/{org_id}/suspend", tag = "orgs", request_body = SuspendOrg, params(("org_id" = OrgId, Path)), responses((status = 200, body = Org)))]
async fn suspend(
    State(s): State<AppState>,
    Operator(op, ctx): Operator,
    Path(org): Path<tenantry_core::OrgId>,
    Json(b): Json<SuspendOrg>,
) -> ApiResult<axum::Json<Org>> {
    Ok(axum::Json(
        orgs::suspend(&s.svc, &op, &ctx, org, &b.reason)
            .await?
            .to_wire(),
    ))
}

/// Resume a suspended org (operator): its keys work again.
#[utoipa::path(post, path = "/v1/orgs/{org_id}/resume", tag = "orgs", params(("org_id" = OrgId, Path)), responses((status = 200, body = Org)))]
async fn resume(
    State(s): State<AppState>,
    Operator(op, ctx): Operator,
    Path(org): Path<tenantry_core::OrgId>,
) -> ApiResult<axum::Json<Org>> {
    Ok(axum::Json(
        orgs::resume(&s.svc, &op, &ctx, org).await?.to_wire(),
    ))
}

/// Add a user to an org (operator provisioning, e.g. the first owner).
#[utoipa::path(post, path = "/v1/orgs/{org_id}/users", tag = "orgs", request_body = ProvisionUser, params(("org_id" = OrgId, Path)), responses((status = 201, body = User)))]
async fn provision_user(
    State(s): State<AppState>,
    Operator(op, ctx): Operator,
    Path(org): Path<tenantry_core::OrgId>,
    Json(b): Json<ProvisionUser>,
) -> ApiResult<(StatusCode, axum::Json<User>)> {
    let scope = orgs::enter(&s.svc, &op, org).await?;
    let u = tenantry_service::members::add_user(&s.svc, &scope, &ctx, &b.name, b.role.to_domain())
        .await?;
    Ok((StatusCode::CREATED, axum::Json(u.to_wire())))
}

/// List an org's users (operator provisioning, e.g. to find a user's id).
#[utoipa::path(get, path = "/v1/orgs/{org_id}/users", tag = "orgs", params(("org_id" = OrgId, Path)), responses((status = 200, body = Vec<User>)))]
async fn list_org_users(
    State(s): State<AppState>,
    Operator(op, _): Operator,
    Path(org): Path<tenantry_core::OrgId>,
) -> ApiResult<axum::Json<Vec<User>>> {
    let scope = orgs::enter(&s.svc, &op, org).await?;
    Ok(axum::Json(
        tenantry_service::members::list_users(&s.svc, &scope)
            .await?
            .to_wire(),
    ))
}

/// Issue an API key for a user or agent of an org (operator provisioning).
#[utoipa::path(post, path = "/v1/orgs/{org_id}/keys", tag = "orgs", request_body = ProvisionKey, params(("org_id" = OrgId, Path)), responses((status = 201, body = CreatedKey)))]
async fn provision_key(
    State(s): State<AppState>,
    Operator(op, ctx): Operator,
    Path(org): Path<tenantry_core::OrgId>,
    Json(b): Json<ProvisionKey>,
) -> ApiResult<(StatusCode, axum::Json<CreatedKey>)> {
    let scope = orgs::enter(&s.svc, &op, org).await?;
    let k = tenantry_service::members::create_key(
        &s.svc,
        &scope,
        &ctx,
        b.owner.to_domain(),
        &b.name,
        b.expires_at,
    )
    .await?;
    Ok((StatusCode::CREATED, axum::Json(k.to_wire())))
}

/// The caller's org and effective permissions.
#[utoipa::path(get, path = "/v1/org", tag = "orgs", responses((status = 200, body = OrgView)))]
async fn current_org(
    State(s): State<AppState>,
    Tenant(scope, _): Tenant,
) -> ApiResult<axum::Json<OrgView>> {
    Ok(axum::Json(orgs::current(&s.svc, &scope).await?.to_wire()))
}

/// Rotate the org's key (owners): a new version, every secret sealed again under it,
/// the older versions deleted, in one transaction (no secret is unreadable at any
/// moment). An org whose keys were wrapped by the master key alone gets its own
/// key-encryption key in the key vault, so deleting it later shreds them.
#[utoipa::path(post, path = "/v1/org/key/rotate", tag = "orgs", responses((status = 200, body = KeyRotation)))]
async fn rotate_key(
    State(s): State<AppState>,
    Tenant(scope, ctx): Tenant,
) -> ApiResult<axum::Json<KeyRotation>> {
    Ok(axum::Json(
        tenantry_service::secrets::rotate_org_key(&s.svc, &scope, &ctx)
            .await?
            .to_wire(),
    ))
}

/// Export the caller's org (admins and owners; an operator through a break-glass
/// grant): its members, agents and keys (metadata), installs with config, grants and
/// secret names (never values), bindings, key-value data, usage and audit trail (with
/// its hashes), streamed as JSON lines. The first line is `export`, the last `end`;
/// a failure mid-stream aborts the body, so a download without `end` is incomplete.
/// Recorded in the org's trail as `org.export`.
#[utoipa::path(get, path = "/v1/org/export", tag = "orgs", responses((status = 200, description = "JSON lines, one `ExportLine` each", content((ExportLine = "application/x-ndjson")))))]
async fn export_org(State(s): State<AppState>, Tenant(scope, ctx): Tenant) -> ApiResult<Response> {
    let export = tenantry_service::export::begin(&s.svc, &scope, &ctx).await?;
    let (items, rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(export.run(s.svc.clone(), items));
    let body = futures::stream::unfold(rx, |mut rx| async move {
        let line = match rx.recv().await? {
            Ok(item) => serde_json::to_vec(&item.to_wire())
                .map(|mut line| {
                    line.push(b'\n');
                    Bytes::from(line)
                })
                .map_err(std::io::Error::other),
            Err(e) => {
                // The body is aborted: no `end` line, and the client sees an error.
                tracing::error!(code = %e.code, "org export failed mid-stream");
                Err(std::io::Error::other(e.code.as_str()))
            }
        };
        Some((line, rx))
    });
    Ok((
        [
            (header::CONTENT_TYPE, "application/x-ndjson"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"org-export.jsonl\"",
            ),
        ],
        Body::from_stream(body),
    )
        .into_response())
}

/// Replace an org's per-org limit overrides (operator). Fields left out keep the
/// tier's value; `{}` clears every override.
#[utoipa::path(put, path = "/v1/orgs/{org_id}/limits", tag = "orgs", request_body = TierOverrides, params(("org_id" = OrgId, Path)), responses((status = 200, body = Org)))]
async fn set_limits(
    State(s): State<AppState>,
    Operator(op, ctx): Operator,
    Path(org): Path<tenantry_core::OrgId>,
    Json(b): Json<TierOverrides>,
) -> ApiResult<axum::Json<Org>> {
    Ok(axum::Json(
        orgs::set_overrides(&s.svc, &op, &ctx, org, &b.to_domain())
            .await?
            .to_wire(),
    ))
}

/// The caller's org's effective limits (its tier with overrides) and where it stands
/// against its billing quotas in the current windows (any member).
#[utoipa::path(get, path = "/v1/limits", tag = "orgs", responses((status = 200, body = LimitsView)))]
async fn limits(
    State(s): State<AppState>,
    Tenant(scope, _): Tenant,
) -> ApiResult<axum::Json<LimitsView>> {
    Ok(axum::Json(orgs::limits(&s.svc, &scope).await?.to_wire()))
}
