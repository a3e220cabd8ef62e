//! Tenant tables: every row carries `org_id`, every query filters on it explicitly,
//! and row-level security (in `strict` mode) makes a forgotten filter return zero
//! rows. A transaction's tenant context is set with `SET LOCAL` in the same round trip
//! as its `BEGIN`, derived from the [`TenantScope`] alone.

use async_trait::async_trait;
use sqlx::postgres::PgRow;
use sqlx::{AssertSqlSafe, PgConnection, PgPool, Postgres, Transaction};
use std::sync::Arc;
use tenantry_core::scope::CredentialRecord;
use tenantry_core::{ApiKeyId, OrgId, Permission, TenantScope};
use tenantry_store::chain::content_hash;
use tenantry_store::*;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::db_err;
use crate::kept::{self, Counter, Kept};
use crate::rows::*;

// One file per resource, each its trait's `impl` for [`PgTenantTx`].
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

/// The tenant store on the shared pool.
#[derive(Clone)]
pub struct PgTenants {
    pub(crate) pool: PgPool,
    pub(crate) kept: Arc<Kept>,
}

/// Which API keys the context may reach (see `tenantry_keys_scope()` in the schema).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum KeysScope {
    /// Every key of the org.
    Org,
    /// Only the keys of the context's principals.
    Own,
}

/// The tenant context of one transaction, as `SET LOCAL` settings.
#[derive(Clone, Debug)]
pub struct Context {
    pub org: OrgId,
    /// The effective principals: the actor and, for an agent, the user it acts for.
    pub principals: Vec<Uuid>,
    pub keys: KeysScope,
}

impl Context {
    /// The context of a scope. Agents that may not manage keys are confined to their
    /// own keys and their user's (delegation); every other principal sees the org's
    /// keys and the service filters further.
    pub fn of(scope: &TenantScope) -> Self {
        let actor = scope.actor();
        let mut principals = vec![actor.id];
        if let Some(user) = actor.on_behalf_of {
            principals.push(*user.as_uuid());
        }
        let keys = if scope.is_agent() && !scope.can(Permission::ManageKeys) {
            KeysScope::Own
        } else {
            KeysScope::Org
        };
        Self {
            org: scope.org_id(),
            principals,
            keys,
        }
    }

    /// `BEGIN` plus the settings, one simple-query round trip. Every value is
    /// formatted from a typed id or an enum, never from a request string.
    /// `write` also takes the org's write lock, so validate-then-write transactions of
    /// one org run one at a time (as `BEGIN IMMEDIATE` does in the embedded store).
    pub fn begin_sql(&self, write: bool) -> String {
        let principals: Vec<String> = self.principals.iter().map(Uuid::to_string).collect();
        let keys = match self.keys {
            KeysScope::Org => "org",
            KeysScope::Own => "own",
        };
        let mut sql = format!(
            "BEGIN; SET LOCAL app.org_id = '{org}'; SET LOCAL app.principals = '{{{p}}}'; \
             SET LOCAL app.keys_scope = '{keys}'",
            org = self.org,
            p = principals.join(","),
        );
        if write {
            sql.push_str(&format!(
                "; SELECT pg_advisory_xact_lock(hashtextextended('{}', 0))",
                self.org
            ));
        }
        sql
    }
}

impl PgTenants {
    /// A transaction with an explicit context (the scope-free path is private to this
    /// crate and its tests). Nothing is sent until its first statement, so a read
    /// answered from kept rows makes no round trip.
    pub(crate) fn begin_ctx(&self, ctx: Context, write: bool, seen: Seen) -> PgTenantTx {
        PgTenantTx {
            pool: self.pool.clone(),
            kept: self.kept.clone(),
            tx: None,
            org: ctx.org,
            ctx,
            write,
            seen,
            failed: false,
        }
    }

    /// Reads a key's credential (one statement for the key, its agent, if any, and
    /// its user's role: authentication runs on every request).
    async fn read_credential(&self, org: OrgId, key_id: ApiKeyId) -> StoreResult<kept::Credential> {
        // Before authentication the context is the org the key index named, with no
        // principal; the caller still compares the stored hash.
        let ctx = Context {
            org,
            principals: Vec::new(),
            keys: KeysScope::Org,
        };
        let mut tx = self.begin_ctx(ctx, false, Seen::NOTHING);
        let q = sqlx::query(
            "SELECT k.*, a.on_behalf_of AS agent_on_behalf_of, a.grants AS agent_grants, \
                    u.role AS user_role \
             FROM api_keys k \
             LEFT JOIN agents a ON k.principal_kind = 'agent' \
                  AND a.org_id = k.org_id AND a.id = k.principal_id \
             LEFT JOIN users u ON u.org_id = k.org_id AND u.id = \
                  (CASE WHEN k.principal_kind = 'agent' THEN a.on_behalf_of ELSE k.principal_id END) \
             WHERE k.org_id = $1 AND k.id = $2",
        )
        .bind(*org.as_uuid())
        .bind(*key_id.as_uuid());
        let found = tx
            .opt_with(q, |row| {
                let key: ApiKeyRecord = read(row)?;
                Ok(tenantry_store::rows::credential(&Cols(row), org, &key)?
                    .map(|record| (record, key.last_used_at, key.hash)))
            })
            .await?;
        Box::new(tx).commit().await?;
        Ok(found.flatten())
    }
}

#[async_trait]
impl TenantStore for PgTenants {
    async fn create_tenant(&self, _org: OrgId) -> StoreResult<()> {
        // Pooled mode shares tables; an org's rows appear as they are written.
        Ok(())
    }

    async fn drop_tenant(&self, org: OrgId) -> StoreResult<()> {
        // One statement, one transaction (migration 0010): the function refuses an
        // org that is not suspended. The deletes move the org's generation, so no
        // node uses a kept row of it afterwards.
        sqlx::query("SELECT tenantry_erase_org($1)")
            .bind(org.as_uuid())
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn credential(
        &self,
        org: OrgId,
        key_id: ApiKeyId,
        hash: &[u8; 32],
        seen: Seen,
    ) -> StoreResult<Option<(CredentialRecord, Option<OffsetDateTime>)>> {
        let seen = Counter::Org.of(seen);
        let found = match self.kept.credentials.get(&(org, key_id), seen) {
            Some(kept) => kept,
            None => {
                let found = self.read_credential(org, key_id).await?;
                self.kept
                    .credentials
                    .keep((org, key_id), seen, found.clone());
                found
            }
        };
        Ok(found
            .filter(|(_, _, stored)| stored == hash)
            .map(|(record, last_used, _)| (record, last_used)))
    }

    async fn begin(&self, scope: &TenantScope, write: bool) -> StoreResult<Box<dyn TenantTx>> {
        Ok(Box::new(self.begin_ctx(
            Context::of(scope),
            write,
            Seen::NOTHING,
        )))
    }

    async fn begin_seen(&self, scope: &TenantScope, seen: Seen) -> StoreResult<Box<dyn TenantTx>> {
        Ok(Box::new(self.begin_ctx(Context::of(scope), false, seen)))
    }

    async fn append_records(
        &self,
        scope: &TenantScope,
        usage: &[UsageEvent],
        audit: &[AuditEntry],
    ) -> StoreResult<()> {
        if usage.is_empty() && audit.is_empty() {
            return Ok(());
        }
        // One statement, its own transaction (see `append_query`).
        append_query(&[(scope.org_id(), usage, audit)])?
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn append_batch(&self, mut batch: Vec<OrgRecords>) -> Vec<(OrgId, StoreError)> {
        // Every org in one statement and one commit, orgs in id order (so concurrent
        // batches take their write locks in one order). If it fails (one org's rows
        // refused), each org is written on its own, so one cannot hold back the rest.
        batch.sort_by_key(|r| r.scope.org_id());
        let orgs: Vec<_> = batch
            .iter()
            .map(|r| (r.scope.org_id(), &r.usage[..], &r.audit[..]))
            .collect();
        let all = match append_query(&orgs) {
            Ok(q) => q.execute(&self.pool).await.map_err(db_err),
            Err(e) => Err(e),
        };
        match all {
            Ok(_) => Vec::new(),
            Err(e) => {
                tracing::warn!(error = %e, orgs = batch.len(), "a batch of invocation records failed; writing org by org");
                append_each(self, batch).await
            }
        }
    }

    async fn touch_key(
        &self,
        scope: &TenantScope,
        key_id: ApiKeyId,
        at: OffsetDateTime,
    ) -> StoreResult<()> {
        let mut tx = self.begin(scope, true).await?;
        tx.touch_api_key(key_id, at).await?;
        tx.commit().await?;
        // The last-used time does not move the org's generation (nothing another
        // server decides depends on it); keep this server's copy current, so the key
        // is not touched again within the minute.
        self.kept
            .credentials
            .update(&(scope.org_id(), key_id), |found| {
                if let Some((_, last_used, _)) = found {
                    *last_used = Some(last_used.map_or(at, |t| t.max(at)));
                }
            });
        Ok(())
    }
}

/// Appends the usage events and audit entries of one or more orgs in one statement
/// (`tenantry_append_records`, migrations 0006 and 0007): for each org, in the given order, it
/// sets the org's tenant context and takes its write lock itself, so outside a
/// transaction it is one round trip, and inside one (of the same org) it changes
/// neither. Column arrays, sliced per org and zipped by UNNEST; audit entries are
/// numbered after their org's last one, in their order, and chained to it from the
/// content hashes computed here (`tenantry_store::chain`).
pub(crate) fn append_query(
    orgs: &[(OrgId, &[UsageEvent], &[AuditEntry])],
) -> StoreResult<Query<'static>> {
    let usage: Vec<&UsageEvent> = orgs.iter().flat_map(|(_, u, _)| u.iter()).collect();
    let audit: Vec<&AuditEntry> = orgs.iter().flat_map(|(_, _, a)| a.iter()).collect();
    fn col<T, U>(items: &[&T], f: impl Fn(&T) -> U) -> Vec<U> {
        items.iter().map(|i| f(i)).collect()
    }
    let count =
        |n: usize| i32::try_from(n).map_err(|_| StoreError::Backend("batch too large".into()));
    let u_n = orgs
        .iter()
        .map(|(_, u, _)| count(u.len()))
        .collect::<StoreResult<Vec<_>>>()?;
    let a_n = orgs
        .iter()
        .map(|(_, _, a)| count(a.len()))
        .collect::<StoreResult<Vec<_>>>()?;
    let details = audit
        .iter()
        .map(|e| serde_json::to_string(&e.details))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| StoreError::Backend(e.to_string()))?;
    let content: Vec<Vec<u8>> = orgs
        .iter()
        .flat_map(|(org, _, a)| a.iter().map(|e| content_hash(*org, e).to_vec()))
        .collect();
    Ok(sqlx::query(
        "SELECT tenantry_append_records($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, \
         $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27)",
    )
    .bind(
        orgs.iter()
            .map(|(o, _, _)| *o.as_uuid())
            .collect::<Vec<_>>(),
    )
    .bind(u_n)
    .bind(a_n)
    .bind(col(&usage, |e| *e.id.as_uuid()))
    .bind(col(&usage, |e| e.at))
    .bind(col(&usage, |e| *e.install_id.as_uuid()))
    .bind(col(&usage, |e| e.plugin.clone()))
    .bind(col(&usage, |e| e.action.clone()))
    .bind(col(&usage, |e| e.actor_kind.as_str()))
    .bind(col(&usage, |e| e.actor_id))
    .bind(col(&usage, |e| e.outcome.as_str()))
    .bind(col(&usage, |e| i64_of(e.duration_us)))
    .bind(col(&usage, |e| i64_of(e.fuel)))
    .bind(col(&usage, |e| i64_of(e.peak_memory_bytes)))
    .bind(col(&usage, |e| i64_of(e.host_calls)))
    .bind(col(&usage, |e| i64_of(e.bytes_in)))
    .bind(col(&usage, |e| i64_of(e.bytes_out)))
    .bind(col(&usage, |e| e.caller_id.map(|c| *c.as_uuid())))
    .bind(col(&audit, |e| e.at))
    .bind(col(&audit, |e| e.actor_kind.as_str()))
    .bind(col(&audit, |e| e.actor_id))
    .bind(col(&audit, |e| e.action.clone()))
    .bind(col(&audit, |e| e.target.clone()))
    .bind(col(&audit, |e| e.outcome.clone()))
    .bind(col(&audit, |e| e.request_id.map(|r| *r.as_uuid())))
    .bind(details)
    .bind(content))
}

pub(crate) struct PgTenantTx {
    pool: PgPool,
    kept: Arc<Kept>,
    /// Begun with `ctx` at the first statement.
    tx: Option<Transaction<'static, Postgres>>,
    ctx: Context,
    /// How far the request had seen storage; set only on read transactions begun
    /// with [`TenantStore::begin_seen`], which may answer from kept rows.
    seen: Seen,
    /// The org of the context this transaction was opened with; bound into every
    /// query as the explicit `WHERE org_id = $1` (RLS is the safety net behind it).
    org: OrgId,
    /// Begun as a write transaction; a read transaction refuses writes (as the
    /// embedded store must, to keep its in-memory rows exact).
    write: bool,
    /// A statement failed: PostgreSQL has aborted the transaction, and its `COMMIT`
    /// would quietly roll back, so [`TenantTx::commit`] reports an error instead.
    failed: bool,
}

impl PgTenantTx {
    fn org(&self) -> Uuid {
        *self.org.as_uuid()
    }

    /// The org generation this transaction's reads may use kept rows from.
    fn seen(&self) -> Option<u64> {
        Counter::Org.of(self.seen)
    }

    /// The connection of the transaction, begun (with the context, one round trip)
    /// if this is its first statement.
    async fn conn(&mut self) -> StoreResult<&mut PgConnection> {
        let tx = match self.tx.take() {
            Some(tx) => tx,
            None => {
                let begun = self
                    .pool
                    .begin_with(AssertSqlSafe(self.ctx.begin_sql(self.write)))
                    .await;
                self.check(begun)?
            }
        };
        Ok(&mut **self.tx.insert(tx))
    }

    /// Notes a failed statement (see `failed`).
    fn check<T>(&mut self, r: Result<T, sqlx::Error>) -> StoreResult<T> {
        r.map_err(|e| {
            self.failed = true;
            db_err(e)
        })
    }

    /// Runs a write; refused in a read transaction.
    async fn exec(&mut self, q: Query<'_>) -> StoreResult<u64> {
        if !self.write {
            return Err(StoreError::Backend(
                "a write in a read transaction (begin it with write = true)".into(),
            ));
        }
        let r = q.execute(self.conn().await?).await;
        Ok(self.check(r)?.rows_affected())
    }

    /// Reads one record, if there is one (see [`Self::all`]).
    async fn opt<T: FromColumns>(&mut self, q: Query<'_>) -> StoreResult<Option<T>> {
        self.opt_with(q, read).await
    }

    /// Reads one row, if there is one, through `map`.
    async fn opt_with<T>(
        &mut self,
        q: Query<'_>,
        map: impl Fn(&PgRow) -> StoreResult<T> + Send,
    ) -> StoreResult<Option<T>> {
        let r = q.fetch_optional(self.conn().await?).await;
        self.check(r)?.as_ref().map(map).transpose()
    }

    /// Reads records (the columns of `SELECT *`, through `tenantry_store::rows`).
    async fn all<T: FromColumns>(&mut self, q: Query<'_>) -> StoreResult<Vec<T>> {
        self.all_with(q, read).await
    }

    /// Reads rows through `map`.
    async fn all_with<T>(
        &mut self,
        q: Query<'_>,
        map: impl Fn(&PgRow) -> StoreResult<T> + Send,
    ) -> StoreResult<Vec<T>> {
        let r = q.fetch_all(self.conn().await?).await;
        self.check(r)?.iter().map(map).collect()
    }

    /// The `n` column of a query's one row (a count or a sum).
    async fn count(&mut self, q: Query<'_>) -> StoreResult<u64> {
        let r = q.fetch_one(self.conn().await?).await;
        Cols(&self.check(r)?).u64("n")
    }
}

#[async_trait]
impl TenantTx for PgTenantTx {
    fn org_id(&self) -> OrgId {
        self.org
    }

    async fn commit(self: Box<Self>) -> StoreResult<()> {
        let Some(tx) = self.tx else {
            // Nothing was sent: nothing to commit.
            return Ok(());
        };
        if self.failed {
            tx.rollback().await.map_err(db_err)?;
            return Err(StoreError::Backend(
                "commit after a failed statement: the transaction was rolled back".into(),
            ));
        }
        tx.commit().await.map_err(db_err)
    }
}
