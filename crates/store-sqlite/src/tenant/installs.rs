//! Installs: [`InstallTx`] on the embedded store.

use async_trait::async_trait;
use tenantry_core::InstallId;
use tenantry_store::*;

use super::SqliteTenantTx;
use crate::hot::put;
use crate::rows::*;

#[async_trait]
impl InstallTx for SqliteTenantTx {
    async fn insert_install(&mut self, i: &InstallRecord) -> StoreResult<()> {
        let q = sqlx::query(
            "INSERT INTO installs (org_id, id, plugin, version, previous_version, artifact_sha256, \
             config, grants, enabled, rate_limit_per_minute, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(self.org.clone())
        .bind(i.id.to_string())
        .bind(i.plugin.clone())
        .bind(i.version.clone())
        .bind(i.previous_version.clone())
        .bind(i.artifact_sha256.clone())
        .bind(to_json(&i.config)?)
        .bind(to_json(&i.grants)?)
        .bind(i64::from(i.enabled))
        .bind(i.rate_limit_per_minute.map(i64::from))
        .bind(ts(i.created_at))
        .bind(ts(i.updated_at));
        self.exec(q).await.map(|_| ())
    }

    async fn get_install(&mut self, iid: InstallId) -> StoreResult<Option<InstallRecord>> {
        if let Some(kept) = self.tenant.hot.get(|r| r.installs.get(&iid).cloned()) {
            return Ok(kept);
        }
        let token = self.tenant.hot.token();
        let q = sqlx::query("SELECT * FROM installs WHERE org_id = ? AND id = ?")
            .bind(&self.org)
            .bind(iid.to_string());
        let found: Option<InstallRecord> = self.opt(q).await?;
        self.tenant
            .hot
            .keep(token, |r| put(&mut r.installs, iid, found.clone()));
        Ok(found)
    }

    async fn get_install_by_plugin(&mut self, plugin: &str) -> StoreResult<Option<InstallRecord>> {
        let q = sqlx::query("SELECT * FROM installs WHERE org_id = ? AND plugin = ?")
            .bind(&self.org)
            .bind(plugin);
        self.opt(q).await
    }

    async fn list_installs(&mut self) -> StoreResult<Vec<InstallRecord>> {
        let q = sqlx::query("SELECT * FROM installs WHERE org_id = ? ORDER BY id").bind(&self.org);
        self.all(q).await
    }

    async fn update_install(&mut self, i: &InstallRecord) -> StoreResult<bool> {
        let q = sqlx::query(
            "UPDATE installs SET version = ?, previous_version = ?, artifact_sha256 = ?, config = ?, \
             grants = ?, enabled = ?, rate_limit_per_minute = ?, updated_at = ? WHERE org_id = ? AND id = ?",
        )
        .bind(i.version.clone())
        .bind(i.previous_version.clone())
        .bind(i.artifact_sha256.clone())
        .bind(to_json(&i.config)?)
        .bind(to_json(&i.grants)?)
        .bind(i64::from(i.enabled))
        .bind(i.rate_limit_per_minute.map(i64::from))
        .bind(ts(i.updated_at))
        .bind(self.org.clone())
        .bind(i.id.to_string());
        Ok(self.exec(q).await? == 1)
    }

    async fn delete_install(&mut self, iid: InstallId) -> StoreResult<bool> {
        let q = sqlx::query("DELETE FROM installs WHERE org_id = ? AND id = ?")
            .bind(self.org.clone())
            .bind(iid.to_string());
        Ok(self.exec(q).await? == 1)
    }
}
