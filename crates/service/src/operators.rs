//! The operator's own keys: several named keys instead of one shared bootstrap key,
//! so a key can be rotated (create the new one, move to it, revoke the old one) and a
//! leaked one revoked without locking the platform out. Each change is an entry of
//! the operator's trail.

use serde_json::json;
use tenantry_core::{ApiKeyId, Error, ErrorCode, OperatorScope, Result};
use tenantry_crypto::{SecretValue, generate_api_key};
use tenantry_store::OperatorKeyRecord;
use time::OffsetDateTime;

use crate::{RequestCtx, Service};

/// A new operator key: shown once.
pub struct CreatedOperatorKey {
    pub record: OperatorKeyRecord,
    /// The key itself. It is not stored and cannot be shown again.
    pub key: SecretValue,
}

impl std::fmt::Debug for CreatedOperatorKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedOperatorKey")
            .field("record", &self.record.id)
            .finish_non_exhaustive()
    }
}

/// Creates an operator key (an operator's key may create others).
pub async fn create(
    svc: &Service,
    op: &OperatorScope,
    ctx: &RequestCtx,
    name: &str,
    expires_at: Option<OffsetDateTime>,
) -> Result<CreatedOperatorKey> {
    tenantry_core::text::check_line("key name", name, 128)?;
    let now = tenantry_core::now();
    if expires_at.is_some_and(|e| e <= now) {
        return Err(Error::invalid("expires_at is in the past"));
    }
    let new = generate_api_key();
    let record = OperatorKeyRecord {
        id: ApiKeyId::new(),
        name: name.into(),
        hash: new.hash,
        created_at: now,
        expires_at,
        revoked_at: None,
    };
    svc.control.insert_operator_key(&record).await?;
    let details = json!({"name": name, "expires_at": expires_at.map(|t| t.unix_timestamp())});
    crate::audit::record_platform(
        svc,
        &op.operator_log(),
        ctx,
        "operator_key.create",
        record.id.to_string(),
        details,
    )
    .await;
    Ok(CreatedOperatorKey {
        record,
        key: new.plaintext,
    })
}

/// Every operator key (never a hash), revoked and expired ones included.
pub async fn list(svc: &Service, _op: &OperatorScope) -> Result<Vec<OperatorKeyRecord>> {
    Ok(svc.control.list_operator_keys().await?)
}

/// Revokes an operator key, from the next request on. The last usable key cannot be
/// revoked (the platform would have no operator left); create another first.
pub async fn revoke(
    svc: &Service,
    op: &OperatorScope,
    ctx: &RequestCtx,
    id: ApiKeyId,
) -> Result<OperatorKeyRecord> {
    let now = tenantry_core::now();
    let keys = svc.control.list_operator_keys().await?;
    let usable =
        |k: &OperatorKeyRecord| k.revoked_at.is_none() && k.expires_at.is_none_or(|e| e > now);
    let target = keys
        .iter()
        .find(|k| k.id == id)
        .ok_or_else(|| Error::not_found("operator key"))?;
    if usable(target) && keys.iter().filter(|k| usable(k)).count() == 1 {
        return Err(Error::new(
            ErrorCode::Conflict,
            "this is the last usable operator key; create another (`tenantry operator-key create NAME`) before revoking it",
        ));
    }
    svc.control.revoke_operator_key(id, now).await?;
    let details = json!({"name": target.name, "by": op.key_id().to_string()});
    crate::audit::record_platform(
        svc,
        &op.operator_log(),
        ctx,
        "operator_key.revoke",
        id.to_string(),
        details,
    )
    .await;
    svc.control
        .list_operator_keys()
        .await?
        .into_iter()
        .find(|k| k.id == id)
        .ok_or_else(|| Error::not_found("operator key"))
}
