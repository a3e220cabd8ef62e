//! Global tables: the registry, the org directory, operator keys, the key index and
//! artifact bytes. None of them has an `org_id` column; they are not tenant data.

use async_trait::async_trait;
use sqlx::PgPool;
use sqlx::types::Json;
use tenantry_core::{ApiKeyId, OrgId, PublisherId};
use tenantry_store::rows::key_index_row;
use tenantry_store::*;
use time::OffsetDateTime;

use crate::db_err;
use crate::rows::*;

/// The control store on the shared pool.
#[derive(Clone)]
pub struct PgControl {
    pub(crate) pool: PgPool,
}

/// The plugin summary query (a macro so `concat!` can extend it into `&'static str`s).
macro_rules! summary_select {
    () => {
        "SELECT p.name, p.publisher, p.description, p.latest_version, p.capabilities, p.docs, \
         p.created_at, \
         (SELECT AVG(rating)::float8 FROM reviews r WHERE r.plugin = p.name) AS rating_average, \
         (SELECT COUNT(*) FROM reviews r WHERE r.plugin = p.name) AS rating_count \
         FROM plugins p"
    };
}

/// Artifacts live in the database in pooled mode, so every node serves every version.
#[async_trait]
impl BlobStore for PgControl {
    async fn put_blob(&self, digest: &str, bytes: &[u8]) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO artifacts (sha256, bytes) VALUES ($1, $2) ON CONFLICT (sha256) DO NOTHING",
        )
        .bind(digest)
        .bind(bytes)
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn get_blob(&self, digest: &str) -> StoreResult<Option<Vec<u8>>> {
        sqlx::query("SELECT bytes FROM artifacts WHERE sha256 = $1")
            .bind(digest)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?
            .map(|r| get(&r, "bytes"))
            .transpose()
    }
}

#[async_trait]
impl ControlStore for PgControl {
    async fn insert_org(&self, o: &OrgRecord) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO orgs (id, name, tier, overrides, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(o.id.as_uuid())
        .bind(&o.name)
        .bind(&o.tier)
        .bind(Json(to_json(&o.overrides)?))
        .bind(o.created_at)
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn get_org(&self, org_id: OrgId) -> StoreResult<Option<OrgRecord>> {
        sqlx::query("SELECT * FROM orgs WHERE id = $1")
            .bind(org_id.as_uuid())
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?
            .map(|r| read(&r))
            .transpose()
    }

    async fn list_orgs(&self) -> StoreResult<Vec<OrgRecord>> {
        sqlx::query("SELECT * FROM orgs ORDER BY id")
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?
            .iter()
            .map(read)
            .collect()
    }

    async fn set_org_tier(&self, org_id: OrgId, tier: &str) -> StoreResult<bool> {
        let r = sqlx::query("UPDATE orgs SET tier = $1 WHERE id = $2")
            .bind(tier)
            .bind(org_id.as_uuid())
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(r.rows_affected() == 1)
    }

    async fn set_org_overrides(
        &self,
        org_id: OrgId,
        overrides: &tenantry_core::TierOverrides,
    ) -> StoreResult<bool> {
        let r = sqlx::query("UPDATE orgs SET overrides = $1 WHERE id = $2")
            .bind(Json(to_json(overrides)?))
            .bind(org_id.as_uuid())
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(r.rows_affected() == 1)
    }

    async fn insert_operator_key(&self, k: &OperatorKeyRecord) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        sqlx::query(
            "INSERT INTO operator_keys (id, name, hash, created_at, expires_at, revoked_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(k.id.as_uuid())
        .bind(&k.name)
        .bind(&k.hash[..])
        .bind(k.created_at)
        .bind(k.expires_at)
        .bind(k.revoked_at)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        sqlx::query("INSERT INTO key_index (hash, key_id, home_org) VALUES ($1, $2, NULL)")
            .bind(&k.hash[..])
            .bind(k.id.as_uuid())
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        tx.commit().await.map_err(db_err)
    }

    async fn count_operator_keys(&self) -> StoreResult<u64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM operator_keys")
            .fetch_one(&self.pool)
            .await
            .map_err(db_err)?;
        Cols(&row).u64("n")
    }

    async fn insert_key_index(&self, e: &KeyIndexEntry) -> StoreResult<()> {
        sqlx::query("INSERT INTO key_index (hash, key_id, home_org) VALUES ($1, $2, $3)")
            .bind(&e.hash[..])
            .bind(e.key_id.as_uuid())
            .bind(e.org_id.map(|o| *o.as_uuid()))
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn delete_key_index(&self, key_id: ApiKeyId) -> StoreResult<()> {
        sqlx::query("DELETE FROM key_index WHERE key_id = $1")
            .bind(key_id.as_uuid())
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn lookup_key(&self, hash: &[u8; 32]) -> StoreResult<Option<KeyLookup>> {
        let Some(row) =
            sqlx::query("SELECT key_id, home_org AS org_id FROM key_index WHERE hash = $1")
                .bind(&hash[..])
                .fetch_optional(&self.pool)
                .await
                .map_err(db_err)?
        else {
            return Ok(None);
        };
        match key_index_row(&Cols(&row))? {
            (key_id, Some(org_id)) => Ok(Some(KeyLookup::Tenant { org_id, key_id })),
            (key_id, None) => sqlx::query("SELECT * FROM operator_keys WHERE id = $1")
                .bind(key_id.as_uuid())
                .fetch_optional(&self.pool)
                .await
                .map_err(db_err)?
                .map(|k| read(&k).map(KeyLookup::Operator))
                .transpose(),
        }
    }

    async fn insert_publisher(&self, p: &PublisherRecord) -> StoreResult<()> {
        sqlx::query("INSERT INTO publishers (id, name, created_at) VALUES ($1, $2, $3)")
            .bind(p.id.as_uuid())
            .bind(&p.name)
            .bind(p.created_at)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn get_publisher_by_name(&self, name: &str) -> StoreResult<Option<PublisherRecord>> {
        sqlx::query("SELECT * FROM publishers WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?
            .map(|r| read(&r))
            .transpose()
    }

    async fn list_publishers(&self) -> StoreResult<Vec<PublisherRecord>> {
        sqlx::query("SELECT * FROM publishers ORDER BY name COLLATE \"C\"")
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?
            .iter()
            .map(read)
            .collect()
    }

    async fn insert_publisher_key(&self, k: &PublisherKeyRecord) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO publisher_keys (key_id, publisher_id, public_key, not_before, not_after, \
             revoked_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&k.key_id)
        .bind(k.publisher_id.as_uuid())
        .bind(&k.public_key)
        .bind(k.not_before)
        .bind(k.not_after)
        .bind(k.revoked_at)
        .bind(k.created_at)
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn get_publisher_key(&self, key_id: &str) -> StoreResult<Option<PublisherKeyRecord>> {
        sqlx::query("SELECT * FROM publisher_keys WHERE key_id = $1")
            .bind(key_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?
            .map(|r| read(&r))
            .transpose()
    }

    async fn list_publisher_keys(&self, p: PublisherId) -> StoreResult<Vec<PublisherKeyRecord>> {
        sqlx::query("SELECT * FROM publisher_keys WHERE publisher_id = $1 ORDER BY created_at, key_id COLLATE \"C\"")
            .bind(p.as_uuid())
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?
            .iter()
            .map(read)
            .collect()
    }

    async fn revoke_publisher_key(&self, key_id: &str, at: OffsetDateTime) -> StoreResult<bool> {
        let r = sqlx::query(
            "UPDATE publisher_keys SET revoked_at = $1 WHERE key_id = $2 AND revoked_at IS NULL",
        )
        .bind(at)
        .bind(key_id)
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(r.rows_affected() == 1)
    }

    async fn insert_version(&self, v: &VersionRecord) -> StoreResult<()> {
        let manifest: serde_json::Value = serde_json::from_str(&v.manifest_json)
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        let field = |k: &str| manifest.get(k).cloned().unwrap_or(serde_json::Value::Null);
        let description = field("description")
            .as_str()
            .unwrap_or_default()
            .to_string();
        let docs = field("docs").as_str().unwrap_or_default().to_string();
        let caps = match field("capabilities") {
            serde_json::Value::Null => serde_json::json!([]),
            c => c,
        };
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        // Serialises publishes of one plugin, as the embedded store's write lock does.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 1))")
            .bind(&v.plugin)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        sqlx::query(
            "INSERT INTO plugins (name, publisher, latest_version, description, capabilities, docs, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (name) DO UPDATE SET latest_version = excluded.latest_version, \
             description = excluded.description, capabilities = excluded.capabilities, docs = excluded.docs",
        )
        .bind(&v.plugin)
        .bind(&v.publisher)
        .bind(&v.version)
        .bind(&description)
        .bind(Json(&caps))
        .bind(&docs)
        .bind(v.published_at)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        sqlx::query(
            "INSERT INTO plugin_versions (plugin, version, publisher, manifest_json, manifest_sha256, \
             artifact_sha256, artifact_size, key_id, signature, signed_at, published_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(&v.plugin)
        .bind(&v.version)
        .bind(&v.publisher)
        .bind(&v.manifest_json)
        .bind(&v.manifest_sha256)
        .bind(&v.artifact_sha256)
        .bind(i64_of(v.artifact_size))
        .bind(&v.key_id)
        .bind(&v.signature)
        .bind(v.signed_at)
        .bind(v.published_at)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        tx.commit().await.map_err(db_err)
    }

    async fn list_versions(&self, plugin: &str) -> StoreResult<Vec<VersionRecord>> {
        sqlx::query("SELECT * FROM plugin_versions WHERE plugin = $1 ORDER BY published_at, version COLLATE \"C\"")
            .bind(plugin)
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?
            .iter()
            .map(read)
            .collect()
    }

    async fn get_version(&self, plugin: &str, v: &str) -> StoreResult<Option<VersionRecord>> {
        sqlx::query("SELECT * FROM plugin_versions WHERE plugin = $1 AND version = $2")
            .bind(plugin)
            .bind(v)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?
            .map(|r| read(&r))
            .transpose()
    }

    async fn get_plugin(&self, name: &str) -> StoreResult<Option<PluginSummary>> {
        sqlx::query(concat!(summary_select!(), " WHERE p.name = $1"))
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?
            .map(|r| read(&r))
            .transpose()
    }

    async fn search_plugins(&self, query: &str, limit: u32) -> StoreResult<Vec<PluginSummary>> {
        // Every whitespace-separated term must occur (case-insensitively, literally) in
        // the name, description, capabilities or docs: the same rule as the embedded
        // store. strpos, not LIKE, so '%' and '_' in a query are plain characters.
        let terms: Vec<String> = query
            .split_whitespace()
            .take(8)
            .map(str::to_lowercase)
            .collect();
        sqlx::query(concat!(
            summary_select!(),
            " WHERE NOT EXISTS (SELECT 1 FROM unnest($1::text[]) AS t(term) WHERE strpos(lower(\
             p.name || ' ' || p.description || ' ' || p.capabilities::text || ' ' || p.docs), t.term) = 0) \
             ORDER BY p.name COLLATE \"C\" LIMIT $2"
        ))
        .bind(&terms)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?
        .iter()
        .map(read)
        .collect()
    }

    async fn upsert_review(&self, r: &ReviewRecord) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO reviews (plugin, reviewer_org, rating, body, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (plugin, reviewer_org) DO UPDATE SET \
             rating = excluded.rating, body = excluded.body, updated_at = excluded.updated_at",
        )
        .bind(&r.plugin)
        .bind(r.org_id.as_uuid())
        .bind(i32::from(r.rating))
        .bind(&r.body)
        .bind(r.created_at)
        .bind(r.updated_at)
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn list_reviews(&self, plugin: &str) -> StoreResult<Vec<ReviewRecord>> {
        sqlx::query(
            "SELECT plugin, reviewer_org AS org_id, rating, body, created_at, updated_at FROM reviews \
             WHERE plugin = $1 ORDER BY updated_at DESC, reviewer_org",
        )
        .bind(plugin)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?
        .iter()
        .map(read)
        .collect()
    }
}
