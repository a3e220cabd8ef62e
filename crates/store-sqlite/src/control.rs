//! `control.db`: the registry, the org directory, operator keys, the key index.

use async_trait::async_trait;
use sqlx::SqlitePool;
use sqlx::sqlite::SqliteRow;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use tenantry_core::{ApiKeyId, OrgId, PublisherId};
use tenantry_store::rows::{PluginListing, key_index_row, search_terms};
use tenantry_store::*;
use time::OffsetDateTime;

use crate::hot::{Hot, put};
use crate::rows::*;
use crate::{Footprint, db_err, open_pool};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/control");

/// The control store on `control.db`. Every write holds a [`Hot::writing`] guard,
/// so the kept rows below are never stale (see [`crate::hot`]).
#[derive(Clone)]
pub struct SqliteControl {
    pool: SqlitePool,
    hot: Arc<Hot<ControlRows>>,
}

/// What every request reads from `control.db`.
#[derive(Default)]
struct ControlRows {
    /// Known key hashes only (an unknown one is not worth keeping).
    keys: HashMap<[u8; 32], KeyLookup>,
    orgs: HashMap<OrgId, Option<OrgRecord>>,
    publisher_keys: HashMap<String, Option<PublisherKeyRecord>>,
}

impl SqliteControl {
    /// Opens (creating if needed) and migrates `control.db` in `dir`.
    pub async fn open(dir: &Path) -> StoreResult<Self> {
        let pool = open_pool(&dir.join("control.db"), true, 4, Footprint::Control)
            .await
            .map_err(db_err)?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        Ok(Self {
            pool,
            hot: Arc::default(),
        })
    }

    async fn read_key(&self, hash: &[u8; 32]) -> StoreResult<Option<KeyLookup>> {
        let q = sqlx::query("SELECT key_id, org_id FROM key_index WHERE hash = ?").bind(&hash[..]);
        match self.opt_with(q, |r| key_index_row(&Cols(r))).await? {
            None => Ok(None),
            Some((key_id, Some(org_id))) => Ok(Some(KeyLookup::Tenant {
                org_id,
                key_id,
                // This store's kept rows are exact on their own (see `hot`).
                seen: Seen::NOTHING,
            })),
            Some((key_id, None)) => {
                let q = sqlx::query("SELECT * FROM operator_keys WHERE id = ?")
                    .bind(key_id.to_string());
                Ok(self.opt(q).await?.map(KeyLookup::Operator))
            }
        }
    }

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
        map: impl Fn(&SqliteRow) -> StoreResult<T> + Send,
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
         (SELECT AVG(rating) FROM reviews r WHERE r.plugin = p.name) AS rating_average, \
         (SELECT COUNT(*) FROM reviews r WHERE r.plugin = p.name) AS rating_count \
         FROM plugins p"
    };
}

#[async_trait]
impl ControlStore for SqliteControl {
    async fn insert_org(&self, o: &OrgRecord) -> StoreResult<()> {
        let _writing = self.hot.writing();
        let q = sqlx::query(
            "INSERT INTO orgs (id, name, tier, overrides, created_at) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(o.id.to_string())
        .bind(&o.name)
        .bind(&o.tier)
        .bind(to_json(&o.overrides)?)
        .bind(ts(o.created_at));
        self.exec(q).await.map(|_| ())
    }

    async fn get_org(&self, org_id: OrgId, _seen: Seen) -> StoreResult<Option<OrgRecord>> {
        if let Some(kept) = self.hot.get(|r| r.orgs.get(&org_id).cloned()) {
            return Ok(kept);
        }
        let token = self.hot.token();
        let q = sqlx::query("SELECT * FROM orgs WHERE id = ?").bind(org_id.to_string());
        let found = self.opt(q).await?;
        self.hot
            .keep(token, |r| put(&mut r.orgs, org_id, found.clone()));
        Ok(found)
    }

    async fn list_orgs(&self) -> StoreResult<Vec<OrgRecord>> {
        let q = sqlx::query("SELECT * FROM orgs ORDER BY id");
        self.all(q).await
    }

    async fn set_org_tier(&self, org_id: OrgId, tier: &str) -> StoreResult<bool> {
        let _writing = self.hot.writing();
        let q = sqlx::query("UPDATE orgs SET tier = ? WHERE id = ?")
            .bind(tier)
            .bind(org_id.to_string());
        Ok(self.exec(q).await? == 1)
    }

    async fn set_org_suspended(
        &self,
        org_id: OrgId,
        at: Option<OffsetDateTime>,
    ) -> StoreResult<bool> {
        let _writing = self.hot.writing();
        let q = sqlx::query("UPDATE orgs SET suspended_at = ? WHERE id = ?")
            .bind(at.map(ts))
            .bind(org_id.to_string());
        Ok(self.exec(q).await? == 1)
    }

    async fn delete_org(&self, org_id: OrgId, at: OffsetDateTime) -> StoreResult<bool> {
        let _writing = self.hot.writing();
        let id = org_id.to_string();
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        let done = sqlx::query(
            "INSERT INTO deleted_orgs (id, name, deleted_at) \
             SELECT id, name, ? FROM orgs WHERE id = ?",
        )
        .bind(ts(at))
        .bind(&id)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?
        .rows_affected()
            == 1;
        for sql in [
            "DELETE FROM key_index WHERE org_id = ?",
            "DELETE FROM orgs WHERE id = ?",
        ] {
            sqlx::query(sql)
                .bind(&id)
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
        let _writing = self.hot.writing();
        let q = sqlx::query("UPDATE orgs SET overrides = ? WHERE id = ?")
            .bind(to_json(overrides)?)
            .bind(org_id.to_string());
        Ok(self.exec(q).await? == 1)
    }

    async fn insert_operator_key(&self, k: &OperatorKeyRecord) -> StoreResult<()> {
        let _writing = self.hot.writing();
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(db_err)?;
        sqlx::query(
            "INSERT INTO operator_keys (id, name, hash, created_at, expires_at, revoked_at) \
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(k.id.to_string())
        .bind(&k.name)
        .bind(&k.hash[..])
        .bind(ts(k.created_at))
        .bind(opt_ts(k.expires_at))
        .bind(opt_ts(k.revoked_at))
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        sqlx::query("INSERT INTO key_index (hash, key_id, org_id) VALUES (?, ?, NULL)")
            .bind(&k.hash[..])
            .bind(k.id.to_string())
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
        let _writing = self.hot.writing();
        let q = sqlx::query(
            "UPDATE operator_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
        )
        .bind(ts(at))
        .bind(id.to_string());
        Ok(self.exec(q).await? == 1)
    }

    async fn insert_key_index(&self, e: &KeyIndexEntry) -> StoreResult<()> {
        let _writing = self.hot.writing();
        let q = sqlx::query("INSERT INTO key_index (hash, key_id, org_id) VALUES (?, ?, ?)")
            .bind(&e.hash[..])
            .bind(e.key_id.to_string())
            .bind(e.org_id.map(|o| o.to_string()));
        self.exec(q).await.map(|_| ())
    }

    async fn delete_key_index(&self, key_id: ApiKeyId) -> StoreResult<()> {
        let _writing = self.hot.writing();
        let q = sqlx::query("DELETE FROM key_index WHERE key_id = ?").bind(key_id.to_string());
        self.exec(q).await.map(|_| ())
    }

    async fn lookup_key(&self, hash: &[u8; 32]) -> StoreResult<Option<KeyLookup>> {
        if let Some(kept) = self.hot.get(|r| r.keys.get(hash).cloned()) {
            return Ok(Some(kept));
        }
        let token = self.hot.token();
        let found = self.read_key(hash).await?;
        if let Some(f) = &found {
            self.hot.keep(token, |r| put(&mut r.keys, *hash, f.clone()));
        }
        Ok(found)
    }

    async fn insert_publisher(&self, p: &PublisherRecord) -> StoreResult<()> {
        let _writing = self.hot.writing();
        let q = sqlx::query("INSERT INTO publishers (id, name, created_at) VALUES (?, ?, ?)")
            .bind(p.id.to_string())
            .bind(&p.name)
            .bind(ts(p.created_at));
        self.exec(q).await.map(|_| ())
    }

    async fn get_publisher_by_name(&self, name: &str) -> StoreResult<Option<PublisherRecord>> {
        let q = sqlx::query("SELECT * FROM publishers WHERE name = ?").bind(name);
        self.opt(q).await
    }

    async fn list_publishers(&self) -> StoreResult<Vec<PublisherRecord>> {
        let q = sqlx::query("SELECT * FROM publishers ORDER BY name");
        self.all(q).await
    }

    async fn insert_publisher_key(&self, k: &PublisherKeyRecord) -> StoreResult<()> {
        let _writing = self.hot.writing();
        let q = sqlx::query(
            "INSERT INTO publisher_keys (key_id, publisher_id, public_key, not_before, not_after, \
             revoked_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&k.key_id)
        .bind(k.publisher_id.to_string())
        .bind(&k.public_key)
        .bind(ts(k.not_before))
        .bind(opt_ts(k.not_after))
        .bind(opt_ts(k.revoked_at))
        .bind(ts(k.created_at));
        self.exec(q).await.map(|_| ())
    }

    async fn get_publisher_key(
        &self,
        key_id: &str,
        _seen: Seen,
    ) -> StoreResult<Option<PublisherKeyRecord>> {
        if let Some(kept) = self.hot.get(|r| r.publisher_keys.get(key_id).cloned()) {
            return Ok(kept);
        }
        let token = self.hot.token();
        let q = sqlx::query("SELECT * FROM publisher_keys WHERE key_id = ?").bind(key_id);
        let found = self.opt(q).await?;
        self.hot.keep(token, |r| {
            put(&mut r.publisher_keys, key_id.to_string(), found.clone())
        });
        Ok(found)
    }

    async fn list_publisher_keys(&self, p: PublisherId) -> StoreResult<Vec<PublisherKeyRecord>> {
        let q = sqlx::query(
            "SELECT * FROM publisher_keys WHERE publisher_id = ? ORDER BY created_at, key_id",
        )
        .bind(p.to_string());
        self.all(q).await
    }

    async fn revoke_publisher_key(&self, key_id: &str, at: OffsetDateTime) -> StoreResult<bool> {
        let _writing = self.hot.writing();
        let q = sqlx::query(
            "UPDATE publisher_keys SET revoked_at = ? WHERE key_id = ? AND revoked_at IS NULL",
        )
        .bind(ts(at))
        .bind(key_id);
        Ok(self.exec(q).await? == 1)
    }

    async fn insert_version(&self, v: &VersionRecord) -> StoreResult<()> {
        let _writing = self.hot.writing();
        let listing = PluginListing::of(v)?;
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(db_err)?;
        sqlx::query(
            "INSERT INTO plugins (name, publisher, latest_version, description, capabilities, docs, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (name) DO UPDATE SET latest_version = excluded.latest_version, \
             description = excluded.description, capabilities = excluded.capabilities, docs = excluded.docs",
        )
        .bind(&v.plugin)
        .bind(&v.publisher)
        .bind(&v.version)
        .bind(&listing.description)
        .bind(listing.capabilities.to_string())
        .bind(&listing.docs)
        .bind(ts(v.published_at))
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        sqlx::query(
            "INSERT INTO plugin_versions (plugin, version, publisher, manifest_json, manifest_sha256, \
             artifact_sha256, artifact_size, key_id, signature, signed_at, published_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
        .bind(ts(v.signed_at))
        .bind(ts(v.published_at))
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        tx.commit().await.map_err(db_err)
    }

    async fn list_versions(&self, plugin: &str) -> StoreResult<Vec<VersionRecord>> {
        let q = sqlx::query(
            "SELECT * FROM plugin_versions WHERE plugin = ? ORDER BY published_at, version",
        )
        .bind(plugin);
        self.all(q).await
    }

    async fn get_version(&self, plugin: &str, v: &str) -> StoreResult<Option<VersionRecord>> {
        let q = sqlx::query("SELECT * FROM plugin_versions WHERE plugin = ? AND version = ?")
            .bind(plugin)
            .bind(v);
        self.opt(q).await
    }

    async fn get_plugin(&self, name: &str) -> StoreResult<Option<PluginSummary>> {
        let q = sqlx::query(concat!(summary_select!(), " WHERE p.name = ?")).bind(name);
        self.opt(q).await
    }

    async fn search_plugins(&self, query: &str, limit: u32) -> StoreResult<Vec<PluginSummary>> {
        // The registry holds thousands of plugins, not millions: matching every
        // whitespace-separated term against the summaries here is simpler and more
        // predictable than dynamic SQL. Replace with FTS5 when that stops being true.
        let terms = search_terms(query);
        let rows = sqlx::query(concat!(summary_select!(), " ORDER BY p.name"))
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        for row in &rows {
            let s: PluginSummary = read(row)?;
            let docs = Cols(row).text("docs")?.to_lowercase();
            let hay = format!(
                "{} {} {} {}",
                s.name.to_lowercase(),
                s.description.to_lowercase(),
                s.capabilities.join(" ").to_lowercase(),
                docs
            );
            if terms.iter().all(|t| hay.contains(t.as_str())) {
                out.push(s);
                if out.len() >= limit as usize {
                    break;
                }
            }
        }
        Ok(out)
    }

    async fn upsert_review(&self, r: &ReviewRecord) -> StoreResult<()> {
        let _writing = self.hot.writing();
        let q = sqlx::query(
            "INSERT INTO reviews (plugin, org_id, rating, body, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (plugin, org_id) DO UPDATE SET \
             rating = excluded.rating, body = excluded.body, updated_at = excluded.updated_at",
        )
        .bind(&r.plugin)
        .bind(r.org_id.to_string())
        .bind(i64::from(r.rating))
        .bind(&r.body)
        .bind(ts(r.created_at))
        .bind(ts(r.updated_at));
        self.exec(q).await.map(|_| ())
    }

    async fn list_reviews(&self, plugin: &str) -> StoreResult<Vec<ReviewRecord>> {
        let q =
            sqlx::query("SELECT * FROM reviews WHERE plugin = ? ORDER BY updated_at DESC, org_id")
                .bind(plugin);
        self.all(q).await
    }
}
