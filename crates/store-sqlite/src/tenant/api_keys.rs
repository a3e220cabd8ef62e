//! API keys: [`ApiKeyTx`] on the embedded store.

use async_trait::async_trait;
use tenantry_core::ApiKeyId;
use tenantry_store::*;
use time::OffsetDateTime;

use super::SqliteTenantTx;
use crate::rows::*;

#[async_trait]
impl ApiKeyTx for SqliteTenantTx {
    async fn insert_api_key(&mut self, k: &ApiKeyRecord) -> StoreResult<()> {
        let q = sqlx::query(
            "INSERT INTO api_keys (org_id, id, name, principal_kind, principal_id, prefix, hash, \
             created_at, expires_at, revoked_at, last_used_at, breakglass_ticket, breakglass_reason, \
             breakglass_access, breakglass_pending, breakglass_approved_by, breakglass_approved_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(self.org.clone())
        .bind(k.id.to_string())
        .bind(k.name.clone())
        .bind(k.principal_kind.as_str())
        .bind(k.principal_id.to_string())
        .bind(k.prefix.clone())
        .bind(k.hash.to_vec())
        .bind(ts(k.created_at))
        .bind(opt_ts(k.expires_at))
        .bind(opt_ts(k.revoked_at))
        .bind(opt_ts(k.last_used_at))
        .bind(k.breakglass.as_ref().map(|g| g.ticket.clone()))
        .bind(k.breakglass.as_ref().map(|g| g.reason.clone()))
        .bind(k.breakglass.as_ref().map(|g| if g.write { "write" } else { "read" }))
        .bind(k.breakglass.as_ref().is_some_and(|g| g.pending))
        .bind(k.breakglass.as_ref().and_then(|g| g.approved_by).map(|u| u.to_string()))
        .bind(opt_ts(k.breakglass.as_ref().and_then(|g| g.approved_at)));
        self.exec(q).await.map(|_| ())
    }

    async fn approve_breakglass(
        &mut self,
        kid: ApiKeyId,
        by: uuid::Uuid,
        at: OffsetDateTime,
    ) -> StoreResult<bool> {
        let q = sqlx::query(
            "UPDATE api_keys SET breakglass_pending = 0, breakglass_approved_by = ?, \
             breakglass_approved_at = ? WHERE org_id = ? AND id = ? AND breakglass_pending = 1",
        )
        .bind(by.to_string())
        .bind(ts(at))
        .bind(self.org.clone())
        .bind(kid.to_string());
        Ok(self.exec(q).await? == 1)
    }

    async fn get_api_key(&mut self, kid: ApiKeyId) -> StoreResult<Option<ApiKeyRecord>> {
        self.journal_imported().await?;
        let q = sqlx::query("SELECT * FROM api_keys WHERE org_id = ? AND id = ?")
            .bind(&self.org)
            .bind(kid.to_string());
        self.opt(q).await
    }

    async fn list_api_keys(&mut self) -> StoreResult<Vec<ApiKeyRecord>> {
        self.journal_imported().await?;
        let q = sqlx::query("SELECT * FROM api_keys WHERE org_id = ? ORDER BY id").bind(&self.org);
        self.all(q).await
    }

    async fn revoke_api_key(&mut self, kid: ApiKeyId, at: OffsetDateTime) -> StoreResult<bool> {
        let q = sqlx::query(
            "UPDATE api_keys SET revoked_at = ? WHERE org_id = ? AND id = ? AND revoked_at IS NULL",
        )
        .bind(ts(at))
        .bind(self.org.clone())
        .bind(kid.to_string());
        Ok(self.exec(q).await? == 1)
    }

    async fn touch_api_key(&mut self, kid: ApiKeyId, at: OffsetDateTime) -> StoreResult<()> {
        // A use never moves the last use back (as the journal's key uses do).
        let q = sqlx::query(
            "UPDATE api_keys SET last_used_at = ? WHERE org_id = ? AND id = ? \
             AND (last_used_at IS NULL OR last_used_at < ?)",
        )
        .bind(ts(at))
        .bind(self.org.clone())
        .bind(kid.to_string())
        .bind(ts(at));
        self.exec(q).await.map(|_| ())
    }
}
