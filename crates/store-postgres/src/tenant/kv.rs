//! Key-value data of installs: [`KvTx`] on the pooled store.

use async_trait::async_trait;
use sqlx::postgres::PgRow;
use tenantry_core::InstallId;
use tenantry_store::*;
use time::OffsetDateTime;

use super::PgTenantTx;
use crate::rows::*;

#[async_trait]
impl KvTx for PgTenantTx {
    async fn kv_get(&mut self, iid: InstallId, key: &str) -> StoreResult<Option<Vec<u8>>> {
        let q =
            sqlx::query("SELECT value FROM kv WHERE org_id = $1 AND install_id = $2 AND key = $3")
                .bind(self.org())
                .bind(*iid.as_uuid())
                .bind(key.to_string());
        self.opt_with(q, |r: &PgRow| Cols(r).bytes("value")).await
    }

    async fn kv_set(&mut self, iid: InstallId, key: &str, value: &[u8]) -> StoreResult<()> {
        let q = sqlx::query(
            "INSERT INTO kv (org_id, install_id, key, value, updated_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (org_id, install_id, key) DO UPDATE SET value = excluded.value, \
             updated_at = excluded.updated_at",
        )
        .bind(self.org())
        .bind(*iid.as_uuid())
        .bind(key.to_string())
        .bind(value.to_vec())
        .bind(OffsetDateTime::now_utc());
        self.exec(q).await.map(|_| ())
    }

    async fn kv_delete(&mut self, iid: InstallId, key: &str) -> StoreResult<bool> {
        let q = sqlx::query("DELETE FROM kv WHERE org_id = $1 AND install_id = $2 AND key = $3")
            .bind(self.org())
            .bind(*iid.as_uuid())
            .bind(key.to_string());
        Ok(self.exec(q).await? == 1)
    }

    async fn kv_list(
        &mut self,
        iid: InstallId,
        prefix: &str,
        limit: u32,
    ) -> StoreResult<Vec<String>> {
        // Prefix match by range (the column is COLLATE "C"), not LIKE, so '%' and '_'
        // in keys are literal.
        let upper = format!("{prefix}\u{10FFFF}");
        let q = sqlx::query(
            "SELECT key FROM kv WHERE org_id = $1 AND install_id = $2 AND key >= $3 AND key < $4 \
             ORDER BY key LIMIT $5",
        )
        .bind(self.org())
        .bind(*iid.as_uuid())
        .bind(prefix.to_string())
        .bind(upper)
        .bind(i64::from(limit));
        self.all_with(q, |r: &PgRow| Cols(r).text("key")).await
    }

    async fn kv_usage_bytes(&mut self) -> StoreResult<u64> {
        let q = sqlx::query(
            "SELECT COALESCE(SUM(octet_length(key) + octet_length(value)), 0)::bigint AS n \
             FROM kv WHERE org_id = $1",
        )
        .bind(self.org());
        self.count(q).await
    }

    async fn kv_delete_all(&mut self, iid: InstallId) -> StoreResult<u64> {
        let q = sqlx::query("DELETE FROM kv WHERE org_id = $1 AND install_id = $2")
            .bind(self.org())
            .bind(*iid.as_uuid());
        self.exec(q).await
    }
}
