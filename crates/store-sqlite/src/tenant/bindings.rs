//! Bindings of agents to installs: [`BindingTx`] on the embedded store.

use async_trait::async_trait;
use tenantry_core::{AgentId, InstallId};
use tenantry_store::*;

use super::SqliteTenantTx;
use crate::hot::put;
use crate::rows::*;

#[async_trait]
impl BindingTx for SqliteTenantTx {
    async fn insert_binding(&mut self, b: &BindingRecord) -> StoreResult<()> {
        let q = sqlx::query(
            "INSERT INTO bindings (org_id, agent_id, install_id, created_at) VALUES (?, ?, ?, ?)",
        )
        .bind(self.org.clone())
        .bind(b.agent_id.to_string())
        .bind(b.install_id.to_string())
        .bind(ts(b.created_at));
        self.exec(q).await.map(|_| ())
    }

    async fn delete_binding(&mut self, aid: AgentId, iid: InstallId) -> StoreResult<bool> {
        let q = sqlx::query(
            "DELETE FROM bindings WHERE org_id = ? AND agent_id = ? AND install_id = ?",
        )
        .bind(self.org.clone())
        .bind(aid.to_string())
        .bind(iid.to_string());
        Ok(self.exec(q).await? == 1)
    }

    async fn list_bindings(&mut self) -> StoreResult<Vec<BindingRecord>> {
        let q =
            sqlx::query("SELECT * FROM bindings WHERE org_id = ? ORDER BY agent_id, install_id")
                .bind(&self.org);
        self.all(q).await
    }

    async fn is_bound(&mut self, aid: AgentId, iid: InstallId) -> StoreResult<bool> {
        if let Some(kept) = self
            .tenant
            .hot
            .get(|r| r.bindings.get(&(aid, iid)).copied())
        {
            return Ok(kept);
        }
        let token = self.tenant.hot.token();
        let q = sqlx::query(
            "SELECT 1 AS one FROM bindings WHERE org_id = ? AND agent_id = ? AND install_id = ?",
        )
        .bind(&self.org)
        .bind(aid.to_string())
        .bind(iid.to_string());
        let bound = self.opt_with(q, |_| Ok(())).await?.is_some();
        self.tenant
            .hot
            .keep(token, |r| put(&mut r.bindings, (aid, iid), bound));
        Ok(bound)
    }

    async fn delete_bindings_of_install(&mut self, iid: InstallId) -> StoreResult<u64> {
        let q = sqlx::query("DELETE FROM bindings WHERE org_id = ? AND install_id = ?")
            .bind(self.org.clone())
            .bind(iid.to_string());
        self.exec(q).await
    }
}
