//! Install secrets: write-only, envelope-encrypted per BRIEF §8.
//!
//! A value is sealed with a fresh data key under the org's current key (itself
//! wrapped by the org's key-encryption key from the vault, or the master key); the AAD binds org, install, name and key version, so a
//! ciphertext copied anywhere else does not open. Values never leave through this
//! module except to the sandbox via [`open_for_install`].

use serde_json::json;
use tenantry_core::{Error, ErrorCode, InstallId, OrgId, Permission, Result, TenantScope};
use tenantry_crypto::{
    OrgKek, OrgKey, SecretAad, SecretValue, open_secret, seal_secret, unwrap_org_key,
};
use tenantry_store::{SecretMeta, SecretRecord, TenantTx};

use crate::{RequestCtx, Service, audit_entry};

/// Largest secret value accepted.
pub const MAX_SECRET_BYTES: usize = 16 * 1024;

/// The key an org's keys are wrapped under: its vault KEK, or the master key for an
/// org without one (created before the vault, or where none is configured).
pub(crate) fn org_kek(svc: &Service, org: OrgId) -> Result<OrgKek> {
    let kept = match &svc.key_vault {
        Some(vault) => vault.get(&svc.master_key, org).map_err(|e| {
            tracing::error!(%org, error = %e, "the org's vault file does not open");
            Error::internal()
        })?,
        None => None,
    };
    Ok(kept.unwrap_or_else(|| OrgKek::legacy(&svc.master_key)))
}

async fn org_key(
    svc: &Service,
    tx: &mut Box<dyn TenantTx>,
    scope: &TenantScope,
    version: Option<u32>,
) -> Result<(u32, OrgKey)> {
    let rec = match version {
        Some(v) => tx.get_org_key(v).await?,
        None => tx.current_org_key().await?,
    }
    .ok_or_else(|| {
        tracing::error!(org = %scope.org_id(), "org has no key");
        Error::internal()
    })?;
    let kek = org_kek(svc, scope.org_id())?;
    let key = unwrap_org_key(&kek, scope.org_id(), rec.version, &rec.wrapped).map_err(|_| {
        tracing::error!(org = %scope.org_id(), version = rec.version, "org key does not unwrap: another master key, or the org's vault file is missing");
        Error::internal()
    })?;
    Ok((rec.version, key))
}

async fn secret_names(
    svc: &Service,
    tx: &mut Box<dyn TenantTx>,
    install: InstallId,
) -> Result<Vec<String>> {
    let i = tx
        .get_install(install)
        .await?
        .ok_or_else(|| Error::not_found("install"))?;
    let v = svc
        .control
        .get_version(&i.plugin, &i.version)
        .await?
        .ok_or_else(Error::internal)?;
    let m: tenantry_core::manifest::Manifest =
        serde_json::from_str(&v.manifest_json).map_err(|_| Error::internal())?;
    Ok(m.secret_fields().into_iter().map(String::from).collect())
}

/// Sets (or replaces) a secret. Only names the manifest declares are accepted.
pub async fn set(
    svc: &Service,
    scope: &TenantScope,
    ctx: &RequestCtx,
    install: InstallId,
    name: &str,
    value: SecretValue,
) -> Result<SecretMeta> {
    scope.require(Permission::ManageSecrets)?;
    if value.is_empty() {
        return Err(Error::invalid(
            "a secret value cannot be empty; to remove a secret, delete it",
        ));
    }
    if value.len() > MAX_SECRET_BYTES {
        return Err(Error::new(
            ErrorCode::TooLarge,
            format!("a secret value is at most {MAX_SECRET_BYTES} bytes"),
        ));
    }
    let mut tx = svc.write(scope).await?;
    let names = secret_names(svc, &mut tx, install).await?;
    if !names.iter().any(|n| n == name) {
        return Err(Error::new(
            ErrorCode::InvalidRequest,
            format!(
                "unknown secret name '{}'; this plugin declares: {}",
                tenantry_core::error::clip(name),
                if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                }
            ),
        ));
    }
    let (key_version, key) = org_key(svc, &mut tx, scope, None).await?;
    let aad = SecretAad {
        org: scope.org_id(),
        install,
        name,
        key_version,
    };
    let now = tenantry_core::now();
    let created_at = tx
        .get_secret(install, name)
        .await?
        .map(|s| s.created_at)
        .unwrap_or(now);
    let record = SecretRecord {
        install_id: install,
        name: name.into(),
        key_version,
        ciphertext: seal_secret(&key, &aad, &value),
        created_at,
        updated_at: now,
    };
    tx.upsert_secret(&record).await?;
    svc.finish(
        tx,
        audit_entry(
            scope,
            ctx,
            "secret.set",
            format!("{install}/{name}"),
            json!({"key_version": key_version}),
        ),
    )
    .await?;
    Ok(SecretMeta {
        name: name.into(),
        key_version,
        created_at,
        updated_at: now,
    })
}

pub async fn delete(
    svc: &Service,
    scope: &TenantScope,
    ctx: &RequestCtx,
    install: InstallId,
    name: &str,
) -> Result<()> {
    scope.require(Permission::ManageSecrets)?;
    let mut tx = svc.write(scope).await?;
    tx.get_install(install)
        .await?
        .ok_or_else(|| Error::not_found("install"))?;
    if !tx.delete_secret(install, name).await? {
        return Err(Error::not_found("secret"));
    }
    svc.finish(
        tx,
        audit_entry(
            scope,
            ctx,
            "secret.delete",
            format!("{install}/{name}"),
            json!({}),
        ),
    )
    .await
}

/// Names and times of an install's secrets; never values.
pub async fn list(
    svc: &Service,
    scope: &TenantScope,
    install: InstallId,
) -> Result<Vec<SecretMeta>> {
    scope.require(Permission::ReadOrg)?;
    let mut tx = svc.read(scope).await?;
    tx.get_install(install)
        .await?
        .ok_or_else(|| Error::not_found("install"))?;
    Ok(tx.list_secrets(install).await?)
}

/// Decrypts one secret of one install, for the sandbox's secrets capability.
/// The caller has already checked the name is granted.
pub async fn open_for_install(
    svc: &Service,
    scope: &TenantScope,
    install: InstallId,
    name: &str,
) -> Result<Option<SecretValue>> {
    let mut tx = svc.read(scope).await?;
    let Some(rec) = tx.get_secret(install, name).await? else {
        return Ok(None);
    };
    let (key_version, key) = org_key(svc, &mut tx, scope, Some(rec.key_version)).await?;
    let aad = SecretAad {
        org: scope.org_id(),
        install,
        name,
        key_version,
    };
    open_secret(&key, &aad, &rec.ciphertext).map(Some).map_err(|_| {
        tracing::error!(org = %scope.org_id(), %install, "secret does not decrypt in its own row");
        Error::internal()
    })
}
