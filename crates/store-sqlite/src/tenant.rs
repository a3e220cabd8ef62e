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
use tenantry_core::{AgentId, ApiKeyId, InstallId, OrgId, Role, TenantScope, UserId};
use tenantry_store::*;
use time::OffsetDateTime;

use crate::hot::{Hot, Writing, put};
use crate::journal::{Journal, Touch};
use crate::rows::*;
use crate::{Footprint, db_err, lock, open_pool};

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

    async fn credential(
        &self,
        org: OrgId,
        key_id: ApiKeyId,
        hash: &[u8; 32],
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

pub(crate) type Query<'q> = sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments>;

const INSERT_USAGE: &str = "INSERT INTO usage_events (org_id, id, at, install_id, plugin, action, \
     actor_kind, actor_id, outcome, duration_us, fuel, peak_memory_bytes, host_calls, bytes_in, \
     bytes_out, caller_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";

/// The next sequence number is taken in the statement, under the write lock.
const INSERT_AUDIT: &str = "INSERT INTO audit (org_id, seq, at, actor_kind, actor_id, action, \
     target, outcome, request_id, details) VALUES (?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM audit \
     WHERE org_id = ?), ?, ?, ?, ?, ?, ?, ?, ?)";

pub(crate) fn bind_usage<'q>(q: Query<'q>, org: &str, e: &UsageEvent) -> Query<'q> {
    q.bind(org.to_string())
        .bind(e.id.to_string())
        .bind(ts(e.at))
        .bind(e.install_id.to_string())
        .bind(e.plugin.clone())
        .bind(e.action.clone())
        .bind(e.actor_kind.as_str())
        .bind(e.actor_id.to_string())
        .bind(e.outcome.as_str())
        .bind(i64_of(e.duration_us))
        .bind(i64_of(e.fuel))
        .bind(i64_of(e.peak_memory_bytes))
        .bind(i64_of(e.host_calls))
        .bind(i64_of(e.bytes_in))
        .bind(i64_of(e.bytes_out))
        .bind(e.caller_id.map(|c| c.to_string()))
}

pub(crate) fn bind_audit<'q>(q: Query<'q>, org: &str, e: &AuditEntry) -> StoreResult<Query<'q>> {
    Ok(q.bind(org.to_string())
        .bind(org.to_string())
        .bind(ts(e.at))
        .bind(e.actor_kind.as_str())
        .bind(e.actor_id.to_string())
        .bind(e.action.clone())
        .bind(e.target.clone())
        .bind(e.outcome.clone())
        .bind(e.request_id.map(|r| r.to_string()))
        .bind(to_json(&e.details)?))
}

/// Records inserted per statement string (one round trip each).
const APPEND_CHUNK: usize = 32;

/// The inserts of up to [`APPEND_CHUNK`] usage events and audit entries as one
/// string: one round trip to the connection's thread (sqlx runs every statement of a
/// string, binding the arguments in order). Built from the constants above only.
pub(crate) fn inserts_sql(usage: usize, audit: usize) -> String {
    let mut sql = String::new();
    for _ in 0..usage {
        sql.push_str(INSERT_USAGE);
        sql.push(';');
    }
    for _ in 0..audit {
        sql.push_str(INSERT_AUDIT);
        sql.push(';');
    }
    sql
}

/// Splits records into chunks for [`inserts_sql`].
pub(crate) fn append_statements<'a>(
    usage: &'a [UsageEvent],
    audit: &'a [AuditEntry],
) -> impl Iterator<Item = (&'a [UsageEvent], &'a [AuditEntry])> {
    let (mut u, mut a) = (usage.chunks(APPEND_CHUNK), audit.chunks(APPEND_CHUNK));
    std::iter::from_fn(move || {
        let (uc, ac) = (u.next().unwrap_or_default(), a.next().unwrap_or_default());
        (!uc.is_empty() || !ac.is_empty()).then_some((uc, ac))
    })
}

macro_rules! fetch_all {
    ($self:ident, $q:expr, $map:expr) => {
        $q.fetch_all($self.conn().await?)
            .await
            .map_err(db_err)?
            .iter()
            .map($map)
            .collect()
    };
}

macro_rules! fetch_opt {
    ($self:ident, $q:expr, $map:expr) => {
        $q.fetch_optional($self.conn().await?)
            .await
            .map_err(db_err)?
            .as_ref()
            .map($map)
            .transpose()
    };
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
    async fn exec(
        &mut self,
        q: sqlx::query::Query<'_, Sqlite, sqlx::sqlite::SqliteArguments>,
    ) -> StoreResult<u64> {
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
}

#[async_trait]
impl TenantTx for SqliteTenantTx {
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

    async fn current_org_key(&mut self) -> StoreResult<Option<OrgKeyRecord>> {
        let q =
            sqlx::query("SELECT * FROM org_keys WHERE org_id = ? ORDER BY version DESC LIMIT 1")
                .bind(&self.org);
        fetch_opt!(self, q, read)
    }

    async fn get_org_key(&mut self, version: u32) -> StoreResult<Option<OrgKeyRecord>> {
        let q = sqlx::query("SELECT * FROM org_keys WHERE org_id = ? AND version = ?")
            .bind(&self.org)
            .bind(i64::from(version));
        fetch_opt!(self, q, read)
    }

    async fn insert_org_key(&mut self, k: &OrgKeyRecord) -> StoreResult<()> {
        let q = sqlx::query(
            "INSERT INTO org_keys (org_id, version, wrapped, created_at) VALUES (?, ?, ?, ?)",
        )
        .bind(self.org.clone())
        .bind(i64::from(k.version))
        .bind(k.wrapped.clone())
        .bind(ts(k.created_at));
        self.exec(q).await.map(|_| ())
    }

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
        fetch_opt!(self, q, read)
    }

    async fn list_users(&mut self) -> StoreResult<Vec<UserRecord>> {
        let q = sqlx::query("SELECT * FROM users WHERE org_id = ? ORDER BY id").bind(&self.org);
        fetch_all!(self, q, read)
    }

    async fn set_user_role(&mut self, uid: UserId, role: Role) -> StoreResult<bool> {
        let q = sqlx::query("UPDATE users SET role = ? WHERE org_id = ? AND id = ?")
            .bind(role.as_str())
            .bind(self.org.clone())
            .bind(uid.to_string());
        Ok(self.exec(q).await? == 1)
    }

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
        fetch_opt!(self, q, read)
    }

    async fn list_agents(&mut self) -> StoreResult<Vec<AgentRecord>> {
        let q = sqlx::query("SELECT * FROM agents WHERE org_id = ? ORDER BY id").bind(&self.org);
        fetch_all!(self, q, read)
    }

    async fn delete_agent(&mut self, aid: AgentId) -> StoreResult<bool> {
        let q = sqlx::query("DELETE FROM agents WHERE org_id = ? AND id = ?")
            .bind(self.org.clone())
            .bind(aid.to_string());
        Ok(self.exec(q).await? == 1)
    }

    async fn insert_api_key(&mut self, k: &ApiKeyRecord) -> StoreResult<()> {
        let q = sqlx::query(
            "INSERT INTO api_keys (org_id, id, name, principal_kind, principal_id, prefix, hash, \
             created_at, expires_at, revoked_at, last_used_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(self.org.clone())
        .bind(k.id.to_string())
        .bind(k.name.clone())
        .bind(k.principal_kind.as_str())
        .bind(k.principal_id.to_string())
        .bind(k.prefix.clone())
        .bind(k.hash.to_vec())
        .bind(ts(k.created_at))
        .bind(opt_ts(k.expires_at))
        .bind(opt_ts(k.revoked_at))
        .bind(opt_ts(k.last_used_at));
        self.exec(q).await.map(|_| ())
    }

    async fn get_api_key(&mut self, kid: ApiKeyId) -> StoreResult<Option<ApiKeyRecord>> {
        self.journal_imported().await?;
        let q = sqlx::query("SELECT * FROM api_keys WHERE org_id = ? AND id = ?")
            .bind(&self.org)
            .bind(kid.to_string());
        fetch_opt!(self, q, read)
    }

    async fn list_api_keys(&mut self) -> StoreResult<Vec<ApiKeyRecord>> {
        self.journal_imported().await?;
        let q = sqlx::query("SELECT * FROM api_keys WHERE org_id = ? ORDER BY id").bind(&self.org);
        fetch_all!(self, q, read)
    }

    async fn revoke_api_key(&mut self, kid: ApiKeyId, at: OffsetDateTime) -> StoreResult<bool> {
        let q = sqlx::query(
            "UPDATE api_keys SET revoked_at = ? WHERE org_id = ? AND id = ? AND revoked_at IS NULL",
        )
        .bind(ts(at))
        .bind(self.org.clone())
        .bind(kid.to_string());
        Ok(self.exec(q).await? == 1)
    }

    async fn touch_api_key(&mut self, kid: ApiKeyId, at: OffsetDateTime) -> StoreResult<()> {
        // A use never moves the last use back (as the journal's key uses do).
        let q = sqlx::query(
            "UPDATE api_keys SET last_used_at = ? WHERE org_id = ? AND id = ? \
             AND (last_used_at IS NULL OR last_used_at < ?)",
        )
        .bind(ts(at))
        .bind(self.org.clone())
        .bind(kid.to_string())
        .bind(ts(at));
        self.exec(q).await.map(|_| ())
    }

    async fn insert_install(&mut self, i: &InstallRecord) -> StoreResult<()> {
        let q = sqlx::query(
            "INSERT INTO installs (org_id, id, plugin, version, previous_version, artifact_sha256, \
             config, grants, enabled, rate_limit_per_minute, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(self.org.clone())
        .bind(i.id.to_string())
        .bind(i.plugin.clone())
        .bind(i.version.clone())
        .bind(i.previous_version.clone())
        .bind(i.artifact_sha256.clone())
        .bind(to_json(&i.config)?)
        .bind(to_json(&i.grants)?)
        .bind(i64::from(i.enabled))
        .bind(i.rate_limit_per_minute.map(i64::from))
        .bind(ts(i.created_at))
        .bind(ts(i.updated_at));
        self.exec(q).await.map(|_| ())
    }

    async fn get_install(&mut self, iid: InstallId) -> StoreResult<Option<InstallRecord>> {
        if let Some(kept) = self.tenant.hot.get(|r| r.installs.get(&iid).cloned()) {
            return Ok(kept);
        }
        let token = self.tenant.hot.token();
        let q = sqlx::query("SELECT * FROM installs WHERE org_id = ? AND id = ?")
            .bind(&self.org)
            .bind(iid.to_string());
        let found: Option<InstallRecord> = fetch_opt!(self, q, read)?;
        self.tenant
            .hot
            .keep(token, |r| put(&mut r.installs, iid, found.clone()));
        Ok(found)
    }

    async fn get_install_by_plugin(&mut self, plugin: &str) -> StoreResult<Option<InstallRecord>> {
        let q = sqlx::query("SELECT * FROM installs WHERE org_id = ? AND plugin = ?")
            .bind(&self.org)
            .bind(plugin);
        fetch_opt!(self, q, read)
    }

    async fn list_installs(&mut self) -> StoreResult<Vec<InstallRecord>> {
        let q = sqlx::query("SELECT * FROM installs WHERE org_id = ? ORDER BY id").bind(&self.org);
        fetch_all!(self, q, read)
    }

    async fn update_install(&mut self, i: &InstallRecord) -> StoreResult<bool> {
        let q = sqlx::query(
            "UPDATE installs SET version = ?, previous_version = ?, artifact_sha256 = ?, config = ?, \
             grants = ?, enabled = ?, rate_limit_per_minute = ?, updated_at = ? WHERE org_id = ? AND id = ?",
        )
        .bind(i.version.clone())
        .bind(i.previous_version.clone())
        .bind(i.artifact_sha256.clone())
        .bind(to_json(&i.config)?)
        .bind(to_json(&i.grants)?)
        .bind(i64::from(i.enabled))
        .bind(i.rate_limit_per_minute.map(i64::from))
        .bind(ts(i.updated_at))
        .bind(self.org.clone())
        .bind(i.id.to_string());
        Ok(self.exec(q).await? == 1)
    }

    async fn delete_install(&mut self, iid: InstallId) -> StoreResult<bool> {
        let q = sqlx::query("DELETE FROM installs WHERE org_id = ? AND id = ?")
            .bind(self.org.clone())
            .bind(iid.to_string());
        Ok(self.exec(q).await? == 1)
    }

    async fn upsert_secret(&mut self, s: &SecretRecord) -> StoreResult<()> {
        let q = sqlx::query(
            "INSERT INTO secrets (org_id, install_id, name, key_version, ciphertext, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (org_id, install_id, name) DO UPDATE SET \
             key_version = excluded.key_version, ciphertext = excluded.ciphertext, updated_at = excluded.updated_at",
        )
        .bind(self.org.clone())
        .bind(s.install_id.to_string())
        .bind(s.name.clone())
        .bind(i64::from(s.key_version))
        .bind(s.ciphertext.clone())
        .bind(ts(s.created_at))
        .bind(ts(s.updated_at));
        self.exec(q).await.map(|_| ())
    }

    async fn get_secret(
        &mut self,
        iid: InstallId,
        name: &str,
    ) -> StoreResult<Option<SecretRecord>> {
        let q =
            sqlx::query("SELECT * FROM secrets WHERE org_id = ? AND install_id = ? AND name = ?")
                .bind(&self.org)
                .bind(iid.to_string())
                .bind(name);
        fetch_opt!(self, q, read)
    }

    async fn list_secrets(&mut self, iid: InstallId) -> StoreResult<Vec<SecretMeta>> {
        let q = sqlx::query(
            "SELECT name, key_version, created_at, updated_at FROM secrets \
             WHERE org_id = ? AND install_id = ? ORDER BY name",
        )
        .bind(&self.org)
        .bind(iid.to_string());
        fetch_all!(self, q, read)
    }

    async fn delete_secret(&mut self, iid: InstallId, name: &str) -> StoreResult<bool> {
        let q = sqlx::query("DELETE FROM secrets WHERE org_id = ? AND install_id = ? AND name = ?")
            .bind(self.org.clone())
            .bind(iid.to_string())
            .bind(name.to_string());
        Ok(self.exec(q).await? == 1)
    }

    async fn delete_secrets_of(&mut self, iid: InstallId) -> StoreResult<u64> {
        let q = sqlx::query("DELETE FROM secrets WHERE org_id = ? AND install_id = ?")
            .bind(self.org.clone())
            .bind(iid.to_string());
        self.exec(q).await
    }

    async fn insert_binding(&mut self, b: &BindingRecord) -> StoreResult<()> {
        let q = sqlx::query(
            "INSERT INTO bindings (org_id, agent_id, install_id, created_at) VALUES (?, ?, ?, ?)",
        )
        .bind(self.org.clone())
        .bind(b.agent_id.to_string())
        .bind(b.install_id.to_string())
        .bind(ts(b.created_at));
        self.exec(q).await.map(|_| ())
    }

    async fn delete_binding(&mut self, aid: AgentId, iid: InstallId) -> StoreResult<bool> {
        let q = sqlx::query(
            "DELETE FROM bindings WHERE org_id = ? AND agent_id = ? AND install_id = ?",
        )
        .bind(self.org.clone())
        .bind(aid.to_string())
        .bind(iid.to_string());
        Ok(self.exec(q).await? == 1)
    }

    async fn list_bindings(&mut self) -> StoreResult<Vec<BindingRecord>> {
        let q =
            sqlx::query("SELECT * FROM bindings WHERE org_id = ? ORDER BY agent_id, install_id")
                .bind(&self.org);
        fetch_all!(self, q, read)
    }

    async fn is_bound(&mut self, aid: AgentId, iid: InstallId) -> StoreResult<bool> {
        if let Some(kept) = self
            .tenant
            .hot
            .get(|r| r.bindings.get(&(aid, iid)).copied())
        {
            return Ok(kept);
        }
        let token = self.tenant.hot.token();
        let q = sqlx::query(
            "SELECT 1 AS one FROM bindings WHERE org_id = ? AND agent_id = ? AND install_id = ?",
        )
        .bind(&self.org)
        .bind(aid.to_string())
        .bind(iid.to_string());
        let bound = q
            .fetch_optional(self.conn().await?)
            .await
            .map_err(db_err)?
            .is_some();
        self.tenant
            .hot
            .keep(token, |r| put(&mut r.bindings, (aid, iid), bound));
        Ok(bound)
    }

    async fn delete_bindings_of_install(&mut self, iid: InstallId) -> StoreResult<u64> {
        let q = sqlx::query("DELETE FROM bindings WHERE org_id = ? AND install_id = ?")
            .bind(self.org.clone())
            .bind(iid.to_string());
        self.exec(q).await
    }

    async fn kv_get(&mut self, iid: InstallId, key: &str) -> StoreResult<Option<Vec<u8>>> {
        let q = sqlx::query("SELECT value FROM kv WHERE org_id = ? AND install_id = ? AND key = ?")
            .bind(&self.org)
            .bind(iid.to_string())
            .bind(key);
        fetch_opt!(self, q, |r: &SqliteRow| Cols(r).bytes("value"))
    }

    async fn kv_set(&mut self, iid: InstallId, key: &str, value: &[u8]) -> StoreResult<()> {
        let q = sqlx::query(
            "INSERT INTO kv (org_id, install_id, key, value, updated_at) VALUES (?, ?, ?, ?, ?) \
             ON CONFLICT (org_id, install_id, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        )
        .bind(self.org.clone())
        .bind(iid.to_string())
        .bind(key.to_string())
        .bind(value.to_vec())
        .bind(ts(OffsetDateTime::now_utc()));
        self.exec(q).await.map(|_| ())
    }

    async fn kv_delete(&mut self, iid: InstallId, key: &str) -> StoreResult<bool> {
        let q = sqlx::query("DELETE FROM kv WHERE org_id = ? AND install_id = ? AND key = ?")
            .bind(self.org.clone())
            .bind(iid.to_string())
            .bind(key.to_string());
        Ok(self.exec(q).await? == 1)
    }

    async fn kv_list(
        &mut self,
        iid: InstallId,
        prefix: &str,
        limit: u32,
    ) -> StoreResult<Vec<String>> {
        // Prefix match by range, not LIKE, so '%' and '_' in keys are literal.
        let upper = format!("{prefix}\u{10FFFF}");
        let q = sqlx::query(
            "SELECT key FROM kv WHERE org_id = ? AND install_id = ? AND key >= ? AND key < ? ORDER BY key LIMIT ?",
        )
        .bind(&self.org)
        .bind(iid.to_string())
        .bind(prefix)
        .bind(upper)
        .bind(i64::from(limit));
        fetch_all!(self, q, |r: &SqliteRow| Cols(r).text("key"))
    }

    async fn kv_usage_bytes(&mut self) -> StoreResult<u64> {
        let q = sqlx::query(
            "SELECT COALESCE(SUM(LENGTH(CAST(key AS BLOB)) + LENGTH(value)), 0) AS n FROM kv WHERE org_id = ?",
        )
        .bind(&self.org);
        let row = q.fetch_one(self.conn().await?).await.map_err(db_err)?;
        Cols(&row).u64("n")
    }

    async fn kv_delete_all(&mut self, iid: InstallId) -> StoreResult<u64> {
        let q = sqlx::query("DELETE FROM kv WHERE org_id = ? AND install_id = ?")
            .bind(self.org.clone())
            .bind(iid.to_string());
        self.exec(q).await
    }

    async fn insert_usage(&mut self, events: &[UsageEvent]) -> StoreResult<()> {
        for e in events {
            let q = bind_usage(sqlx::query(INSERT_USAGE), &self.org, e);
            self.exec(q).await?;
        }
        Ok(())
    }

    async fn list_usage(&mut self, f: &UsageFilter) -> StoreResult<Vec<UsageEvent>> {
        self.journal_imported().await?;
        // The cursor is the (at, id) of the `after` event, looked up in this org only;
        // an unknown id makes the row-value comparison NULL, so nothing matches.
        let after = f.after.map(|i| i.to_string());
        let q = sqlx::query(
            "SELECT * FROM usage_events WHERE org_id = ? \
             AND (? IS NULL OR at >= ?) AND (? IS NULL OR at < ?) AND (? IS NULL OR install_id = ?) \
             AND (? IS NULL OR (at, id) > \
                  (SELECT c.at, c.id FROM usage_events c WHERE c.org_id = ? AND c.id = ?)) \
             ORDER BY at, id LIMIT ?",
        )
        .bind(&self.org)
        .bind(opt_ts(f.since))
        .bind(opt_ts(f.since))
        .bind(opt_ts(f.until))
        .bind(opt_ts(f.until))
        .bind(f.install_id.map(|i| i.to_string()))
        .bind(f.install_id.map(|i| i.to_string()))
        .bind(after.clone())
        .bind(&self.org)
        .bind(after)
        .bind(i64::from(f.limit.unwrap_or(10_000)));
        fetch_all!(self, q, read)
    }

    async fn count_usage(
        &mut self,
        kind: RunKind,
        since: OffsetDateTime,
        until: OffsetDateTime,
    ) -> StoreResult<u64> {
        self.journal_imported().await?;
        let q = sqlx::query(
            "SELECT COUNT(*) AS n FROM usage_events WHERE org_id = ? AND at >= ? AND at < ? \
             AND outcome NOT IN ('INVALID_INPUT', 'NOT_FOUND') AND (caller_id IS NOT NULL) = ?",
        )
        .bind(&self.org)
        .bind(ts(since))
        .bind(ts(until))
        .bind(kind == RunKind::ToolCall);
        let row = q.fetch_one(self.conn().await?).await.map_err(db_err)?;
        Cols(&row).u64("n")
    }

    async fn append_audit(&mut self, e: &AuditEntry) -> StoreResult<()> {
        let q = bind_audit(sqlx::query(INSERT_AUDIT), &self.org, e)?;
        self.exec(q).await.map(|_| ())
    }

    async fn list_audit(&mut self, f: &AuditFilter) -> StoreResult<Vec<AuditEntry>> {
        self.journal_imported().await?;
        let q = sqlx::query(
            "SELECT * FROM audit WHERE org_id = ? \
             AND (? IS NULL OR action = ?) AND (? IS NULL OR target = ?) \
             AND (? IS NULL OR actor_id = ?) AND (? IS NULL OR at >= ?) \
             ORDER BY seq DESC LIMIT ?",
        )
        .bind(&self.org)
        .bind(f.action.clone())
        .bind(f.action.clone())
        .bind(f.target.clone())
        .bind(f.target.clone())
        .bind(f.actor_id.map(|a| a.to_string()))
        .bind(f.actor_id.map(|a| a.to_string()))
        .bind(opt_ts(f.since))
        .bind(opt_ts(f.since))
        .bind(i64::from(f.limit.unwrap_or(100).min(1000)));
        fetch_all!(self, q, read)
    }
}
