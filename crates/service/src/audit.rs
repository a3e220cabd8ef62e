//! Reading an org's audit trail and checking its hash chain.

use serde_json::json;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use tenantry_core::{Error, ErrorCode, OperatorScope, OrgId, Permission, Result, TenantScope};
use tenantry_store::chain::{Break, Verifier};
use tenantry_store::{AuditEntry, AuditFilter};

use crate::Service;

/// Lists audit entries, newest first.
pub async fn list(
    svc: &Service,
    scope: &TenantScope,
    filter: &AuditFilter,
) -> Result<Vec<AuditEntry>> {
    scope.require(Permission::ReadAudit)?;
    let mut tx = svc.read(scope).await?;
    Ok(tx.list_audit(filter).await?)
}

/// What checking an org's audit trail found (see `tenantry_store::chain`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainReport {
    /// Entries checked by hash.
    pub chained: u64,
    /// Entries written before the chain existed (first in the trail, not covered).
    pub legacy: u64,
    /// The last entry checked and its row hash (the head to compare with a saved copy).
    pub head: Option<(u64, Option<[u8; 32]>)>,
    /// The first entry that breaks the chain: its `seq` and why. `None`: intact.
    pub broken: Option<(u64, Break)>,
    /// Signed checkpoints checked (each pins the entry before it).
    pub checkpoints: u64,
    /// The last checkpoint's `seq` (entries after it are pinned by none yet).
    pub last_checkpoint: Option<u64>,
}

/// Entries read per page while verifying.
const VERIFY_PAGE: u32 = 1000;

/// Walks the org's whole audit trail, oldest first, in one read transaction, and
/// reports the first entry that breaks the hash chain. Needs [`Permission::VerifyAudit`]
/// (org admins; operators through [`verify_as_operator`]).
pub async fn verify(svc: &Service, scope: &TenantScope) -> Result<ChainReport> {
    scope.require(Permission::VerifyAudit)?;
    let keys: Vec<tenantry_crypto::PublicKey> = svc
        .audit_key
        .iter()
        .map(|k| k.public_key())
        .chain(svc.retired_audit_keys.iter().cloned())
        .collect();
    let mut tx = svc.read(scope).await?;
    let mut v = Verifier::new(scope.org_id());
    let (mut checkpoints, mut last_checkpoint) = (0, None);
    let mut after = 0;
    'pages: loop {
        let page = tx.audit_chain(after, VERIFY_PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.entry.seq;
        for c in &page {
            // A checkpoint after a gap is left to `check`, which names the gap.
            let follows = v.head().is_none_or(|(seq, _)| seq + 1 == c.entry.seq);
            if c.entry.action == CHECKPOINT && follows {
                if keys.is_empty() {
                    return Err(no_audit_key());
                }
                if !checkpoint_holds(&keys, scope.org_id(), &c.entry, v.head()) {
                    v.broken = Some((c.entry.seq, Break::Checkpoint));
                    break 'pages;
                }
                checkpoints += 1;
                last_checkpoint = Some(c.entry.seq);
            }
            if !v.check(c) {
                break 'pages;
            }
        }
        if page.len() < VERIFY_PAGE as usize {
            break;
        }
    }
    Ok(ChainReport {
        chained: v.chained,
        legacy: v.legacy,
        head: v.head(),
        broken: v.broken,
        checkpoints,
        last_checkpoint,
    })
}

/// [`verify`] by the operator, in any org that exists: the report holds counts and
/// hashes, never an entry's content, so it needs no access to the org's data.
pub async fn verify_as_operator(
    svc: &Service,
    op: &OperatorScope,
    org: OrgId,
) -> Result<ChainReport> {
    svc.org(org).await?;
    verify(svc, &op.verify_org(org)).await
}

/// Appends an entry to the operator's own audit trail (`scope` from
/// `OperatorScope::operator_log` or `Session::operator_log_writer`): org lifecycle,
/// break-glass, the registry. The action it records has already happened in another
/// store, so a failure here is logged, not returned.
pub(crate) async fn record_platform(
    svc: &Service,
    scope: &TenantScope,
    ctx: &crate::RequestCtx,
    action: &str,
    target: impl Into<String>,
    details: serde_json::Value,
) {
    let entry = crate::audit_entry(scope, ctx, action, target, details);
    let written = async {
        let tx = svc.write(scope).await?;
        svc.finish(tx, entry).await
    };
    if let Err(e) = written.await {
        tracing::error!(action, error = %e.message, "the operator's audit trail missed an entry");
    }
}

/// The operator's own audit trail, newest first.
pub async fn list_operator(
    svc: &Service,
    op: &OperatorScope,
    filter: &AuditFilter,
) -> Result<Vec<AuditEntry>> {
    list(svc, &op.operator_log(), filter).await
}

/// [`verify`] of the operator's own audit trail.
pub async fn verify_operator(svc: &Service, op: &OperatorScope) -> Result<ChainReport> {
    verify(svc, &op.operator_log()).await
}

/// Orgs whose audit trail grew since the last periodic checkpoint (marked by every
/// append: `Service::finish` and the recorder).
#[derive(Clone, Default)]
pub struct Changed(Arc<Mutex<HashSet<OrgId>>>);

impl Changed {
    pub(crate) fn mark(&self, orgs: impl IntoIterator<Item = OrgId>) {
        let mut set = self.0.lock().unwrap_or_else(|p| p.into_inner());
        set.extend(orgs);
    }

    fn take(&self) -> HashSet<OrgId> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// The action of a checkpoint entry.
const CHECKPOINT: &str = "audit.checkpoint";

/// A signed checkpoint: the entry it covers and that entry's row hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpointed {
    /// The covered entry (the checkpoint itself is the entry after it).
    pub seq: u64,
    pub row_hash: [u8; 32],
    /// The audit key's public key (`ed25519:…`).
    pub key: String,
    pub signature: String,
}

fn no_audit_key() -> Error {
    Error::new(
        ErrorCode::Unavailable,
        "this server has no audit key, so it cannot sign or check audit checkpoints",
    )
}

/// Appends a signed checkpoint of the trail's head to the trail itself: an
/// `audit.checkpoint` entry whose details sign (org, seq, row hash) of the entry
/// before it with the server's audit key (separate from the master key). Someone who
/// rewrites entries and recomputes the chain cannot sign again, so [`verify`] finds
/// the rewrite at the first checkpoint after it. `None`: the trail is empty, or its
/// last entry is already a checkpoint. Needs [`Permission::VerifyAudit`] (org
/// admins; the operator through [`checkpoint_as_operator`]).
pub async fn checkpoint(
    svc: &Service,
    scope: &TenantScope,
    ctx: &crate::RequestCtx,
) -> Result<Option<Checkpointed>> {
    scope.require(Permission::VerifyAudit)?;
    write_checkpoint(svc, scope, ctx).await
}

async fn write_checkpoint(
    svc: &Service,
    scope: &TenantScope,
    ctx: &crate::RequestCtx,
) -> Result<Option<Checkpointed>> {
    let key = svc.audit_key.clone().ok_or_else(no_audit_key)?;
    let mut tx = svc.write(scope).await?;
    let newest = tx
        .list_audit(&AuditFilter {
            limit: Some(1),
            ..Default::default()
        })
        .await?;
    let Some(last) = newest.first() else {
        return Ok(None);
    };
    if last.action == CHECKPOINT {
        return Ok(None);
    }
    let head = tx
        .audit_chain(last.seq.saturating_sub(1), 1)
        .await?
        .into_iter()
        .next()
        .and_then(|c| c.row_hash)
        .and_then(|h| <[u8; 32]>::try_from(h).ok());
    let Some(row_hash) = head else {
        // Entries from before the chain: nothing a signature could pin.
        return Ok(None);
    };
    let signed = tenantry_crypto::Checkpoint {
        org: scope.org_id(),
        seq: last.seq,
        row_hash,
    };
    let c = Checkpointed {
        seq: last.seq,
        row_hash,
        key: key.public_key().to_string(),
        signature: key.sign_checkpoint(&signed).to_string(),
    };
    let entry = crate::audit_entry(
        scope,
        ctx,
        CHECKPOINT,
        last.seq.to_string(),
        json!({"seq": c.seq, "row_hash": hex::encode(c.row_hash), "key": c.key, "signature": c.signature}),
    );
    tx.append_audit(&entry).await?;
    tx.commit().await?;
    Ok(Some(c))
}

/// [`checkpoint`] by the operator, of an org that exists.
pub async fn checkpoint_as_operator(
    svc: &Service,
    op: &OperatorScope,
    ctx: &crate::RequestCtx,
    org: OrgId,
) -> Result<Option<Checkpointed>> {
    svc.org(org).await?;
    checkpoint(svc, &op.verify_org(org), ctx).await
}

/// [`checkpoint`] of the operator's own trail.
pub async fn checkpoint_operator(
    svc: &Service,
    op: &OperatorScope,
    ctx: &crate::RequestCtx,
) -> Result<Option<Checkpointed>> {
    checkpoint(svc, &op.operator_log(), ctx).await
}

/// Checkpoints every trail that grew since the last call (the server calls it
/// periodically); returns how many checkpoints were written. A failure for one org
/// is logged and the org is tried again next time.
pub async fn checkpoint_changed(svc: &Service) -> usize {
    let mut written = 0;
    for org in svc.audit_changed.take() {
        let scope = TenantScope::checkpointer(org);
        match write_checkpoint(svc, &scope, &crate::RequestCtx::new()).await {
            Ok(c) => written += usize::from(c.is_some()),
            // A deleted org: nothing left to checkpoint.
            Err(e) if e.code == tenantry_core::ErrorCode::NotFound => {}
            Err(e) => {
                tracing::warn!(%org, error = %e.message, "an audit checkpoint failed; retrying next time");
                svc.audit_changed.mark([org]);
            }
        }
    }
    written
}

/// Checks a checkpoint entry against the verifier's state before it: it must sign,
/// with the server's audit key or a retired one, the entry just before it and that
/// entry's row hash.
fn checkpoint_holds(
    keys: &[tenantry_crypto::PublicKey],
    org: OrgId,
    entry: &AuditEntry,
    before: Option<(u64, Option<[u8; 32]>)>,
) -> bool {
    let d = &entry.details;
    let (Some((seq, Some(row_hash))), Some(s), Some(h), Some(k), Some(sig)) = (
        before,
        d["seq"].as_u64(),
        d["row_hash"].as_str(),
        d["key"].as_str(),
        d["signature"].as_str(),
    ) else {
        return false;
    };
    let Ok(sig) = sig.parse::<tenantry_crypto::Signature>() else {
        return false;
    };
    let Some(key) = keys.iter().find(|key| key.to_string() == k) else {
        return false;
    };
    s == seq
        && h == hex::encode(row_hash)
        && key
            .verify_checkpoint(&tenantry_crypto::Checkpoint { org, seq, row_hash }, &sig)
            .is_ok()
}
