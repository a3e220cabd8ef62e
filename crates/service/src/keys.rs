//! Rotating the master key while serving.
//!
//! The operator gives every node the new master key (`master_key_file`) and the one
//! being retired (`previous_master_key_file`), restarting them one by one: from
//! then on a node reads what either key sealed and writes only with the new one.
//! [`rotate_master`] then seals again, org by org, whatever still needs the old key:
//! the org's KEK file in the key vault, and an org key wrapped by the old master key
//! alone (an org without a vault KEK), which gets a fresh org key through an org key
//! rotation (so it also moves into the vault, if there is one). Each step is whole
//! on its own (a file renamed into place, one transaction), so a rotation stopped
//! anywhere (a crash, a batch limit) loses nothing and resumes where it left off
//! when run again. When it reports nothing remaining, the operator removes
//! `previous_master_key_file` and destroys the old key.

use serde_json::json;
use tenantry_core::{Error, ErrorCode, OperatorScope, Result};

use crate::{RequestCtx, Service};

/// What one [`rotate_master`] call did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct MasterRotation {
    /// Orgs looked at (all of them).
    pub orgs_checked: u64,
    /// Vault files sealed again under the new master key.
    pub vault_files_resealed: u64,
    /// Orgs whose key was wrapped by the old master key alone, given a new one.
    pub org_keys_rotated: u64,
    /// Orgs that still need the old master key (beyond this call's limit).
    pub remaining: u64,
}

/// Seals again under the new master key what still needs the old one, for at most
/// `limit` orgs (operator only). Needs `previous_master_key_file`.
pub async fn rotate_master(
    svc: &Service,
    op: &OperatorScope,
    ctx: &RequestCtx,
    limit: u32,
) -> Result<MasterRotation> {
    let Some(previous) = svc.previous_master_key.clone() else {
        return Err(Error::new(
            ErrorCode::Conflict,
            "no master key is being retired: set previous_master_key_file to the old key and master_key_file to the new one on every node, restart them, then run this again (docs/operations.md, 'Rotating keys')",
        ));
    };
    let mut r = MasterRotation::default();
    let mut changed = 0u32;
    for org in svc.control.list_orgs().await? {
        r.orgs_checked += 1;
        let scope = op.enter_org(org.id);
        let vault_stale = matches!(crate::secrets::vault_kek(svc, org.id)?, Some((_, true)));
        let key_stale =
            !vault_stale && crate::secrets::key_needs_previous_master(svc, &scope).await?;
        if !vault_stale && !key_stale {
            continue;
        }
        if changed >= limit {
            r.remaining += 1;
            continue;
        }
        changed += 1;
        if vault_stale {
            let vault = svc.key_vault.as_ref().ok_or_else(Error::internal)?;
            let kek = vault
                .get(&previous, org.id)
                .ok()
                .flatten()
                .ok_or_else(Error::internal)?;
            vault.reseal(&svc.master_key, org.id, &kek).map_err(|e| {
                crate::secrets::vault_unwritable(org.id, "cannot reseal the org's vault file", e)
            })?;
            r.vault_files_resealed += 1;
        }
        // After its vault file, the org key itself (wrapped by the old master key
        // alone when the org has no vault KEK).
        if crate::secrets::key_needs_previous_master(svc, &scope).await? {
            crate::secrets::rotate(svc, &scope, ctx, "master_key_rotation").await?;
            r.org_keys_rotated += 1;
        }
    }
    let details = json!({
        "orgs_checked": r.orgs_checked,
        "vault_files_resealed": r.vault_files_resealed,
        "org_keys_rotated": r.org_keys_rotated,
        "remaining": r.remaining,
    });
    let log = op.operator_log();
    crate::audit::record_platform(svc, &log, ctx, "master_key.rotate", "master_key", details).await;
    Ok(r)
}
