//! Global tables: the registry, the org directory, operator keys, the key index and
//! artifact bytes. None of them has an `org_id` column; they are not tenant data.

use async_trait::async_trait;
use sqlx::PgPool;
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use std::sync::Arc;
use tenantry_core::{ApiKeyId, OrgId, PublisherId};
use tenantry_store::rows::{PluginListing, key_index_row, search_terms};
use tenantry_store::*;
use time::OffsetDateTime;

use crate::db_err;
use crate::kept::{Counter, Kept};
use crate::rows::*;

/// The control store on the shared pool.
#[derive(Clone)]
pub struct PgControl {
    pub(crate) pool: PgPool,
    pub(crate) kept: Arc<Kept>,
}

impl PgControl {
    /// Runs a statement; the rows it changed.
    async fn exec(&self, q: Query<'_>) -> StoreResult<u64> {
        let r = q.execute(&self.pool).await.map_err(db_err)?;
        Ok(r.rows_affected())
    }

    /// Reads one record, if there is one.
    async fn opt<T: FromColumns>(&self, q: Query<'_>) -> StoreResult<Option<T>> {
        self.opt_with(q, read).await
    }

    /// Reads one row, if there is one, through `map`.
    async fn opt_with<T>(
        &self,
        q: Query<'_>,
        map: impl Fn(&PgRow) -> StoreResult<T> + Send,
    ) -> StoreResult<Option<T>> {
        let row = q.fetch_optional(&self.pool).await.map_err(db_err)?;
        row.as_ref().map(map).transpose()
    }

    /// Reads records.
    async fn all<T: FromColumns>(&self, q: Query<'_>) -> StoreResult<Vec<T>> {
        let rows = q.fetch_all(&self.pool).await.map_err(db_err)?;
        rows.iter().map(read).collect()
    }

    /// The `n` column of a query's one row.
    async fn count(&self, q: Query<'_>) -> StoreResult<u64> {
        let row = q.fetch_one(&self.pool).await.map_err(db_err)?;
        Cols(&row).u64("n")
    }
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
        let q = sqlx::query(
            "INSERT INTO artifacts (sha256, bytes) VALUES ($1, $2) ON CONFLICT (sha256) DO NOTHING",
        )
        .bind(digest)
        .bind(bytes);
        self.exec(q).await.map(|_| ())
    }

    async fn get_blob(&self, digest: &str) -> StoreResult<Option<Vec<u8>>> {
        let q = sqlx::query("SELECT bytes FROM artifacts WHERE sha256 = $1").bind(digest);
        self.opt_with(q, |r| get(r, "bytes")).await
    }
}

#[async_trait]
impl ControlStore for PgControl {
    async fn insert_org(&self, o: &OrgRecord) -> StoreResult<()> {
        let q = sqlx::query(
            "INSERT INTO orgs (id, name, tier, overrides, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(o.id.as_uuid())
        .bind(&o.name)
        .bind(&o.tier)
        .bind(Json(to_json(&o.overrides)?))
        .bind(o.created_at);
        self.exec(q).await.map(|_| ())
    }

    async fn get_org(&self, org_id: OrgId, seen: Seen) -> StoreResult<Option<OrgRecord>> {
        let seen = Counter::Org.of(seen);
        if let Some(kept) = self.kept.orgs.get(&org_id, seen) {
            return Ok(kept);
        }
        let q = sqlx::query("SELECT * FROM orgs WHERE id = $1").bind(org_id.as_uuid());
        let found = self.opt(q).await?;
        self.kept.orgs.keep(org_id, seen, found.clone());
        Ok(found)
    }

    async fn list_orgs(&self) -> StoreResult<Vec<OrgRecord>> {
        let q = sqlx::query("SELECT * FROM orgs ORDER BY id");
        self.all(q).await
    }

    async fn set_org_tier(&self, org_id: OrgId, tier: &str) -> StoreResult<bool> {
        let q = sqlx::query("UPDATE orgs SET tier = $1 WHERE id = $2")
            .bind(tier)
            .bind(org_id.as_uuid());
        Ok(self.exec(q).await? == 1)
    }

    async fn set_org_suspended(
        &self,
        org_id: OrgId,
        at: Option<OffsetDateTime>,
    ) -> StoreResult<bool> {
        let q = sqlx::query("UPDATE orgs SET suspended_at = $1 WHERE id = $2")
            .bind(at)
            .bind(org_id.as_uuid());
        Ok(self.exec(q).await? == 1)
    }

    async fn delete_org(&self, org_id: OrgId, at: OffsetDateTime) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        let done = sqlx::query(
            "INSERT INTO deleted_orgs (id, name, deleted_at) \
             SELECT id, name, $1 FROM orgs WHERE id = $2",
        )
        .bind(at)
        .bind(org_id.as_uuid())
        .execute(&mut *tx)
        .await
        .map_err(db_err)?
        .rows_affected()
            == 1;
        for sql in [
            "DELETE FROM key_index WHERE home_org = $1",
            "DELETE FROM orgs WHERE id = $1",
        ] {
            sqlx::query(sql)
                .bind(org_id.as_uuid())
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)?;
        Ok(done)
    }

    async fn set_org_overrides(
        &self,
        org_id: OrgId,
        overrides: &tenantry_core::TierOverrides,
    ) -> StoreResult<bool> {
        let q = sqlx::query("UPDATE orgs SET overrides = $1 WHERE id = $2")
            .bind(Json(to_json(overrides)?))
            .bind(org_id.as_uuid());
        Ok(self.exec(q).await? == 1)
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
        let q = sqlx::query("SELECT COUNT(*) AS n FROM operator_keys");
        self.count(q).await
    }

    async fn list_operator_keys(&self) -> StoreResult<Vec<OperatorKeyRecord>> {
        self.all(sqlx::query("SELECT * FROM operator_keys ORDER BY id"))
            .await
    }

    async fn revoke_operator_key(&self, id: ApiKeyId, at: OffsetDateTime) -> StoreResult<bool> {
        let q = sqlx::query(
            "UPDATE operator_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
        )
        .bind(at)
        .bind(id.as_uuid());
        Ok(self.exec(q).await? == 1)
    }

    async fn insert_key_index(&self, e: &KeyIndexEntry) -> StoreResult<()> {
        let q = sqlx::query("INSERT INTO key_index (hash, key_id, home_org) VALUES ($1, $2, $3)")
            .bind(&e.hash[..])
            .bind(e.key_id.as_uuid())
            .bind(e.org_id.map(|o| *o.as_uuid()));
        self.exec(q).await.map(|_| ())
    }

    async fn delete_key_index(&self, key_id: ApiKeyId) -> StoreResult<()> {
        let q = sqlx::query("DELETE FROM key_index WHERE key_id = $1").bind(key_id.as_uuid());
        self.exec(q).await.map(|_| ())
    }

    async fn lookup_key(&self, hash: &[u8; 32]) -> StoreResult<Option<KeyLookup>> {
        // The org's and the registry's generations in the same statement (see `kept`).
        let q = sqlx::query(
            "SELECT k.key_id, k.home_org AS org_id, \
             COALESCE((SELECT gen FROM generations WHERE org = k.home_org), 0) AS org_gen, \
             COALESCE((SELECT gen FROM generations \
                       WHERE org = '00000000-0000-0000-0000-000000000000'), 0) AS registry_gen \
             FROM key_index k WHERE k.hash = $1",
        )
        .bind(&hash[..]);
        let row = self
            .opt_with(q, |r| {
                let c = Cols(r);
                let seen = Seen::at(Generations {
                    org: c.u64("org_gen")?,
                    registry: c.u64("registry_gen")?,
                });
                Ok((key_index_row(&c)?, seen))
            })
            .await?;
        match row {
            None => Ok(None),
            Some(((key_id, Some(org_id)), seen)) => Ok(Some(KeyLookup::Tenant {
                org_id,
                key_id,
                seen,
            })),
            Some(((key_id, None), _)) => {
                let q =
                    sqlx::query("SELECT * FROM operator_keys WHERE id = $1").bind(key_id.as_uuid());
                Ok(self.opt(q).await?.map(KeyLookup::Operator))
            }
        }
    }

    async fn insert_publisher(&self, p: &PublisherRecord) -> StoreResult<()> {
        let q = sqlx::query("INSERT INTO publishers (id, name, created_at) VALUES ($1, $2, $3)")
            .bind(p.id.as_uuid())
            .bind(&p.name)
            .bind(p.created_at);
        self.exec(q).await.map(|_| ())
    }

    async fn get_publisher_by_name(&self, name: &str) -> StoreResult<Option<PublisherRecord>> {
        let q = sqlx::query("SELECT * FROM publishers WHERE name = $1").bind(name);
        self.opt(q).await
    }

    async fn list_publishers(&self) -> StoreResult<Vec<PublisherRecord>> {
        let q = sqlx::query("SELECT * FROM publishers ORDER BY name COLLATE \"C\"");
        self.all(q).await
    }

    async fn insert_publisher_key(&self, k: &PublisherKeyRecord) -> StoreResult<()> {
        let q = sqlx::query(
            "INSERT INTO publisher_keys (key_id, publisher_id, public_key, not_before, not_after, \
             revoked_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&k.key_id)
        .bind(k.publisher_id.as_uuid())
        .bind(&k.public_key)
        .bind(k.not_before)
        .bind(k.not_after)
        .bind(k.revoked_at)
        .bind(k.created_at);
        self.exec(q).await.map(|_| ())
    }

    async fn get_publisher_key(
        &self,
        key_id: &str,
        seen: Seen,
    ) -> StoreResult<Option<PublisherKeyRecord>> {
        let seen = Counter::Registry.of(seen);
        if let Some(kept) = self.kept.publisher_keys.get(key_id, seen) {
            return Ok(kept);
        }
        let q = sqlx::query("SELECT * FROM publisher_keys WHERE key_id = $1").bind(key_id);
        let found = self.opt(q).await?;
        self.kept
            .publisher_keys
            .keep(key_id.to_string(), seen, found.clone());
        Ok(found)
    }

    async fn list_publisher_keys(&self, p: PublisherId) -> StoreResult<Vec<PublisherKeyRecord>> {
        let q = sqlx::query("SELECT * FROM publisher_keys WHERE publisher_id = $1 ORDER BY created_at, key_id COLLATE \"C\"")
            .bind(p.as_uuid());
        self.all(q).await
    }

    async fn revoke_publisher_key(&self, key_id: &str, at: OffsetDateTime) -> StoreResult<bool> {
        let q = sqlx::query(
            "UPDATE publisher_keys SET revoked_at = $1 WHERE key_id = $2 AND revoked_at IS NULL",
        )
        .bind(at)
        .bind(key_id);
        Ok(self.exec(q).await? == 1)
    }

    async fn insert_version(&self, v: &VersionRecord) -> StoreResult<()> {
        let listing = PluginListing::of(v)?;
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
        .bind(&listing.description)
        .bind(Json(&listing.capabilities))
        .bind(&listing.docs)
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
        let q = sqlx::query("SELECT * FROM plugin_versions WHERE plugin = $1 ORDER BY published_at, version COLLATE \"C\"")
            .bind(plugin);
        self.all(q).await
    }

    async fn get_version(&self, plugin: &str, v: &str) -> StoreResult<Option<VersionRecord>> {
        let q = sqlx::query("SELECT * FROM plugin_versions WHERE plugin = $1 AND version = $2")
            .bind(plugin)
            .bind(v);
        self.opt(q).await
    }

    async fn get_plugin(&self, name: &str) -> StoreResult<Option<PluginSummary>> {
        let q = sqlx::query(concat!(summary_select!(), " WHERE p.name = $1")).bind(name);
        self.opt(q).await
    }

    async fn search_plugins(&self, query: &str, limit: u32) -> StoreResult<Vec<PluginSummary>> {
        // Every whitespace-separated term must occur (case-insensitively, literally) in
        // the name, description, capabilities or docs: the same rule as the embedded
        // store. strpos, not LIKE, so '%' and '_' in a query are plain characters.
        let terms = search_terms(query);
        let q = sqlx::query(concat!(
            summary_select!(),
            " WHERE NOT EXISTS (SELECT 1 FROM unnest($1::text[]) AS t(term) WHERE strpos(lower(\
             p.name || ' ' || p.description || ' ' || p.capabilities::text || ' ' || p.docs), t.term) = 0) \
             ORDER BY p.name COLLATE \"C\" LIMIT $2"
        ))
        .bind(&terms)
        .bind(i64::from(limit));
        self.all(q).await
    }

    async fn upsert_review(&self, r: &ReviewRecord) -> StoreResult<()> {
        let q = sqlx::query(
            "INSERT INTO reviews (plugin, reviewer_org, rating, body, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (plugin, reviewer_org) DO UPDATE SET \
             rating = excluded.rating, body = excluded.body, updated_at = excluded.updated_at",
        )
        .bind(&r.plugin)
        .bind(r.org_id.as_uuid())
        .bind(i32::from(r.rating))
        .bind(&r.body)
        .bind(r.created_at)
        .bind(r.updated_at);
        self.exec(q).await.map(|_| ())
    }

    async fn list_reviews(&self, plugin: &str) -> StoreResult<Vec<ReviewRecord>> {
        let q = sqlx::query(
            "SELECT plugin, reviewer_org AS org_id, rating, body, created_at, updated_at FROM reviews \
             WHERE plugin = $1 ORDER BY updated_at DESC, reviewer_org",
        )
        .bind(plugin);
        self.all(q).await
    }
}
