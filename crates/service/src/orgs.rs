//! Orgs (tenants) and the operator's own credentials.

use serde_json::json;
use tenantry_core::manifest::validate_ident;
use tenantry_core::{
    ApiKeyId, Error, ErrorCode, OperatorScope, OrgId, Permission, Result, TenantScope,
};
use tenantry_crypto::{OrgKek, OrgKey, SecretValue, generate_api_key, wrap_org_key};
use tenantry_store::{OperatorKeyRecord, OrgKeyRecord, OrgRecord, Seen};

use crate::{RequestCtx, Service, audit_entry};

/// Creates an operator key if there is no usable one (none yet, or every one revoked
/// or expired: the way back in for whoever holds the data directory). Returns it
/// (shown once), or `None` if a usable operator key exists.
pub async fn bootstrap_operator(svc: &Service) -> Result<Option<SecretValue>> {
    let now = tenantry_core::now();
    let usable = svc
        .control
        .list_operator_keys()
        .await?
        .iter()
        .any(|k| k.revoked_at.is_none() && k.expires_at.is_none_or(|e| e > now));
    if usable {
        return Ok(None);
    }
    let key = generate_api_key();
    svc.control
        .insert_operator_key(&OperatorKeyRecord {
            id: ApiKeyId::new(),
            name: "bootstrap".into(),
            hash: key.hash,
            created_at: tenantry_core::now(),
            expires_at: None,
            revoked_at: None,
        })
        .await?;
    Ok(Some(key.plaintext))
}

fn check_tier(svc: &Service, tier: &str) -> Result<()> {
    if svc.settings.tiers.contains_key(tier) {
        Ok(())
    } else {
        let known: Vec<&str> = svc.settings.tiers.keys().map(String::as_str).collect();
        Err(Error::invalid(format!(
            "unknown tier '{}'; known tiers: {}",
            tenantry_core::error::clip(tier),
            known.join(", ")
        )))
    }
}

/// Creates an org: its directory row, its own store, and its first wrapped key.
pub async fn create(
    svc: &Service,
    op: &OperatorScope,
    ctx: &RequestCtx,
    name: &str,
    tier: Option<&str>,
) -> Result<OrgRecord> {
    validate_ident("org name", name)?;
    let tier = tier.unwrap_or(&svc.settings.default_tier);
    check_tier(svc, tier)?;
    if svc.settings.pilot.max_orgs.is_some() {
        // A pilot's cap (a handful of orgs): counting them is cheap. Two creations at
        // the same instant may both pass; the cap is a guardrail, not a quota.
        let existing = svc.control.list_orgs().await?.len() as u64;
        svc.settings.pilot.check_new_org(existing)?;
    }
    let org = OrgRecord {
        id: OrgId::new(),
        name: name.into(),
        tier: tier.into(),
        overrides: Default::default(),
        created_at: tenantry_core::now(),
        suspended_at: None,
    };
    // The tenant store first: an org row never points at a missing store. A failure
    // after this leaves an unreferenced, empty store file, which is harmless.
    svc.tenants.create_tenant(org.id).await?;
    let kek = match &svc.key_vault {
        Some(vault) => vault.create(&svc.master_key, org.id).map_err(|e| {
            crate::secrets::vault_unwritable(org.id, "cannot write the org's vault file", e)
        })?,
        None => OrgKek::legacy(&svc.master_key),
    };
    let scope = op.enter_org(org.id);
    let key = OrgKey::generate();
    let mut tx = svc.write(&scope).await?;
    tx.insert_org_key(&OrgKeyRecord {
        version: 1,
        wrapped: wrap_org_key(&kek, org.id, 1, &key),
        created_at: org.created_at,
    })
    .await?;
    svc.control.insert_org(&org).await.map_err(|e| match e {
        tenantry_store::StoreError::Conflict(_) => Error::new(
            ErrorCode::Conflict,
            format!("an org named '{name}' already exists; pick another name"),
        ),
        e => e.into(),
    })?;
    let entry = audit_entry(
        &scope,
        ctx,
        "org.create",
        org.id.to_string(),
        json!({"name": name, "tier": tier}),
    );
    svc.finish(tx, entry).await?;
    let log = op.operator_log();
    let details = json!({"name": name, "tier": tier});
    crate::audit::record_platform(svc, &log, ctx, "org.create", org.id.to_string(), details).await;
    Ok(org)
}

pub async fn list(svc: &Service, _op: &OperatorScope) -> Result<Vec<OrgRecord>> {
    Ok(svc.control.list_orgs().await?)
}

/// The operator's provisioning scope in `org` ([`OperatorScope::enter_org`]: members
/// and keys only), once the org is known to exist and while it is still being set
/// up: no member holds a usable key yet. Once one does, the org is its members' and
/// the operator needs a break-glass grant ([`crate::breakglass`]).
pub async fn enter(svc: &Service, op: &OperatorScope, org: OrgId) -> Result<TenantScope> {
    svc.org(org).await?;
    let scope = op.enter_org(org);
    let now = tenantry_core::now();
    let live = svc
        .read(&scope)
        .await?
        .list_api_keys()
        .await?
        .iter()
        .any(|k| {
            k.breakglass.is_none() && k.revoked_at.is_none() && k.expires_at.is_none_or(|e| e > now)
        });
    if live {
        return Err(Error::denied(
            "this org is set up (its members hold keys): the operator reads or changes its members only through break-glass; run `tenantry breakglass open --org ORG --ticket T --reason R`",
        ));
    }
    Ok(scope)
}

/// Sets an org's tier (operator only).
pub async fn set_tier(
    svc: &Service,
    op: &OperatorScope,
    ctx: &RequestCtx,
    org: OrgId,
    tier: &str,
) -> Result<OrgRecord> {
    check_tier(svc, tier)?;
    let changed = svc.control.set_org_tier(org, tier).await?;
    audit_org_change(
        svc,
        op,
        ctx,
        org,
        changed,
        "org.set_tier",
        json!({"tier": tier}),
    )
    .await
}

/// Suspends an org (operator only): from the next request on, every key of the org
/// is refused with `ORG_SUSPENDED` (invocations already running finish); its data is
/// kept. The reason (1-500 characters, e.g. a ticket) goes into the org's audit
/// trail. Suspending a suspended org changes nothing but is audited again.
pub async fn suspend(
    svc: &Service,
    op: &OperatorScope,
    ctx: &RequestCtx,
    org: OrgId,
    reason: &str,
) -> Result<OrgRecord> {
    let reason = reason.trim();
    tenantry_core::text::check_line("reason", reason, 500)?;
    let current = svc.org(org).await?;
    let at = current.suspended_at.unwrap_or_else(tenantry_core::now);
    let changed = svc.control.set_org_suspended(org, Some(at)).await?;
    audit_org_change(
        svc,
        op,
        ctx,
        org,
        changed,
        "org.suspend",
        json!({"reason": reason}),
    )
    .await
}

/// Resumes a suspended org (operator only): its keys work again.
pub async fn resume(
    svc: &Service,
    op: &OperatorScope,
    ctx: &RequestCtx,
    org: OrgId,
) -> Result<OrgRecord> {
    let changed = svc.control.set_org_suspended(org, None).await?;
    audit_org_change(svc, op, ctx, org, changed, "org.resume", json!({})).await
}

/// What deleting an org did.
#[derive(Debug)]
pub struct DeletedOrg {
    pub id: OrgId,
    pub name: String,
    pub deleted_at: time::OffsetDateTime,
    /// The org's key-encryption key was destroyed in the vault: its keys and secrets
    /// open from no copy of its data, backups made before the deletion included.
    /// `false`: the org had no vault file (created before the vault, or the server
    /// has none), so such a copy still opens with the master key.
    pub keys_shredded: bool,
}

/// Deletes a suspended org (operator only). The steps run in an order that a
/// failure half-way leaves resumable by deleting again: (1) the org's KEK is
/// destroyed in the vault (crypto-shredding: from here on nothing of the org
/// decrypts, in the live store or in any copy); (2) its store is erased (the file,
/// or every row); (3) its directory row goes, leaving a tombstone (id, name, time),
/// and its keys leave the key index. The operator's trail records `org.delete`; the
/// org's own trail goes with its data (export it first).
pub async fn delete(
    svc: &Service,
    op: &OperatorScope,
    ctx: &RequestCtx,
    org: OrgId,
) -> Result<DeletedOrg> {
    let current = svc.org(org).await?;
    if current.suspended_at.is_none() {
        return Err(Error::new(
            ErrorCode::Conflict,
            format!(
                "org {} is not suspended: suspend it first (`tenantry org suspend {org} --reason R`), so no request runs in it while it is deleted",
                current.name
            ),
        ));
    }
    let keys_shredded = match &svc.key_vault {
        Some(vault) => vault.destroy(org).map_err(|e| {
            crate::secrets::vault_unwritable(org, "cannot destroy the org's vault file", e)
        })?,
        None => false,
    };
    // Records of invocations that ran before the suspension are written first, not
    // after the erasure.
    svc.recorder.flush().await;
    svc.tenants.drop_tenant(org).await?;
    let deleted_at = tenantry_core::now();
    svc.control.delete_org(org, deleted_at).await?;
    let details = json!({"name": current.name, "keys_shredded": keys_shredded});
    let log = op.operator_log();
    crate::audit::record_platform(svc, &log, ctx, "org.delete", org.to_string(), details).await;
    Ok(DeletedOrg {
        id: org,
        name: current.name,
        deleted_at,
        keys_shredded,
    })
}

/// Refuses a request of a suspended org's key (see [`suspend`]).
pub(crate) fn refuse_if_suspended(org: &OrgRecord) -> Result<()> {
    match org.suspended_at {
        None => Ok(()),
        Some(_) => Err(Error::new(
            ErrorCode::OrgSuspended,
            format!(
                "org {} is suspended by the platform operator; its keys work again when the operator resumes it",
                org.name
            ),
        )),
    }
}

/// After an operator changed an org's directory row: audits the change in the org
/// and returns the updated row (`changed` false = no such org).
async fn audit_org_change(
    svc: &Service,
    op: &OperatorScope,
    ctx: &RequestCtx,
    org: OrgId,
    changed: bool,
    action: &str,
    details: serde_json::Value,
) -> Result<OrgRecord> {
    if !changed {
        return Err(Error::not_found("org"));
    }
    let log = op.operator_log();
    crate::audit::record_platform(svc, &log, ctx, action, org.to_string(), details.clone()).await;
    let scope = op.enter_org(org);
    let tx = svc.write(&scope).await?;
    svc.finish(
        tx,
        audit_entry(&scope, ctx, action, org.to_string(), details),
    )
    .await?;
    svc.org(org).await
}

/// Replaces an org's per-org limit overrides (operator only); `{}` clears them.
pub async fn set_overrides(
    svc: &Service,
    op: &OperatorScope,
    ctx: &RequestCtx,
    org: OrgId,
    overrides: &tenantry_core::TierOverrides,
) -> Result<OrgRecord> {
    overrides.validate().map_err(Error::invalid)?;
    let runtime_max = svc.runtime.config().max_memory_bytes;
    if let Some(m) = overrides.memory_bytes
        && m > runtime_max
    {
        return Err(Error::invalid(format!(
            "memory_bytes must be at most {runtime_max} (the sandbox's largest memory on this server; got {m})"
        )));
    }
    let changed = svc.control.set_org_overrides(org, overrides).await?;
    let details = json!({"overrides": overrides});
    audit_org_change(svc, op, ctx, org, changed, "org.set_limits", details).await
}

/// One billing quota's state in the current window.
#[derive(Debug)]
pub struct QuotaState {
    pub quota: String,
    pub used: u64,
    pub limit: u64,
    pub resets_at: time::OffsetDateTime,
}

/// An org's effective limits and where it stands against its quotas.
#[derive(Debug)]
pub struct LimitsView {
    /// The tier with the org's overrides applied.
    pub effective: tenantry_core::Tier,
    pub overrides: tenantry_core::TierOverrides,
    pub quotas: Vec<QuotaState>,
    /// Why `quotas` is empty: the quota store is unreachable.
    pub quotas_error: Option<String>,
    pub limiter: crate::limits::LimiterStatus,
    pub pilot: tenantry_core::pilot::PilotPolicy,
}

/// The caller's org's effective limits (any member).
pub async fn limits(svc: &Service, scope: &TenantScope) -> Result<LimitsView> {
    let org = svc.org(scope.org_id()).await?;
    let effective = svc.tier_of(scope.org_id(), Seen::NOTHING).await?;
    // The effective limits stay visible while the quota store is down.
    let (quotas, quotas_error) = match svc.quota_usage(scope, &effective).await {
        Ok(q) => (
            q.into_iter()
                .map(|(q, used, limit, resets_at)| QuotaState {
                    quota: q.into(),
                    used,
                    limit,
                    resets_at,
                })
                .collect(),
            None,
        ),
        Err(e) if e.code == ErrorCode::Unavailable => (Vec::new(), Some(e.message)),
        Err(e) => return Err(e),
    };
    Ok(LimitsView {
        effective,
        overrides: org.overrides,
        quotas,
        quotas_error,
        limiter: svc.limiters.status(),
        pilot: svc.settings.pilot.clone(),
    })
}

/// An org as its own members see it.
#[derive(Debug)]
pub struct OrgView {
    pub org: OrgRecord,
    /// The caller's effective permissions.
    pub permissions: Vec<Permission>,
    /// The org key's current version.
    pub key_version: u32,
}

/// The caller's own org.
pub async fn current(svc: &Service, scope: &TenantScope) -> Result<OrgView> {
    let org = svc.org(scope.org_id()).await?;
    let key_version = crate::secrets::key_version(&mut svc.read(scope).await?).await?;
    Ok(OrgView {
        org,
        permissions: scope.permissions().iter().copied().collect(),
        key_version,
    })
}
