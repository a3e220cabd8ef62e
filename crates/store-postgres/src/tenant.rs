//! Tenant tables: every row carries `org_id`, every query filters on it explicitly,
//! and row-level security (in `strict` mode) makes a forgotten filter return zero
//! rows. A transaction's tenant context is set with `SET LOCAL` in the same round trip
//! as its `BEGIN`, derived from the [`TenantScope`] alone.

use async_trait::async_trait;
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::types::Json;
use sqlx::{AssertSqlSafe, PgPool, Postgres, Transaction};
use tenantry_core::scope::CredentialRecord;
use tenantry_core::{AgentId, ApiKeyId, InstallId, OrgId, Permission, Role, TenantScope, UserId};
use tenantry_store::*;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::db_err;
use crate::rows::*;

/// The tenant store on the shared pool.
#[derive(Clone)]
pub struct PgTenants {
    pub(crate) pool: PgPool,
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
    /// Opens a transaction with an explicit context (the scope-free path is private
    /// to this crate and its tests).
    pub(crate) async fn begin_ctx(&self, ctx: &Context, write: bool) -> StoreResult<PgTenantTx> {
        let tx = self
            .pool
            .begin_with(AssertSqlSafe(ctx.begin_sql(write)))
            .await
            .map_err(db_err)?;
        Ok(PgTenantTx {
            tx,
            org: ctx.org,
            write,
            failed: false,
        })
    }
}

#[async_trait]
impl TenantStore for PgTenants {
    async fn create_tenant(&self, _org: OrgId) -> StoreResult<()> {
        // Pooled mode shares tables; an org's rows appear as they are written.
        Ok(())
    }

    async fn credential(
        &self,
        org: OrgId,
        key_id: ApiKeyId,
        hash: &[u8; 32],
    ) -> StoreResult<Option<(CredentialRecord, Option<OffsetDateTime>)>> {
        // Before authentication the context is the org the key index named, with no
        // principal; the stored hash must still match.
        let ctx = Context {
            org,
            principals: Vec::new(),
            keys: KeysScope::Org,
        };
        let mut tx = self.begin_ctx(&ctx, false).await?;
        // One statement for the key, its agent (if any) and its user's role:
        // authentication runs on every request, and each statement is a round trip.
        let Some(row) = sqlx::query(
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
        .bind(*key_id.as_uuid())
        .fetch_optional(&mut *tx.tx)
        .await
        .map_err(db_err)?
        else {
            return Ok(None);
        };
        let key: ApiKeyRecord = read(&row)?;
        if key.hash != *hash {
            return Ok(None);
        }
        let Some(record) = tenantry_store::rows::credential(&Cols(&row), org, &key)? else {
            return Ok(None);
        };
        Box::new(tx).commit().await?;
        Ok(Some((record, key.last_used_at)))
    }

    async fn begin(&self, scope: &TenantScope, write: bool) -> StoreResult<Box<dyn TenantTx>> {
        Ok(Box::new(self.begin_ctx(&Context::of(scope), write).await?))
    }
}

pub(crate) struct PgTenantTx {
    pub(crate) tx: Transaction<'static, Postgres>,
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

type Query<'q> = sqlx::query::Query<'q, Postgres, PgArguments>;

impl PgTenantTx {
    fn org(&self) -> Uuid {
        *self.org.as_uuid()
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
        let r = q.execute(&mut *self.tx).await;
        Ok(self.check(r)?.rows_affected())
    }

    async fn one(&mut self, q: Query<'_>) -> StoreResult<PgRow> {
        let r = q.fetch_one(&mut *self.tx).await;
        self.check(r)
    }

    async fn all<T>(
        &mut self,
        q: Query<'_>,
        map: impl Fn(&PgRow) -> StoreResult<T> + Send,
    ) -> StoreResult<Vec<T>> {
        let r = q.fetch_all(&mut *self.tx).await;
        self.check(r)?.iter().map(map).collect()
    }

    async fn opt<T>(
        &mut self,
        q: Query<'_>,
        map: impl Fn(&PgRow) -> StoreResult<T> + Send,
    ) -> StoreResult<Option<T>> {
        let r = q.fetch_optional(&mut *self.tx).await;
        self.check(r)?.as_ref().map(map).transpose()
    }
}

#[async_trait]
impl TenantTx for PgTenantTx {
    async fn commit(self: Box<Self>) -> StoreResult<()> {
        if self.failed {
            self.tx.rollback().await.map_err(db_err)?;
            return Err(StoreError::Backend(
                "commit after a failed statement: the transaction was rolled back".into(),
            ));
        }
        self.tx.commit().await.map_err(db_err)
    }

    async fn current_org_key(&mut self) -> StoreResult<Option<OrgKeyRecord>> {
        let q =
            sqlx::query("SELECT * FROM org_keys WHERE org_id = $1 ORDER BY version DESC LIMIT 1")
                .bind(self.org());
        self.opt(q, read).await
    }

    async fn get_org_key(&mut self, version: u32) -> StoreResult<Option<OrgKeyRecord>> {
        let q = sqlx::query("SELECT * FROM org_keys WHERE org_id = $1 AND version = $2")
            .bind(self.org())
            .bind(i64::from(version));
        self.opt(q, read).await
    }

    async fn insert_org_key(&mut self, k: &OrgKeyRecord) -> StoreResult<()> {
        let q = sqlx::query(
            "INSERT INTO org_keys (org_id, version, wrapped, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(self.org())
        .bind(i64::from(k.version))
        .bind(k.wrapped.clone())
        .bind(k.created_at);
        self.exec(q).await.map(|_| ())
    }

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
        self.opt(q, read).await
    }

    async fn list_users(&mut self) -> StoreResult<Vec<UserRecord>> {
        let q = sqlx::query("SELECT * FROM users WHERE org_id = $1 ORDER BY id").bind(self.org());
        self.all(q, read).await
    }

    async fn set_user_role(&mut self, uid: UserId, role: Role) -> StoreResult<bool> {
        let q = sqlx::query("UPDATE users SET role = $1 WHERE org_id = $2 AND id = $3")
            .bind(role.as_str())
            .bind(self.org())
            .bind(*uid.as_uuid());
        Ok(self.exec(q).await? == 1)
    }

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
        self.opt(q, read).await
    }

    async fn list_agents(&mut self) -> StoreResult<Vec<AgentRecord>> {
        let q = sqlx::query("SELECT * FROM agents WHERE org_id = $1 ORDER BY id").bind(self.org());
        self.all(q, read).await
    }

    async fn delete_agent(&mut self, aid: AgentId) -> StoreResult<bool> {
        let q = sqlx::query("DELETE FROM agents WHERE org_id = $1 AND id = $2")
            .bind(self.org())
            .bind(*aid.as_uuid());
        Ok(self.exec(q).await? == 1)
    }

    async fn insert_api_key(&mut self, k: &ApiKeyRecord) -> StoreResult<()> {
        let q = sqlx::query(
            "INSERT INTO api_keys (org_id, id, name, principal_kind, principal_id, prefix, hash, \
             created_at, expires_at, revoked_at, last_used_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(self.org())
        .bind(*k.id.as_uuid())
        .bind(k.name.clone())
        .bind(k.principal_kind.as_str())
        .bind(k.principal_id)
        .bind(k.prefix.clone())
        .bind(k.hash.to_vec())
        .bind(k.created_at)
        .bind(k.expires_at)
        .bind(k.revoked_at)
        .bind(k.last_used_at);
        self.exec(q).await.map(|_| ())
    }

    async fn get_api_key(&mut self, kid: ApiKeyId) -> StoreResult<Option<ApiKeyRecord>> {
        let q = sqlx::query("SELECT * FROM api_keys WHERE org_id = $1 AND id = $2")
            .bind(self.org())
            .bind(*kid.as_uuid());
        self.opt(q, read).await
    }

    async fn list_api_keys(&mut self) -> StoreResult<Vec<ApiKeyRecord>> {
        let q =
            sqlx::query("SELECT * FROM api_keys WHERE org_id = $1 ORDER BY id").bind(self.org());
        self.all(q, read).await
    }

    async fn revoke_api_key(&mut self, kid: ApiKeyId, at: OffsetDateTime) -> StoreResult<bool> {
        let q = sqlx::query(
            "UPDATE api_keys SET revoked_at = $1 WHERE org_id = $2 AND id = $3 AND revoked_at IS NULL",
        )
        .bind(at)
        .bind(self.org())
        .bind(*kid.as_uuid());
        Ok(self.exec(q).await? == 1)
    }

    async fn touch_api_key(&mut self, kid: ApiKeyId, at: OffsetDateTime) -> StoreResult<()> {
        // A use never moves the last use back.
        let q = sqlx::query(
            "UPDATE api_keys SET last_used_at = $1 WHERE org_id = $2 AND id = $3 \
             AND (last_used_at IS NULL OR last_used_at < $1)",
        )
        .bind(at)
        .bind(self.org())
        .bind(*kid.as_uuid());
        self.exec(q).await.map(|_| ())
    }

    async fn insert_install(&mut self, i: &InstallRecord) -> StoreResult<()> {
        let q = sqlx::query(
            "INSERT INTO installs (org_id, id, plugin, version, previous_version, artifact_sha256, \
             config, grants, enabled, rate_limit_per_minute, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(self.org())
        .bind(*i.id.as_uuid())
        .bind(i.plugin.clone())
        .bind(i.version.clone())
        .bind(i.previous_version.clone())
        .bind(i.artifact_sha256.clone())
        .bind(Json(i.config.clone()))
        .bind(Json(to_json(&i.grants)?))
        .bind(i.enabled)
        .bind(i.rate_limit_per_minute.map(i64::from))
        .bind(i.created_at)
        .bind(i.updated_at);
        self.exec(q).await.map(|_| ())
    }

    async fn get_install(&mut self, iid: InstallId) -> StoreResult<Option<InstallRecord>> {
        let q = sqlx::query("SELECT * FROM installs WHERE org_id = $1 AND id = $2")
            .bind(self.org())
            .bind(*iid.as_uuid());
        self.opt(q, read).await
    }

    async fn get_install_by_plugin(&mut self, plugin: &str) -> StoreResult<Option<InstallRecord>> {
        let q = sqlx::query("SELECT * FROM installs WHERE org_id = $1 AND plugin = $2")
            .bind(self.org())
            .bind(plugin.to_string());
        self.opt(q, read).await
    }

    async fn list_installs(&mut self) -> StoreResult<Vec<InstallRecord>> {
        let q =
            sqlx::query("SELECT * FROM installs WHERE org_id = $1 ORDER BY id").bind(self.org());
        self.all(q, read).await
    }

    async fn update_install(&mut self, i: &InstallRecord) -> StoreResult<bool> {
        let q = sqlx::query(
            "UPDATE installs SET version = $1, previous_version = $2, artifact_sha256 = $3, \
             config = $4, grants = $5, enabled = $6, rate_limit_per_minute = $7, updated_at = $8 \
             WHERE org_id = $9 AND id = $10",
        )
        .bind(i.version.clone())
        .bind(i.previous_version.clone())
        .bind(i.artifact_sha256.clone())
        .bind(Json(i.config.clone()))
        .bind(Json(to_json(&i.grants)?))
        .bind(i.enabled)
        .bind(i.rate_limit_per_minute.map(i64::from))
        .bind(i.updated_at)
        .bind(self.org())
        .bind(*i.id.as_uuid());
        Ok(self.exec(q).await? == 1)
    }

    async fn delete_install(&mut self, iid: InstallId) -> StoreResult<bool> {
        let q = sqlx::query("DELETE FROM installs WHERE org_id = $1 AND id = $2")
            .bind(self.org())
            .bind(*iid.as_uuid());
        Ok(self.exec(q).await? == 1)
    }

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
        self.opt(q, read).await
    }

    async fn list_secrets(&mut self, iid: InstallId) -> StoreResult<Vec<SecretMeta>> {
        let q = sqlx::query(
            "SELECT name, key_version, created_at, updated_at FROM secrets \
             WHERE org_id = $1 AND install_id = $2 ORDER BY name",
        )
        .bind(self.org())
        .bind(*iid.as_uuid());
        self.all(q, read).await
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

    async fn insert_binding(&mut self, b: &BindingRecord) -> StoreResult<()> {
        let q = sqlx::query(
            "INSERT INTO bindings (org_id, agent_id, install_id, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(self.org())
        .bind(*b.agent_id.as_uuid())
        .bind(*b.install_id.as_uuid())
        .bind(b.created_at);
        self.exec(q).await.map(|_| ())
    }

    async fn delete_binding(&mut self, aid: AgentId, iid: InstallId) -> StoreResult<bool> {
        let q = sqlx::query(
            "DELETE FROM bindings WHERE org_id = $1 AND agent_id = $2 AND install_id = $3",
        )
        .bind(self.org())
        .bind(*aid.as_uuid())
        .bind(*iid.as_uuid());
        Ok(self.exec(q).await? == 1)
    }

    async fn list_bindings(&mut self) -> StoreResult<Vec<BindingRecord>> {
        let q =
            sqlx::query("SELECT * FROM bindings WHERE org_id = $1 ORDER BY agent_id, install_id")
                .bind(self.org());
        self.all(q, read).await
    }

    async fn is_bound(&mut self, aid: AgentId, iid: InstallId) -> StoreResult<bool> {
        let q = sqlx::query(
            "SELECT 1 AS one FROM bindings WHERE org_id = $1 AND agent_id = $2 AND install_id = $3",
        )
        .bind(self.org())
        .bind(*aid.as_uuid())
        .bind(*iid.as_uuid());
        Ok(self.opt(q, |_| Ok(())).await?.is_some())
    }

    async fn delete_bindings_of_install(&mut self, iid: InstallId) -> StoreResult<u64> {
        let q = sqlx::query("DELETE FROM bindings WHERE org_id = $1 AND install_id = $2")
            .bind(self.org())
            .bind(*iid.as_uuid());
        self.exec(q).await
    }

    async fn kv_get(&mut self, iid: InstallId, key: &str) -> StoreResult<Option<Vec<u8>>> {
        let q =
            sqlx::query("SELECT value FROM kv WHERE org_id = $1 AND install_id = $2 AND key = $3")
                .bind(self.org())
                .bind(*iid.as_uuid())
                .bind(key.to_string());
        self.opt(q, |r: &PgRow| Cols(r).bytes("value")).await
    }

    async fn kv_set(&mut self, iid: InstallId, key: &str, value: &[u8]) -> StoreResult<()> {
        let q = sqlx::query(
            "INSERT INTO kv (org_id, install_id, key, value, updated_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (org_id, install_id, key) DO UPDATE SET value = excluded.value, \
             updated_at = excluded.updated_at",
        )
        .bind(self.org())
        .bind(*iid.as_uuid())
        .bind(key.to_string())
        .bind(value.to_vec())
        .bind(OffsetDateTime::now_utc());
        self.exec(q).await.map(|_| ())
    }

    async fn kv_delete(&mut self, iid: InstallId, key: &str) -> StoreResult<bool> {
        let q = sqlx::query("DELETE FROM kv WHERE org_id = $1 AND install_id = $2 AND key = $3")
            .bind(self.org())
            .bind(*iid.as_uuid())
            .bind(key.to_string());
        Ok(self.exec(q).await? == 1)
    }

    async fn kv_list(
        &mut self,
        iid: InstallId,
        prefix: &str,
        limit: u32,
    ) -> StoreResult<Vec<String>> {
        // Prefix match by range (the column is COLLATE "C"), not LIKE, so '%' and '_'
        // in keys are literal.
        let upper = format!("{prefix}\u{10FFFF}");
        let q = sqlx::query(
            "SELECT key FROM kv WHERE org_id = $1 AND install_id = $2 AND key >= $3 AND key < $4 \
             ORDER BY key LIMIT $5",
        )
        .bind(self.org())
        .bind(*iid.as_uuid())
        .bind(prefix.to_string())
        .bind(upper)
        .bind(i64::from(limit));
        self.all(q, |r: &PgRow| Cols(r).text("key")).await
    }

    async fn kv_usage_bytes(&mut self) -> StoreResult<u64> {
        let q = sqlx::query(
            "SELECT COALESCE(SUM(octet_length(key) + octet_length(value)), 0)::bigint AS n \
             FROM kv WHERE org_id = $1",
        )
        .bind(self.org());
        let row = self.one(q).await?;
        Cols(&row).u64("n")
    }

    async fn kv_delete_all(&mut self, iid: InstallId) -> StoreResult<u64> {
        let q = sqlx::query("DELETE FROM kv WHERE org_id = $1 AND install_id = $2")
            .bind(self.org())
            .bind(*iid.as_uuid());
        self.exec(q).await
    }

    async fn insert_usage(&mut self, events: &[UsageEvent]) -> StoreResult<()> {
        for e in events {
            let q = sqlx::query(
                "INSERT INTO usage_events (org_id, id, at, install_id, plugin, action, actor_kind, \
                 actor_id, outcome, duration_us, fuel, peak_memory_bytes, host_calls, bytes_in, bytes_out, \
                 caller_id) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
            )
            .bind(self.org())
            .bind(*e.id.as_uuid())
            .bind(e.at)
            .bind(*e.install_id.as_uuid())
            .bind(e.plugin.clone())
            .bind(e.action.clone())
            .bind(e.actor_kind.as_str())
            .bind(e.actor_id)
            .bind(e.outcome.as_str())
            .bind(i64_of(e.duration_us))
            .bind(i64_of(e.fuel))
            .bind(i64_of(e.peak_memory_bytes))
            .bind(i64_of(e.host_calls))
            .bind(i64_of(e.bytes_in))
            .bind(i64_of(e.bytes_out))
            .bind(e.caller_id.map(|c| *c.as_uuid()));
            self.exec(q).await?;
        }
        Ok(())
    }

    async fn list_usage(&mut self, f: &UsageFilter) -> StoreResult<Vec<UsageEvent>> {
        // The cursor is the (at, id) of the `after` event, looked up in this org only
        // (explicit filter, and RLS underneath); an unknown id makes the row
        // comparison NULL, so nothing matches.
        let q = sqlx::query(
            "SELECT * FROM usage_events WHERE org_id = $1 \
             AND ($2::timestamptz IS NULL OR at >= $2) AND ($3::timestamptz IS NULL OR at < $3) \
             AND ($4::uuid IS NULL OR install_id = $4) \
             AND ($6::uuid IS NULL OR (at, id) > \
                  (SELECT c.at, c.id FROM usage_events c WHERE c.org_id = $1 AND c.id = $6)) \
             ORDER BY at, id LIMIT $5",
        )
        .bind(self.org())
        .bind(f.since)
        .bind(f.until)
        .bind(f.install_id.map(|i| *i.as_uuid()))
        .bind(i64::from(f.limit.unwrap_or(10_000)))
        .bind(f.after.map(|i| *i.as_uuid()));
        self.all(q, read).await
    }

    async fn count_usage(
        &mut self,
        kind: RunKind,
        since: OffsetDateTime,
        until: OffsetDateTime,
    ) -> StoreResult<u64> {
        let q = sqlx::query(
            "SELECT COUNT(*) AS n FROM usage_events WHERE org_id = $1 AND at >= $2 AND at < $3 \
             AND outcome NOT IN ('INVALID_INPUT', 'NOT_FOUND') AND (caller_id IS NOT NULL) = $4",
        )
        .bind(self.org())
        .bind(since)
        .bind(until)
        .bind(kind == RunKind::ToolCall);
        let row = self.one(q).await?;
        Cols(&row).u64("n")
    }

    async fn append_audit(&mut self, e: &AuditEntry) -> StoreResult<()> {
        let q = sqlx::query(
            "INSERT INTO audit (org_id, seq, at, actor_kind, actor_id, action, target, outcome, \
             request_id, details) \
             VALUES ($1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM audit WHERE org_id = $1), \
             $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(self.org())
        .bind(e.at)
        .bind(e.actor_kind.as_str())
        .bind(e.actor_id)
        .bind(e.action.clone())
        .bind(e.target.clone())
        .bind(e.outcome.clone())
        .bind(e.request_id.map(|r| *r.as_uuid()))
        .bind(Json(e.details.clone()));
        self.exec(q).await.map(|_| ())
    }

    async fn list_audit(&mut self, f: &AuditFilter) -> StoreResult<Vec<AuditEntry>> {
        let q = sqlx::query(
            "SELECT * FROM audit WHERE org_id = $1 \
             AND ($2::text IS NULL OR action = $2) AND ($3::text IS NULL OR target = $3) \
             AND ($4::uuid IS NULL OR actor_id = $4) AND ($5::timestamptz IS NULL OR at >= $5) \
             ORDER BY seq DESC LIMIT $6",
        )
        .bind(self.org())
        .bind(f.action.clone())
        .bind(f.target.clone())
        .bind(f.actor_id)
        .bind(f.since)
        .bind(i64::from(f.limit.unwrap_or(100).min(1000)));
        self.all(q, read).await
    }
}
