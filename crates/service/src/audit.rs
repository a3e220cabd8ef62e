//! Reading an org's audit trail.

use tenantry_core::{Permission, Result, TenantScope};
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
