//! Break-glass: the operator's only way into an org's data once the org is live.
//!
//! Outside break-glass the operator manages orgs (create, tier, limits, suspend) and
//! provisions an org's first members and keys while no member holds a key yet
//! ([`crate::orgs::enter`]); nothing else in an org. A break-glass grant is a token
//! for one org, tied to a ticket and a reason, that expires (at most
//! [`crate::Settings::breakglass_max_ttl`] after it opens) and is read-only unless
//! opened with `write` (then it may do what an owner may). It is an API key row of
//! the org (principal kind `operator`, with its ticket, reason and access), so:
//!
//! - every request made with it is an audit entry of the org (`breakglass.request`,
//!   [`record_request`]), and every change it makes carries its ticket;
//! - its opening and closing are audit entries of the org (`breakglass.open`,
//!   `breakglass.close`), and the org's admins list its grants, open and past
//!   ([`list`]), and may close one early ([`close`]);
//! - once expired or closed it is refused exactly like an unknown key, on every node
//!   at once (a write to `api_keys` moves the org's generation).

use serde_json::json;
use tenantry_core::scope::BreakGlass;
use tenantry_core::text::check_line;
use tenantry_core::{
    ApiKeyId, Error, ErrorCode, OperatorScope, OrgId, Permission, PrincipalKind, Result,
    TenantScope,
};
use tenantry_crypto::generate_api_key;
use tenantry_store::{ApiKeyRecord, TenantTx};
use time::Duration;

use crate::members::{CreatedKey, issue};
use crate::{RequestCtx, Service, audit_entry};

/// What the operator asks for.
#[derive(Debug, Clone)]
pub struct OpenRequest {
    pub ticket: String,
    pub reason: String,
    pub ttl: Duration,
    pub write: bool,
}

/// Opens a break-glass grant in `org`; the token is in the answer, once.
pub async fn open(
    svc: &Service,
    op: &OperatorScope,
    ctx: &RequestCtx,
    org: OrgId,
    req: &OpenRequest,
) -> Result<CreatedKey> {
    check_line("ticket", &req.ticket, 100)?;
    check_line("reason", &req.reason, 500)?;
    let max = svc.settings.breakglass_max_ttl;
    if req.ttl <= Duration::ZERO || req.ttl > max {
        return Err(Error::invalid(format!(
            "ttl must be between 1 second and {} minutes (the server's breakglass_max_ttl_minutes)",
            max.whole_minutes()
        )));
    }
    svc.org(org).await?;
    let scope = op.enter_org(org);
    let tx = svc.write(&scope).await?;
    let new = generate_api_key();
    let now = tenantry_core::now();
    let grant = BreakGlass {
        ticket: req.ticket.trim().to_string(),
        reason: req.reason.trim().to_string(),
        write: req.write,
        pending: svc.settings.breakglass_approval,
        approved_by: None,
        approved_at: None,
    };
    let record = ApiKeyRecord {
        id: ApiKeyId::new(),
        name: format!("break-glass {}", grant.ticket),
        principal_kind: PrincipalKind::Operator,
        principal_id: scope.actor().id,
        prefix: new.prefix.clone(),
        hash: new.hash,
        created_at: now,
        expires_at: Some(now + req.ttl),
        revoked_at: None,
        last_used_at: None,
        breakglass: Some(grant.clone()),
    };
    let entry = audit_entry(
        &scope,
        ctx,
        "breakglass.open",
        record.id.to_string(),
        json!({
            "ticket": grant.ticket,
            "reason": grant.reason,
            "access": if grant.write { "write" } else { "read" },
            "expires_at": record.expires_at.map(|t| t.unix_timestamp()),
            "pending_approval": grant.pending,
        }),
    );
    let details = json!({"org_id": org, "grant": record.id, "ticket": grant.ticket, "access": if grant.write { "write" } else { "read" }});
    let opened = issue(svc, tx, &scope, record, new, entry).await?;
    crate::audit::record_platform(
        svc,
        &op.operator_log(),
        ctx,
        "breakglass.open",
        org.to_string(),
        details,
    )
    .await;
    Ok(opened)
}

/// Approves a pending grant (where the server asks for a second operator): only
/// another operator key than the one that opened it may, while the grant is open.
/// From the next request on its token works. Audited in the org and in the
/// operator's trail.
pub async fn approve(
    svc: &Service,
    op: &OperatorScope,
    ctx: &RequestCtx,
    org: OrgId,
    id: ApiKeyId,
) -> Result<ApiKeyRecord> {
    svc.org(org).await?;
    let scope = op.enter_org(org);
    let mut tx = svc.write(&scope).await?;
    let record = grant_of(&mut tx, id).await?;
    let now = tenantry_core::now();
    let approver = *op.key_id().as_uuid();
    let pending = record.breakglass.as_ref().is_some_and(|g| g.pending);
    if !pending {
        return Err(Error::new(
            ErrorCode::Conflict,
            "this grant is not waiting for an approval (approved already, or none was asked)",
        ));
    }
    if record.revoked_at.is_some() || record.expires_at.is_none_or(|e| e <= now) {
        return Err(Error::new(
            ErrorCode::Conflict,
            "this grant is closed or expired; open a new one",
        ));
    }
    if record.principal_id == approver {
        return Err(Error::denied(
            "a second operator must approve: use another operator key than the one that opened the grant",
        ));
    }
    tx.approve_breakglass(id, approver, now).await?;
    let ticket = record.breakglass.as_ref().map(|g| g.ticket.clone());
    let entry = audit_entry(
        &scope,
        ctx,
        "breakglass.approve",
        id.to_string(),
        json!({"ticket": ticket}),
    );
    svc.finish(tx, entry).await?;
    let details = json!({"org_id": org, "grant": id, "ticket": ticket});
    crate::audit::record_platform(
        svc,
        &op.operator_log(),
        ctx,
        "breakglass.approve",
        org.to_string(),
        details,
    )
    .await;
    let mut record = record;
    if let Some(g) = record.breakglass.as_mut() {
        g.pending = false;
        g.approved_by = Some(approver);
        g.approved_at = Some(now);
    }
    Ok(record)
}

/// The break-glass grant `id` of the transaction's org.
async fn grant_of(tx: &mut Box<dyn TenantTx>, id: ApiKeyId) -> Result<ApiKeyRecord> {
    tx.get_api_key(id)
        .await?
        .filter(|k| k.breakglass.is_some())
        .ok_or_else(|| Error::not_found("break-glass grant"))
}

/// The org's break-glass grants, newest first: for its admins (`read_audit`) and,
/// through [`list_as_operator`], the operator. Metadata only, never a token.
pub async fn list(svc: &Service, scope: &TenantScope) -> Result<Vec<ApiKeyRecord>> {
    scope.require(Permission::ReadAudit)?;
    grants(svc, scope).await
}

async fn grants(svc: &Service, scope: &TenantScope) -> Result<Vec<ApiKeyRecord>> {
    let mut all: Vec<_> = svc
        .read(scope)
        .await?
        .list_api_keys()
        .await?
        .into_iter()
        .filter(|k| k.breakglass.is_some())
        .collect();
    all.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
    Ok(all)
}

/// [`list`] for the operator, in any org that exists.
pub async fn list_as_operator(
    svc: &Service,
    op: &OperatorScope,
    org: OrgId,
) -> Result<Vec<ApiKeyRecord>> {
    svc.org(org).await?;
    grants(svc, &op.enter_org(org)).await
}

/// Ends a grant early (closing a closed or expired one changes nothing). The org's
/// owners and admins (`manage_keys`) may close a grant of their org; the operator
/// any, through [`close_as_operator`].
pub async fn close(
    svc: &Service,
    scope: &TenantScope,
    ctx: &RequestCtx,
    id: ApiKeyId,
) -> Result<ApiKeyRecord> {
    scope.require(Permission::ManageKeys)?;
    let mut tx = svc.write(scope).await?;
    let record = grant_of(&mut tx, id).await?;
    if record.revoked_at.is_some() {
        return Ok(record);
    }
    let now = tenantry_core::now();
    tx.revoke_api_key(id, now).await?;
    let entry = audit_entry(
        scope,
        ctx,
        "breakglass.close",
        id.to_string(),
        json!({"ticket": record.breakglass.as_ref().map(|g| g.ticket.clone())}),
    );
    svc.finish(tx, entry).await?;
    // In the operator's trail too, whoever closed it.
    let log = tenantry_core::Session::Tenant(scope.clone()).operator_log_writer();
    let details = json!({"org_id": scope.org_id(), "grant": id});
    crate::audit::record_platform(
        svc,
        &log,
        ctx,
        "breakglass.close",
        scope.org_id().to_string(),
        details,
    )
    .await;
    Ok(ApiKeyRecord {
        revoked_at: Some(now),
        ..record
    })
}

/// [`close`] by the operator, in any org that exists.
pub async fn close_as_operator(
    svc: &Service,
    op: &OperatorScope,
    ctx: &RequestCtx,
    org: OrgId,
    id: ApiKeyId,
) -> Result<ApiKeyRecord> {
    svc.org(org).await?;
    close(svc, &op.enter_org(org), ctx, id).await
}

/// Records one request made with a break-glass token in the org's audit trail
/// (`breakglass.request`: the method and path, the ticket), before the request is
/// served: a request that cannot be recorded is not served.
pub async fn record_request(
    svc: &Service,
    scope: &TenantScope,
    ctx: &RequestCtx,
    method: &str,
    path: &str,
) -> Result<()> {
    if scope.breakglass().is_none() {
        return Ok(());
    }
    let tx = svc.write(scope).await?;
    let path: String = path.chars().take(512).collect();
    let entry = audit_entry(
        scope,
        ctx,
        "breakglass.request",
        path,
        json!({"method": method}),
    );
    svc.finish(tx, entry).await
}
