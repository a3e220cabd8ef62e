//! Org keys (wrapped by the master key): [`OrgKeyTx`] on the pooled store.

use async_trait::async_trait;
use tenantry_store::*;

use super::PgTenantTx;

#[async_trait]
impl OrgKeyTx for PgTenantTx {
    async fn current_org_key(&mut self) -> StoreResult<Option<OrgKeyRecord>> {
        let q =
            sqlx::query("SELECT * FROM org_keys WHERE org_id = $1 ORDER BY version DESC LIMIT 1")
                .bind(self.org());
        self.opt(q).await
    }

    async fn get_org_key(&mut self, version: u32) -> StoreResult<Option<OrgKeyRecord>> {
        let q = sqlx::query("SELECT * FROM org_keys WHERE org_id = $1 AND version = $2")
            .bind(self.org())
            .bind(i64::from(version));
        self.opt(q).await
    }

    async fn insert_org_key(&mut self, k: &OrgKeyRecord) -> StoreResult<()> {
        let q = sqlx::query(
            "INSERT INTO org_keys (org_id, version, wrapped, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(self.org())
        .bind(i64::from(k.version))
        .bind(k.wrapped.clone())
        .bind(k.created_at);
        self.exec(q).await.map(|_| ())
    }

    async fn delete_org_keys_before(&mut self, version: u32) -> StoreResult<u64> {
        let q = sqlx::query("DELETE FROM org_keys WHERE org_id = $1 AND version < $2")
            .bind(self.org())
            .bind(i64::from(version));
        self.exec(q).await
    }
}
