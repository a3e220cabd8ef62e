//! Secrets (ciphertext only): [`SecretTx`] on the pooled store.

use async_trait::async_trait;
use tenantry_core::InstallId;
use tenantry_store::*;

use super::PgTenantTx;

#[async_trait]
impl SecretTx for PgTenantTx {
    async fn upsert_secret(&mut self, s: &SecretRecord) -> StoreResult<()> {
        let q = sqlx::query(
            "INSERT INTO secrets (org_id, install_id, name, key_version, ciphertext, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (org_id, install_id, name) DO UPDATE SET \
             key_version = excluded.key_version, ciphertext = excluded.ciphertext, updated_at = excluded.updated_at",
        )
        .bind(self.org())
        .bind(*s.install_id.as_uuid())
        .bind(s.name.clone())
        .bind(i64::from(s.key_version))
        .bind(s.ciphertext.clone())
        .bind(s.created_at)
        .bind(s.updated_at);
        self.exec(q).await.map(|_| ())
    }

    async fn get_secret(
        &mut self,
        iid: InstallId,
        name: &str,
    ) -> StoreResult<Option<SecretRecord>> {
        let q = sqlx::query(
            "SELECT * FROM secrets WHERE org_id = $1 AND install_id = $2 AND name = $3",
        )
        .bind(self.org())
        .bind(*iid.as_uuid())
        .bind(name.to_string());
        self.opt(q).await
    }

    async fn list_secrets(&mut self, iid: InstallId) -> StoreResult<Vec<SecretMeta>> {
        let q = sqlx::query(
            "SELECT name, key_version, created_at, updated_at FROM secrets \
             WHERE org_id = $1 AND install_id = $2 ORDER BY name",
        )
        .bind(self.org())
        .bind(*iid.as_uuid());
        self.all(q).await
    }

    async fn delete_secret(&mut self, iid: InstallId, name: &str) -> StoreResult<bool> {
        let q =
            sqlx::query("DELETE FROM secrets WHERE org_id = $1 AND install_id = $2 AND name = $3")
                .bind(self.org())
                .bind(*iid.as_uuid())
                .bind(name.to_string());
        Ok(self.exec(q).await? == 1)
    }

    async fn delete_secrets_of(&mut self, iid: InstallId) -> StoreResult<u64> {
        let q = sqlx::query("DELETE FROM secrets WHERE org_id = $1 AND install_id = $2")
            .bind(self.org())
            .bind(*iid.as_uuid());
        self.exec(q).await
    }
}
