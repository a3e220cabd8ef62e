//! Bindings of agents to installs: [`BindingTx`] on the pooled store.

use async_trait::async_trait;
use tenantry_core::{AgentId, InstallId};
use tenantry_store::*;

use super::PgTenantTx;

#[async_trait]
impl BindingTx for PgTenantTx {
    async fn insert_binding(&mut self, b: &BindingRecord) -> StoreResult<()> {
        let q = sqlx::query(
            "INSERT INTO bindings (org_id, agent_id, install_id, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(self.org())
        .bind(*b.agent_id.as_uuid())
        .bind(*b.install_id.as_uuid())
        .bind(b.created_at);
        self.exec(q).await.map(|_| ())
    }

    async fn delete_binding(&mut self, aid: AgentId, iid: InstallId) -> StoreResult<bool> {
        let q = sqlx::query(
            "DELETE FROM bindings WHERE org_id = $1 AND agent_id = $2 AND install_id = $3",
        )
        .bind(self.org())
        .bind(*aid.as_uuid())
        .bind(*iid.as_uuid());
        Ok(self.exec(q).await? == 1)
    }

    async fn list_bindings(&mut self) -> StoreResult<Vec<BindingRecord>> {
        let q =
            sqlx::query("SELECT * FROM bindings WHERE org_id = $1 ORDER BY agent_id, install_id")
                .bind(self.org());
        self.all(q).await
    }

    async fn is_bound(&mut self, aid: AgentId, iid: InstallId) -> StoreResult<bool> {
        let key = (self.org, aid, iid);
        if let Some(kept) = self.kept.bindings.get(&key, self.seen()) {
            return Ok(kept);
        }
        let q = sqlx::query(
            "SELECT 1 AS one FROM bindings WHERE org_id = $1 AND agent_id = $2 AND install_id = $3",
        )
        .bind(self.org())
        .bind(*aid.as_uuid())
        .bind(*iid.as_uuid());
        let bound = self.opt_with(q, |_| Ok(())).await?.is_some();
        self.kept.bindings.keep(key, self.seen(), bound);
        Ok(bound)
    }

    async fn delete_bindings_of_install(&mut self, iid: InstallId) -> StoreResult<u64> {
        let q = sqlx::query("DELETE FROM bindings WHERE org_id = $1 AND install_id = $2")
            .bind(self.org())
            .bind(*iid.as_uuid());
        self.exec(q).await
    }
}
