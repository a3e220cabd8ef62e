//! Users: [`UserTx`] on the pooled store.

use async_trait::async_trait;
use tenantry_core::{Role, UserId};
use tenantry_store::*;

use super::PgTenantTx;

#[async_trait]
impl UserTx for PgTenantTx {
    async fn insert_user(&mut self, u: &UserRecord) -> StoreResult<()> {
        let q = sqlx::query(
            "INSERT INTO users (org_id, id, name, role, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(self.org())
        .bind(*u.id.as_uuid())
        .bind(u.name.clone())
        .bind(u.role.as_str())
        .bind(u.created_at);
        self.exec(q).await.map(|_| ())
    }

    async fn get_user(&mut self, uid: UserId) -> StoreResult<Option<UserRecord>> {
        let q = sqlx::query("SELECT * FROM users WHERE org_id = $1 AND id = $2")
            .bind(self.org())
            .bind(*uid.as_uuid());
        self.opt(q).await
    }

    async fn list_users(&mut self) -> StoreResult<Vec<UserRecord>> {
        let q = sqlx::query("SELECT * FROM users WHERE org_id = $1 ORDER BY id").bind(self.org());
        self.all(q).await
    }

    async fn set_user_role(&mut self, uid: UserId, role: Role) -> StoreResult<bool> {
        let q = sqlx::query("UPDATE users SET role = $1 WHERE org_id = $2 AND id = $3")
            .bind(role.as_str())
            .bind(self.org())
            .bind(*uid.as_uuid());
        Ok(self.exec(q).await? == 1)
    }
}
