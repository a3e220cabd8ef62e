//! Agents: [`AgentTx`] on the embedded store.

use async_trait::async_trait;
use tenantry_core::AgentId;
use tenantry_store::*;

use super::SqliteTenantTx;
use crate::rows::*;

#[async_trait]
impl AgentTx for SqliteTenantTx {
    async fn insert_agent(&mut self, a: &AgentRecord) -> StoreResult<()> {
        let q = sqlx::query(
            "INSERT INTO agents (org_id, id, name, on_behalf_of, grants, created_at) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(self.org.clone())
        .bind(a.id.to_string())
        .bind(a.name.clone())
        .bind(a.on_behalf_of.to_string())
        .bind(to_json(&a.grants)?)
        .bind(ts(a.created_at));
        self.exec(q).await.map(|_| ())
    }

    async fn get_agent(&mut self, aid: AgentId) -> StoreResult<Option<AgentRecord>> {
        let q = sqlx::query("SELECT * FROM agents WHERE org_id = ? AND id = ?")
            .bind(&self.org)
            .bind(aid.to_string());
        self.opt(q).await
    }

    async fn list_agents(&mut self) -> StoreResult<Vec<AgentRecord>> {
        let q = sqlx::query("SELECT * FROM agents WHERE org_id = ? ORDER BY id").bind(&self.org);
        self.all(q).await
    }

    async fn delete_agent(&mut self, aid: AgentId) -> StoreResult<bool> {
        let q = sqlx::query("DELETE FROM agents WHERE org_id = ? AND id = ?")
            .bind(self.org.clone())
            .bind(aid.to_string());
        Ok(self.exec(q).await? == 1)
    }
}
