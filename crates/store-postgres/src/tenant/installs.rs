//! Installs: [`InstallTx`] on the pooled store.

use async_trait::async_trait;
use sqlx::types::Json;
use tenantry_core::InstallId;
use tenantry_store::*;

use super::PgTenantTx;
use crate::rows::*;

#[async_trait]
impl InstallTx for PgTenantTx {
    async fn insert_install(&mut self, i: &InstallRecord) -> StoreResult<()> {
        let q = sqlx::query(
            "INSERT INTO installs (org_id, id, plugin, version, previous_version, artifact_sha256, \
             config, grants, enabled, rate_limit_per_minute, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(self.org())
        .bind(*i.id.as_uuid())
        .bind(i.plugin.clone())
        .bind(i.version.clone())
        .bind(i.previous_version.clone())
        .bind(i.artifact_sha256.clone())
        .bind(Json(i.config.clone()))
        .bind(Json(to_json(&i.grants)?))
        .bind(i.enabled)
        .bind(i.rate_limit_per_minute.map(i64::from))
        .bind(i.created_at)
        .bind(i.updated_at);
        self.exec(q).await.map(|_| ())
    }

    async fn get_install(&mut self, iid: InstallId) -> StoreResult<Option<InstallRecord>> {
        let key = (self.org, iid);
        if let Some(kept) = self.kept.installs.get(&key, self.seen()) {
            return Ok(kept);
        }
        let q = sqlx::query("SELECT * FROM installs WHERE org_id = $1 AND id = $2")
            .bind(self.org())
            .bind(*iid.as_uuid());
        let found = self.opt(q).await?;
        self.kept.installs.keep(key, self.seen(), found.clone());
        Ok(found)
    }

    async fn get_install_by_plugin(&mut self, plugin: &str) -> StoreResult<Option<InstallRecord>> {
        let q = sqlx::query("SELECT * FROM installs WHERE org_id = $1 AND plugin = $2")
            .bind(self.org())
            .bind(plugin.to_string());
        self.opt(q).await
    }

    async fn list_installs(&mut self) -> StoreResult<Vec<InstallRecord>> {
        let q =
            sqlx::query("SELECT * FROM installs WHERE org_id = $1 ORDER BY id").bind(self.org());
        self.all(q).await
    }

    async fn update_install(&mut self, i: &InstallRecord) -> StoreResult<bool> {
        let q = sqlx::query(
            "UPDATE installs SET version = $1, previous_version = $2, artifact_sha256 = $3, \
             config = $4, grants = $5, enabled = $6, rate_limit_per_minute = $7, updated_at = $8 \
             WHERE org_id = $9 AND id = $10",
        )
        .bind(i.version.clone())
        .bind(i.previous_version.clone())
        .bind(i.artifact_sha256.clone())
        .bind(Json(i.config.clone()))
        .bind(Json(to_json(&i.grants)?))
        .bind(i.enabled)
        .bind(i.rate_limit_per_minute.map(i64::from))
        .bind(i.updated_at)
        .bind(self.org())
        .bind(*i.id.as_uuid());
        Ok(self.exec(q).await? == 1)
    }

    async fn delete_install(&mut self, iid: InstallId) -> StoreResult<bool> {
        let q = sqlx::query("DELETE FROM installs WHERE org_id = $1 AND id = $2")
            .bind(self.org())
            .bind(*iid.as_uuid());
        Ok(self.exec(q).await? == 1)
    }
}
