//! Install secrets: write-only, envelope-encrypted per BRIEF §8.
//!
//! A value is sealed with a fresh data key under the org's current key (itself
//! wrapped by the org's key-encryption key from the vault, or the master key); the AAD binds org, install, name and key version, so a
//! ciphertext copied anywhere else does not open. Values never leave through this
//! module except to the sandbox via [`open_for_install`].

use serde_json::json;
use std::collections::HashMap;
use tenantry_core::{Error, ErrorCode, InstallId, OrgId, Permission, Result, TenantScope};
use tenantry_crypto::{
    OrgKek, OrgKey, SecretAad, SecretValue, open_secret, seal_secret, unwrap_org_key, wrap_org_key,
};
use tenantry_store::{OrgKeyRecord, SecretMeta, SecretRecord, TenantTx};

use crate::{RequestCtx, Service, audit_entry};

/// Largest secret value accepted.
pub const MAX_SECRET_BYTES: usize = 16 * 1024;

/// The org's keys do not open: the server runs with another master key than the one
/// that sealed them (or without the vault file): an operator's configuration to fix,
/// not the caller's request.
fn keys_unavailable() -> Error {
    Error::new(
        ErrorCode::Unavailable,
        "this org's keys do not open with the server's master key; the platform operator must check master_key_file, previous_master_key_file and key_vault_dir",
    )
}

/// The key vault could not be written (`what` went wrong, for the log): an
/// operator's disk or permissions to fix, and the step can be repeated.
pub(crate) fn vault_unwritable(org: OrgId, what: &str, e: tenantry_crypto::CryptoError) -> Error {
    tracing::error!(%org, error = %e, "{what}");
    Error::new(
        ErrorCode::Unavailable,
        "the key vault cannot be written; check the server's log, then try again",
    )
}

/// The org's KEK from the vault, if it has one, and whether it opened only with the
/// previous master key (a master-key rotation has not reached it yet).
pub(crate) fn vault_kek(svc: &Service, org: OrgId) -> Result<Option<(OrgKek, bool)>> {
    let Some(vault) = &svc.key_vault else {
        return Ok(None);
    };
    let unreadable = |e: tenantry_crypto::CryptoError| {
        tracing::error!(%org, error = %e, "the org's vault file does not open");
        keys_unavailable()
    };
    match (vault.get(&svc.master_key, org), &svc.previous_master_key) {
        (Ok(found), _) => Ok(found.map(|k| (k, false))),
        (Err(tenantry_crypto::CryptoError::Decrypt), Some(previous)) => vault
            .get(previous, org)
            .map(|found| found.map(|k| (k, true)))
            .map_err(unreadable),
        (Err(e), _) => Err(unreadable(e)),
    }
}

/// The keys an org's keys may be wrapped under, to try in order: its vault KEK, if
/// it has one, then the master key (orgs created before the vault, or where none is
/// configured; and keys not yet moved into the vault by [`rotate_org_key`]), then
/// the master key being retired, while a rotation runs.
fn org_keks(svc: &Service, org: OrgId) -> Result<Vec<OrgKek>> {
    let mut keks = Vec::with_capacity(3);
    if let Some((kek, _)) = vault_kek(svc, org)? {
        keks.push(kek);
    }
    keks.push(OrgKek::legacy(&svc.master_key));
    if let Some(previous) = &svc.previous_master_key {
        keks.push(OrgKek::legacy(previous));
    }
    Ok(keks)
}

/// Whether the org's current key opens without the master key being retired.
pub(crate) async fn key_needs_previous_master(svc: &Service, scope: &TenantScope) -> Result<bool> {
    let Some(rec) = svc.read(scope).await?.current_org_key().await? else {
        return Ok(false);
    };
    let org = scope.org_id();
    let mut current = Vec::with_capacity(2);
    if let Some((kek, false)) = vault_kek(svc, org)? {
        current.push(kek);
    }
    current.push(OrgKek::legacy(&svc.master_key));
    Ok(!current
        .iter()
        .any(|kek| unwrap_org_key(kek, org, rec.version, &rec.wrapped).is_ok()))
}

fn unwrap_key(svc: &Service, org: OrgId, rec: &OrgKeyRecord) -> Result<OrgKey> {
    org_keks(svc, org)?
        .iter()
        .find_map(|kek| unwrap_org_key(kek, org, rec.version, &rec.wrapped).ok())
        .ok_or_else(|| {
            tracing::error!(%org, version = rec.version, "org key does not unwrap: another master key, or the org's vault file is missing");
            keys_unavailable()
        })
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
    Ok((rec.version, unwrap_key(svc, scope.org_id(), &rec)?))
}

/// What rotating an org's key did.
#[derive(Debug)]
pub struct KeyRotation {
    /// The org key's version now.
    pub key_version: u32,
    /// Secrets sealed again under it.
    pub secrets_resealed: u64,
    /// The org's keys are now wrapped under its KEK in the key vault (deleting the
    /// org shreds them); `false`: the server has no vault.
    pub in_vault: bool,
}

/// Rotates the org's key (owners): a new version is created, every secret is sealed
/// again under it, and the older versions are deleted, all in one transaction, so
/// every read sees either the old keys or the new (no secret is ever unreadable).
/// An org without a key-encryption key in the vault gets one, and its new key is
/// wrapped under it: the way an org created before the vault becomes shreddable.
pub async fn rotate_org_key(
    svc: &Service,
    scope: &TenantScope,
    ctx: &RequestCtx,
) -> Result<KeyRotation> {
    scope.require(Permission::ManageSecrets)?;
    rotate(svc, scope, ctx, "owner").await
}

/// [`rotate_org_key`]'s work, for a caller that checked who may do it; `cause` goes
/// into the audit entry.
pub(crate) async fn rotate(
    svc: &Service,
    scope: &TenantScope,
    ctx: &RequestCtx,
    cause: &str,
) -> Result<KeyRotation> {
    let org = scope.org_id();
    let mut tx = svc.write(scope).await?;
    let (from, _) = org_key(svc, &mut tx, scope, None).await?;
    let to = from.checked_add(1).ok_or_else(|| {
        Error::new(
            ErrorCode::Conflict,
            "the org key has reached its last version",
        )
    })?;
    // Created before the transaction commits; if it does not, the next rotation (or
    // any read, which falls back to the master key) still works.
    let kek = match (&svc.key_vault, vault_kek(svc, org)?) {
        (Some(_), Some((kek, _))) => Some(kek),
        (Some(vault), None) => Some(
            vault
                .create(&svc.master_key, org)
                .map_err(|e| vault_unwritable(org, "cannot write the org's vault file", e))?,
        ),
        (None, _) => None,
    };
    let in_vault = kek.is_some();
    let kek = kek.unwrap_or_else(|| OrgKek::legacy(&svc.master_key));
    let key = OrgKey::generate();
    tx.insert_org_key(&OrgKeyRecord {
        version: to,
        wrapped: wrap_org_key(&kek, org, to, &key),
        created_at: tenantry_core::now(),
    })
    .await?;
    let mut old_keys: HashMap<u32, OrgKey> = HashMap::new();
    let mut resealed = 0u64;
    for install in tx.list_installs().await? {
        for meta in tx.list_secrets(install.id).await? {
            let Some(mut rec) = tx.get_secret(install.id, &meta.name).await? else {
                continue;
            };
            let old = match old_keys.entry(rec.key_version) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(org_key(svc, &mut tx, scope, Some(rec.key_version)).await?.1)
                }
            };
            let aad = |key_version| SecretAad {
                org,
                install: install.id,
                name: &meta.name,
                key_version,
            };
            let value = open_secret(old, &aad(rec.key_version), &rec.ciphertext).map_err(|_| {
                tracing::error!(%org, install = %install.id, "a secret does not open with its key");
                Error::internal()
            })?;
            rec.ciphertext = seal_secret(&key, &aad(to), &value);
            rec.key_version = to;
            tx.upsert_secret(&rec).await?;
            resealed += 1;
        }
    }
    tx.delete_org_keys_before(to).await?;
    let entry = audit_entry(
        scope,
        ctx,
        "org.key_rotate",
        org.to_string(),
        json!({"from": from, "to": to, "secrets_resealed": resealed, "in_vault": in_vault, "cause": cause}),
    );
    svc.finish(tx, entry).await?;
    Ok(KeyRotation {
        key_version: to,
        secrets_resealed: resealed,
        in_vault,
    })
}

/// The org key's current version.
pub(crate) async fn key_version(tx: &mut Box<dyn TenantTx>) -> Result<u32> {
    Ok(tx.current_org_key().await?.map_or(0, |k| k.version))
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
