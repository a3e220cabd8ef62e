//! API keys: [`ApiKeyTx`] on the pooled store.

use async_trait::async_trait;
use tenantry_core::ApiKeyId;
use tenantry_store::*;
use time::OffsetDateTime;

use super::PgTenantTx;

#[async_trait]
impl ApiKeyTx for PgTenantTx {
    async fn insert_api_key(&mut self, k: &ApiKeyRecord) -> StoreResult<()> {
        let q = sqlx::query(
            "INSERT INTO api_keys (org_id, id, name, principal_kind, principal_id, prefix, hash, \
             created_at, expires_at, revoked_at, last_used_at, breakglass_ticket, breakglass_reason, \
             breakglass_access, breakglass_pending, breakglass_approved_by, breakglass_approved_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
        )
        .bind(self.org())
        .bind(*k.id.as_uuid())
        .bind(k.name.clone())
        .bind(k.principal_kind.as_str())
        .bind(k.principal_id)
        .bind(k.prefix.clone())
        .bind(k.hash.to_vec())
        .bind(k.created_at)
        .bind(k.expires_at)
        .bind(k.revoked_at)
        .bind(k.last_used_at)
        .bind(k.breakglass.as_ref().map(|g| g.ticket.clone()))
        .bind(k.breakglass.as_ref().map(|g| g.reason.clone()))
        .bind(k.breakglass.as_ref().map(|g| if g.write { "write" } else { "read" }))
        .bind(k.breakglass.as_ref().is_some_and(|g| g.pending))
        .bind(k.breakglass.as_ref().and_then(|g| g.approved_by))
        .bind(k.breakglass.as_ref().and_then(|g| g.approved_at));
        self.exec(q).await.map(|_| ())
    }

    async fn approve_breakglass(
        &mut self,
        kid: ApiKeyId,
        by: uuid::Uuid,
        at: OffsetDateTime,
    ) -> StoreResult<bool> {
        let q = sqlx::query(
            "UPDATE api_keys SET breakglass_pending = false, breakglass_approved_by = $1, \
             breakglass_approved_at = $2 WHERE org_id = $3 AND id = $4 AND breakglass_pending",
        )
        .bind(by)
        .bind(at)
        .bind(self.org())
        .bind(*kid.as_uuid());
        Ok(self.exec(q).await? == 1)
    }

    async fn get_api_key(&mut self, kid: ApiKeyId) -> StoreResult<Option<ApiKeyRecord>> {
        let q = sqlx::query("SELECT * FROM api_keys WHERE org_id = $1 AND id = $2")
            .bind(self.org())
            .bind(*kid.as_uuid());
        self.opt(q).await
    }

    async fn list_api_keys(&mut self) -> StoreResult<Vec<ApiKeyRecord>> {
        let q =
            sqlx::query("SELECT * FROM api_keys WHERE org_id = $1 ORDER BY id").bind(self.org());
        self.all(q).await
    }

    async fn revoke_api_key(&mut self, kid: ApiKeyId, at: OffsetDateTime) -> StoreResult<bool> {
        let q = sqlx::query(
            "UPDATE api_keys SET revoked_at = $1 WHERE org_id = $2 AND id = $3 AND revoked_at IS NULL",
        )
        .bind(at)
        .bind(self.org())
        .bind(*kid.as_uuid());
        Ok(self.exec(q).await? == 1)
    }

    async fn touch_api_key(&mut self, kid: ApiKeyId, at: OffsetDateTime) -> StoreResult<()> {
        // A use never moves the last use back.
        let q = sqlx::query(
            "UPDATE api_keys SET last_used_at = $1 WHERE org_id = $2 AND id = $3 \
             AND (last_used_at IS NULL OR last_used_at < $1)",
        )
        .bind(at)
        .bind(self.org())
        .bind(*kid.as_uuid());
        self.exec(q).await.map(|_| ())
    }
}
