//! `tenants/<org-id>.db`: one SQLite file per org, opened only for that org's scope.
//!
//! Each org's file has its own pool, opened on first use and closed when it is the
//! least recently used beyond [`MAX_OPEN_TENANTS`]. Opening one org's file never
//! waits for another's: the map of orgs is locked only to find an entry, and each
//! org has its own opening lock. The migrator runs once per file per process.
//! The rows every request reads are kept in memory ([`crate::hot`]).

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnection, SqliteRow};
use sqlx::{Sqlite, SqlitePool, Transaction};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tenantry_core::scope::CredentialRecord;
use tenantry_core::{AgentId, ApiKeyId, InstallId, OrgId, TenantScope};
use tenantry_store::*;
use time::OffsetDateTime;

use crate::hot::{Hot, Writing, put};
use crate::journal::{Journal, Touch};
use crate::rows::*;
use crate::{Footprint, db_err, lock, open_pool};

// One file per resource, each its trait's `impl` for [`SqliteTenantTx`].
mod agents;
mod api_keys;
mod audit;
mod bindings;
mod installs;
mod kv;
mod org_keys;
mod secrets;
mod usage;
mod users;

pub(crate) use audit::{INSERT_AUDIT, bind_chained, chain_head};
pub(crate) use usage::{INSERT_USAGE, bind_usage};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/tenant");

/// How many tenant files stay open at once; the least recently used is closed
/// beyond this (its pool reopens on the next request).
const MAX_OPEN_TENANTS: usize = 1024;

/// Open orgs looked at to choose which to close.
const EVICTION_SAMPLES: usize = 8;

/// Connections of one tenant file's pool (SQLite has one writer at a time anyway).
const TENANT_CONNECTIONS: u32 = 2;

/// The tenant stores under `<data>/tenants/`.
#[derive(Clone)]
pub struct SqliteTenants {
    inner: Arc<Inner>,
}

struct Inner {
    dir: PathBuf,
    /// Every org this process has touched. An entry outlives its pool: it carries the
    /// org's kept rows and their write generation, which must survive a close.
    tenants: Mutex<HashMap<OrgId, Arc<Tenant>>>,
    /// The orgs whose pool is open (eviction samples this).
    open_list: Mutex<Vec<Arc<Tenant>>>,
    clock: AtomicU64,
}

/// One org's file.
struct Tenant {
    pool: Mutex<Option<SqlitePool>>,
    /// Held while this org's file is opened (others are not blocked).
    opening: tokio::sync::Mutex<()>,
    migrated: AtomicBool,
    /// Set when the org is deleted: its file is not opened again, and records
    /// arriving late (an invocation that was running) are not kept.
    dropped: AtomicBool,
    last_used: AtomicU64,
    hot: Arc<Hot<HotRows>>,
    journal: Journal,
}

/// What an org's requests read every time.
#[derive(Default)]
struct HotRows {
    /// By key id: the credential, its last-used time, and the stored hash.
    credentials: HashMap<ApiKeyId, (CredentialRecord, Option<OffsetDateTime>, [u8; 32])>,
    installs: HashMap<InstallId, Option<InstallRecord>>,
    bindings: HashMap<(AgentId, InstallId), bool>,
}

impl SqliteTenants {
    /// Uses `<dir>/tenants/` for tenant files, creating the folder.
    pub async fn open(dir: &Path) -> StoreResult<Self> {
        let dir = dir.join("tenants");
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| StoreError::Backend(format!("create {}: {e}", dir.display())))?;
        Ok(Self {
            inner: Arc::new(Inner {
                dir,
                tenants: Mutex::default(),
                open_list: Mutex::default(),
                clock: AtomicU64::new(0),
            }),
        })
    }

    /// The file of one org. Derived from the validated id only.
    fn path(&self, org: OrgId) -> PathBuf {
        self.inner.dir.join(format!("{org}.db"))
    }

    fn tenant(&self, org: OrgId) -> Arc<Tenant> {
        lock(&self.inner.tenants)
            .entry(org)
            .or_insert_with(|| {
                Arc::new(Tenant {
                    pool: Mutex::new(None),
                    opening: tokio::sync::Mutex::new(()),
                    migrated: AtomicBool::new(false),
                    dropped: AtomicBool::new(false),
                    last_used: AtomicU64::new(0),
                    hot: Arc::default(),
                    journal: Journal::new(&self.inner.dir, org),
                })
            })
            .clone()
    }

    /// The org's pool, opening (and, once per process, migrating) its file if needed.
    async fn pool(&self, t: &Arc<Tenant>, org: OrgId, create: bool) -> StoreResult<SqlitePool> {
        let tick = self.inner.clock.fetch_add(1, Ordering::Relaxed);
        t.last_used.store(tick, Ordering::Relaxed);
        if let Some(p) = lock(&t.pool).clone() {
            return Ok(p);
        }
        let _opening = t.opening.lock().await;
        if let Some(p) = lock(&t.pool).clone() {
            return Ok(p);
        }
        if t.dropped.load(Ordering::Acquire) {
            return Err(StoreError::TenantNotFound);
        }
        let path = self.path(org);
        if !create && !tokio::fs::try_exists(&path).await.unwrap_or(false) {
            return Err(StoreError::TenantNotFound);
        }
        let pool = open_pool(&path, create, TENANT_CONNECTIONS, Footprint::Tenant)
            .await
            .map_err(db_err)?;
        if !t.migrated.load(Ordering::Acquire) {
            migrate(&pool).await?;
            t.migrated.store(true, Ordering::Release);
        }
        *lock(&t.pool) = Some(pool.clone());
        let open = {
            let mut l = lock(&self.inner.open_list);
            l.push(t.clone());
            l.len()
        };
        if open > MAX_OPEN_TENANTS {
            self.close_least_recently_used(tick);
        }
        Ok(pool)
    }

    /// Closes the pool of one of the least recently used open orgs: the oldest of a
    /// few sampled at random (as Redis approximates LRU), so an open beyond the limit
    /// costs the same with 10 or 10,000 orgs.
    fn close_least_recently_used(&self, tick: u64) {
        let victim = {
            let mut open = lock(&self.inner.open_list);
            let n = open.len();
            if n == 0 {
                return;
            }
            // A splitmix64 step of the clock: spread enough to sample, no dependency.
            let mut x = tick;
            let pick = (0..EVICTION_SAMPLES)
                .map(|_| {
                    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
                    let mut z = x;
                    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                    usize::try_from((z ^ (z >> 31)) % n as u64).unwrap_or(0)
                })
                .min_by_key(|&i| open[i].last_used.load(Ordering::Relaxed))
                .unwrap_or(0);
            open.swap_remove(pick)
        };
        if let Some(p) = lock(&victim.pool).take() {
            // Closing waits for checked-out connections; nobody waits for it.
            tokio::spawn(async move { p.close().await });
        }
    }

    /// Reads the credential row (one statement for the key, its agent and its user's
    /// role: authentication runs on every request).
    async fn read_credential(
        pool: &SqlitePool,
        org: OrgId,
        key_id: ApiKeyId,
    ) -> StoreResult<Option<(CredentialRecord, Option<OffsetDateTime>, [u8; 32])>> {
        let Some(row) = sqlx::query(
            "SELECT k.*, a.on_behalf_of AS agent_on_behalf_of, a.grants AS agent_grants, \
                    u.role AS user_role \
             FROM api_keys k \
             LEFT JOIN agents a ON k.principal_kind = 'agent' \
                  AND a.org_id = k.org_id AND a.id = k.principal_id \
             LEFT JOIN users u ON u.org_id = k.org_id AND u.id = \
                  (CASE WHEN k.principal_kind = 'agent' THEN a.on_behalf_of ELSE k.principal_id END) \
             WHERE k.org_id = ? AND k.id = ?",
        )
        .bind(org.to_string())
        .bind(key_id.to_string())
        .fetch_optional(pool)
        .await
        .map_err(db_err)?
        else {
            return Ok(None);
        };
        let key: ApiKeyRecord = read(&row)?;
        let Some(record) = tenantry_store::rows::credential(&Cols(&row), org, &key)? else {
            return Ok(None);
        };
        Ok(Some((record, key.last_used_at, key.hash)))
    }

    /// A transaction. A read opens nothing until its first statement (many are
    /// served from kept rows alone); a write forgets the org's kept rows (see `hot`).
    async fn transaction(&self, scope: &TenantScope, write: bool) -> StoreResult<SqliteTenantTx> {
        let org = scope.org_id();
        let t = self.tenant(org);
        let mut tx = SqliteTenantTx {
            tx: None,
            store: self.clone(),
            org: org.to_string(),
            org_id: org,
            tenant: t,
            _writing: None,
            failed: false,
        };
        if write {
            let pool = self.pool(&tx.tenant, org, false).await?;
            // Journaled records first, so sequence numbers follow events.
            tx.tenant.journal.import(&pool, org).await?;
            // Marked before the write lock is taken, so no read that overlaps the
            // write keeps what it read.
            tx._writing = Some(tx.tenant.hot.writing());
            tx.tx = Some(pool.begin_with("BEGIN IMMEDIATE").await.map_err(db_err)?);
        }
        Ok(tx)
    }

    /// Appends to the org's journal (see `journal`): no file to open, and no kept
    /// row changes, so nothing is invalidated. Imports when the journal is large.
    async fn journal(
        &self,
        t: &Arc<Tenant>,
        org: OrgId,
        usage: &[UsageEvent],
        audit: &[AuditEntry],
        touched: &[Touch],
    ) -> StoreResult<()> {
        if t.dropped.load(Ordering::Acquire) {
            tracing::debug!(%org, "records of a deleted org are not kept");
            return Ok(());
        }
        if t.journal.append(usage, audit, touched)? {
            let pool = self.pool(t, org, false).await?;
            t.journal.import(&pool, org).await?;
        }
        Ok(())
    }
}

/// Brings a tenant file to the current schema. The file's `user_version` records the
/// last migration applied, so a file already current costs one pragma read instead of
/// the migrator's checks (this runs on the first open of each file per process).
async fn migrate(pool: &SqlitePool) -> StoreResult<()> {
    let latest = MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0);
    let current: i64 = sqlx::query_scalar("PRAGMA user_version")
        .fetch_one(pool)
        .await
        .map_err(db_err)?;
    if current == latest {
        return Ok(());
    }
    MIGRATOR
        .run(pool)
        .await
        .map_err(|e| StoreError::Backend(e.to_string()))?;
    // A number formatted from the migrator's own versions, not from input.
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "PRAGMA user_version = {latest}"
    )))
    .execute(pool)
    .await
    .map_err(db_err)?;
    Ok(())
}

#[async_trait]
impl TenantStore for SqliteTenants {
    async fn create_tenant(&self, org: OrgId) -> StoreResult<()> {
        let t = self.tenant(org);
        self.pool(&t, org, true).await.map(|_| ())
    }

    async fn drop_tenant(&self, org: OrgId) -> StoreResult<()> {
        let t = self.tenant(org);
        t.dropped.store(true, Ordering::Release);
        let _writing = t.hot.writing();
        // No open in progress; none starts after (`dropped`).
        let _opening = t.opening.lock().await;
        let _import = t.journal.lock_import().await;
        lock(&self.inner.open_list).retain(|o| !Arc::ptr_eq(o, &t));
        let pool = lock(&t.pool).take();
        if let Some(pool) = pool {
            pool.close().await;
        }
        for suffix in [
            "db",
            "db-wal",
            "db-shm",
            "db-journal",
            "records",
            "importing",
        ] {
            let path = self.inner.dir.join(format!("{org}.{suffix}"));
            match tokio::fs::remove_file(&path).await {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(StoreError::Backend(format!(
                        "remove {}: {e}",
                        path.display()
                    )));
                }
            }
        }
        Ok(())
    }

    fn open_tenant_stores(&self) -> Option<usize> {
        Some(lock(&self.inner.open_list).len())
    }

    async fn credential(
        &self,
        org: OrgId,
        key_id: ApiKeyId,
        hash: &[u8; 32],
        _seen: Seen,
    ) -> StoreResult<Option<(CredentialRecord, Option<OffsetDateTime>)>> {
        let t = self.tenant(org);
        let found = match t.hot.get(|r| r.credentials.get(&key_id).cloned()) {
            Some(kept) => Some(kept),
            None => {
                let token = t.hot.token();
                let pool = match self.pool(&t, org, false).await {
                    Ok(p) => p,
                    Err(StoreError::TenantNotFound) => return Ok(None),
                    Err(e) => return Err(e),
                };
                let found = Self::read_credential(&pool, org, key_id).await?;
                if let Some(f) = &found {
                    t.hot
                        .keep(token, |r| put(&mut r.credentials, key_id, f.clone()));
                }
                found
            }
        };
        Ok(found
            .filter(|(_, _, stored)| stored == hash)
            .map(|(record, last_used, _)| (record, last_used)))
    }

    async fn begin(&self, scope: &TenantScope, write: bool) -> StoreResult<Box<dyn TenantTx>> {
        Ok(Box::new(self.transaction(scope, write).await?))
    }

    async fn touch_key(
        &self,
        scope: &TenantScope,
        key_id: ApiKeyId,
        at: OffsetDateTime,
    ) -> StoreResult<()> {
        // The kept credential takes the new time at once; the file gets it through
        // the journal.
        let t = self.tenant(scope.org_id());
        t.hot.update(|r| {
            if let Some(c) = r.credentials.get_mut(&key_id) {
                c.1 = c.1.max(Some(stored(at)));
            }
        });
        self.journal(&t, scope.org_id(), &[], &[], &[Touch { key_id, at }])
            .await
    }

    async fn append_records(
        &self,
        scope: &TenantScope,
        usage: &[UsageEvent],
        audit: &[AuditEntry],
    ) -> StoreResult<()> {
        let t = self.tenant(scope.org_id());
        self.journal(&t, scope.org_id(), usage, audit, &[]).await
    }
}

struct SqliteTenantTx {
    /// Begun on the first statement for a read (a read served from kept rows needs no
    /// transaction), at once for a write. Declared before `_writing`: dropped
    /// (rolled back) first.
    tx: Option<Transaction<'static, Sqlite>>,
    store: SqliteTenants,
    /// The org of the scope this transaction was opened for; bound into every query.
    org: String,
    org_id: OrgId,
    tenant: Arc<Tenant>,
    /// Present in a write transaction only: a read transaction refuses writes (they
    /// would change the file behind the kept rows' back).
    _writing: Option<Writing<HotRows>>,
    /// A write failed: the transaction may not commit (as in the pooled store, where
    /// PostgreSQL aborts the transaction at the first failed statement).
    failed: bool,
}

impl SqliteTenantTx {
    /// The transaction's connection, beginning a (read) transaction on first use.
    async fn conn(&mut self) -> StoreResult<&mut SqliteConnection> {
        if self.tx.is_none() {
            let pool = self.store.pool(&self.tenant, self.org_id, false).await?;
            self.tx = Some(pool.begin().await.map_err(db_err)?);
        }
        self.tx
            .as_deref_mut()
            .ok_or_else(|| StoreError::Backend("transaction not begun".into()))
    }

    /// Before a read of what the journal carries (usage, audit, keys' last use):
    /// imports it, so the read sees every record. A read transaction that has
    /// already read something keeps its snapshot (reads of records come first).
    async fn journal_imported(&mut self) -> StoreResult<()> {
        if self.tx.is_none() && self.tenant.journal.pending() {
            let pool = self.store.pool(&self.tenant, self.org_id, false).await?;
            self.tenant.journal.import(&pool, self.org_id).await?;
        }
        Ok(())
    }

    /// Runs a write: refused in a read transaction; a failure marks the transaction
    /// failed.
    async fn exec(&mut self, q: Query<'_>) -> StoreResult<u64> {
        if self._writing.is_none() {
            return Err(StoreError::Backend(
                "a write in a read transaction (begin it with write = true)".into(),
            ));
        }
        match q.execute(self.conn().await?).await {
            Ok(r) => Ok(r.rows_affected()),
            Err(e) => {
                self.failed = true;
                Err(db_err(e))
            }
        }
    }

    /// Reads one record, if there is one (see [`Self::all`]).
    async fn opt<T: FromColumns>(&mut self, q: Query<'_>) -> StoreResult<Option<T>> {
        self.opt_with(q, read).await
    }

    /// Reads one row, if there is one, through `map`.
    async fn opt_with<T>(
        &mut self,
        q: Query<'_>,
        map: impl Fn(&SqliteRow) -> StoreResult<T> + Send,
    ) -> StoreResult<Option<T>> {
        let row = q.fetch_optional(self.conn().await?).await.map_err(db_err)?;
        row.as_ref().map(map).transpose()
    }

    /// Reads records (the columns of `SELECT *`, through `tenantry_store::rows`).
    async fn all<T: FromColumns>(&mut self, q: Query<'_>) -> StoreResult<Vec<T>> {
        self.all_with(q, read).await
    }

    /// Reads rows through `map`.
    async fn all_with<T>(
        &mut self,
        q: Query<'_>,
        map: impl Fn(&SqliteRow) -> StoreResult<T> + Send,
    ) -> StoreResult<Vec<T>> {
        let rows = q.fetch_all(self.conn().await?).await.map_err(db_err)?;
        rows.iter().map(map).collect()
    }

    /// The `n` column of a query's one row (a count or a sum).
    async fn count(&mut self, q: Query<'_>) -> StoreResult<u64> {
        let row = q.fetch_one(self.conn().await?).await.map_err(db_err)?;
        Cols(&row).u64("n")
    }
}

#[async_trait]
impl TenantTx for SqliteTenantTx {
    fn org_id(&self) -> OrgId {
        self.org_id
    }

    async fn commit(self: Box<Self>) -> StoreResult<()> {
        let Self {
            tx,
            _writing,
            failed,
            ..
        } = *self;
        if failed {
            // Dropping `tx` rolls back; `_writing` goes after it.
            drop(tx);
            return Err(StoreError::Backend(
                "commit after a failed write: the transaction was rolled back".into(),
            ));
        }
        if let Some(tx) = tx {
            tx.commit().await.map_err(db_err)?;
        }
        // Only now, with the commit visible, may reads keep rows again.
        drop(_writing);
        Ok(())
    }
}
