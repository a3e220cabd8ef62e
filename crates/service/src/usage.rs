//! Reading an org's usage events.

use tenantry_core::{Permission, Result, TenantScope};
use tenantry_store::{UsageEvent, UsageFilter};

use crate::Service;

/// Usage events in time order.
pub async fn list(
    svc: &Service,
    scope: &TenantScope,
    filter: &UsageFilter,
) -> Result<Vec<UsageEvent>> {
    scope.require(Permission::ReadOrg)?;
    let mut tx = svc.read(scope).await?;
    Ok(tx.list_usage(filter).await?)
}
