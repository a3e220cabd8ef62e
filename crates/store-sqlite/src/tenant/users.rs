//! Users: [`UserTx`] on the embedded store.

use async_trait::async_trait;
use tenantry_core::{Role, UserId};
use tenantry_store::*;

use super::SqliteTenantTx;
use crate::rows::*;

#[async_trait]
impl UserTx for SqliteTenantTx {
    async fn insert_user(&mut self, u: &UserRecord) -> StoreResult<()> {
        let q = sqlx::query(
            "INSERT INTO users (org_id, id, name, role, created_at) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(self.org.clone())
        .bind(u.id.to_string())
        .bind(u.name.clone())
        .bind(u.role.as_str())
        .bind(ts(u.created_at));
        self.exec(q).await.map(|_| ())
    }

    async fn get_user(&mut self, uid: UserId) -> StoreResult<Option<UserRecord>> {
        let q = sqlx::query("SELECT * FROM users WHERE org_id = ? AND id = ?")
            .bind(&self.org)
            .bind(uid.to_string());
        self.opt(q).await
    }

    async fn list_users(&mut self) -> StoreResult<Vec<UserRecord>> {
        let q = sqlx::query("SELECT * FROM users WHERE org_id = ? ORDER BY id").bind(&self.org);
        self.all(q).await
    }

    async fn set_user_role(&mut self, uid: UserId, role: Role) -> StoreResult<bool> {
        let q = sqlx::query("UPDATE users SET role = ? WHERE org_id = ? AND id = ?")
            .bind(role.as_str())
            .bind(self.org.clone())
            .bind(uid.to_string());
        Ok(self.exec(q).await? == 1)
    }
}
