//! Agents: [`AgentTx`] on the pooled store.

use async_trait::async_trait;
use sqlx::types::Json;
use tenantry_core::AgentId;
use tenantry_store::*;

use super::PgTenantTx;
use crate::rows::*;

#[async_trait]
impl AgentTx for PgTenantTx {
    async fn insert_agent(&mut self, a: &AgentRecord) -> StoreResult<()> {
        let q = sqlx::query(
            "INSERT INTO agents (org_id, id, name, on_behalf_of, grants, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(self.org())
        .bind(*a.id.as_uuid())
        .bind(a.name.clone())
        .bind(*a.on_behalf_of.as_uuid())
        .bind(Json(to_json(&a.grants)?))
        .bind(a.created_at);
        self.exec(q).await.map(|_| ())
    }

    async fn get_agent(&mut self, aid: AgentId) -> StoreResult<Option<AgentRecord>> {
        let q = sqlx::query("SELECT * FROM agents WHERE org_id = $1 AND id = $2")
            .bind(self.org())
            .bind(*aid.as_uuid());
        self.opt(q).await
    }

    async fn list_agents(&mut self) -> StoreResult<Vec<AgentRecord>> {
        let q = sqlx::query("SELECT * FROM agents WHERE org_id = $1 ORDER BY id").bind(self.org());
        self.all(q).await
    }

    async fn delete_agent(&mut self, aid: AgentId) -> StoreResult<bool> {
        let q = sqlx::query("DELETE FROM agents WHERE org_id = $1 AND id = $2")
            .bind(self.org())
            .bind(*aid.as_uuid());
        Ok(self.exec(q).await? == 1)
    }
}
