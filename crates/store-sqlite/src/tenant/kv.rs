//! Key-value data of installs: [`KvTx`] on the embedded store.

use async_trait::async_trait;
use sqlx::sqlite::SqliteRow;
use tenantry_core::InstallId;
use tenantry_store::*;
use time::OffsetDateTime;

use super::SqliteTenantTx;
use crate::rows::*;

#[async_trait]
impl KvTx for SqliteTenantTx {
    async fn kv_get(&mut self, iid: InstallId, key: &str) -> StoreResult<Option<Vec<u8>>> {
        let q = sqlx::query("SELECT value FROM kv WHERE org_id = ? AND install_id = ? AND key = ?")
            .bind(&self.org)
            .bind(iid.to_string())
            .bind(key);
        self.opt_with(q, |r: &SqliteRow| Cols(r).bytes("value"))
            .await
    }

    async fn kv_set(&mut self, iid: InstallId, key: &str, value: &[u8]) -> StoreResult<()> {
        let q = sqlx::query(
            "INSERT INTO kv (org_id, install_id, key, value, updated_at) VALUES (?, ?, ?, ?, ?) \
             ON CONFLICT (org_id, install_id, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        )
        .bind(self.org.clone())
        .bind(iid.to_string())
        .bind(key.to_string())
        .bind(value.to_vec())
        .bind(ts(OffsetDateTime::now_utc()));
        self.exec(q).await.map(|_| ())
    }

    async fn kv_delete(&mut self, iid: InstallId, key: &str) -> StoreResult<bool> {
        let q = sqlx::query("DELETE FROM kv WHERE org_id = ? AND install_id = ? AND key = ?")
            .bind(self.org.clone())
            .bind(iid.to_string())
            .bind(key.to_string());
        Ok(self.exec(q).await? == 1)
    }

    async fn kv_list(
        &mut self,
        iid: InstallId,
        prefix: &str,
        limit: u32,
    ) -> StoreResult<Vec<String>> {
        // Prefix match by range, not LIKE, so '%' and '_' in keys are literal.
        let upper = format!("{prefix}\u{10FFFF}");
        let q = sqlx::query(
            "SELECT key FROM kv WHERE org_id = ? AND install_id = ? AND key >= ? AND key < ? ORDER BY key LIMIT ?",
        )
        .bind(&self.org)
        .bind(iid.to_string())
        .bind(prefix)
        .bind(upper)
        .bind(i64::from(limit));
        self.all_with(q, |r: &SqliteRow| Cols(r).text("key")).await
    }

    async fn kv_usage_bytes(&mut self) -> StoreResult<u64> {
        let q = sqlx::query(
            "SELECT COALESCE(SUM(LENGTH(CAST(key AS BLOB)) + LENGTH(value)), 0) AS n FROM kv WHERE org_id = ?",
        )
        .bind(&self.org);
        self.count(q).await
    }

    async fn kv_delete_all(&mut self, iid: InstallId) -> StoreResult<u64> {
        let q = sqlx::query("DELETE FROM kv WHERE org_id = ? AND install_id = ?")
            .bind(self.org.clone())
            .bind(iid.to_string());
        self.exec(q).await
    }
}
