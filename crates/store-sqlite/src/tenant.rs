//! `tenants/<org-id>.db`: one SQLite file per org, opened only for that org's scope.

use async_trait::async_trait;
use sqlx::sqlite::SqliteRow;
use sqlx::{Sqlite, SqlitePool, Transaction};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;
use tenantry_core::scope::{CredentialRecord, Principal};
use tenantry_core::{
    AgentId, ApiKeyId, InstallId, OrgId, PrincipalKind, Role, TenantScope, UserId,
};
use tenantry_store::*;
use time::OffsetDateTime;
use tokio::sync::Mutex;

use crate::rows::*;
use crate::{db_err, open_pool};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/tenant");

/// How many tenant files stay open at once; the least recently used is closed
/// beyond this (its pool reopens on the next request).
const MAX_OPEN_TENANTS: usize = 256;

/// The tenant stores under `<data>/tenants/`.
#[derive(Clone)]
pub struct SqliteTenants {
    inner: Arc<Inner>,
}

struct Inner {
    dir: PathBuf,
    open: Mutex<HashMap<OrgId, (SqlitePool, Instant)>>,
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
                open: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// The file of one org. Derived from the validated id only.
    fn path(&self, org: OrgId) -> PathBuf {
        self.inner.dir.join(format!("{org}.db"))
    }

    async fn pool(&self, org: OrgId, create: bool) -> StoreResult<SqlitePool> {
        let mut open = self.inner.open.lock().await;
        if let Some((pool, used)) = open.get_mut(&org) {
            *used = Instant::now();
            return Ok(pool.clone());
        }
        let path = self.path(org);
        if !create && !tokio::fs::try_exists(&path).await.unwrap_or(false) {
            return Err(StoreError::TenantNotFound);
        }
        let pool = open_pool(&path, create, 4).await.map_err(db_err)?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        if open.len() >= MAX_OPEN_TENANTS
            && let Some(oldest) = open.iter().min_by_key(|(_, (_, t))| *t).map(|(k, _)| *k)
            && let Some((p, _)) = open.remove(&oldest)
        {
            // Closing waits for checked-out connections; don't hold the map lock.
            tokio::spawn(async move { p.close().await });
        }
        open.insert(org, (pool.clone(), Instant::now()));
        Ok(pool)
    }
}

#[async_trait]
impl TenantStore for SqliteTenants {
    async fn create_tenant(&self, org: OrgId) -> StoreResult<()> {
        self.pool(org, true).await.map(|_| ())
    }

    async fn credential(
        &self,
        org: OrgId,
        key_id: ApiKeyId,
        hash: &[u8; 32],
    ) -> StoreResult<Option<(CredentialRecord, Option<OffsetDateTime>)>> {
        let pool = match self.pool(org, false).await {
            Ok(p) => p,
            Err(StoreError::TenantNotFound) => return Ok(None),
            Err(e) => return Err(e),
        };
        // One statement for the key, its agent (if any) and the role of the user it
        // acts for: authentication runs on every request, and each statement is a
        // round trip to the connection's worker thread.
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
        .fetch_optional(&pool)
        .await
        .map_err(db_err)?
        else {
            return Ok(None);
        };
        let key = api_key(&row)?;
        if key.hash != *hash {
            return Ok(None);
        }
        // A key whose user (or whose agent's user) is gone authenticates no one.
        let Some(role) = opt_text(&row, "user_role")? else {
            return Ok(None);
        };
        let role = Role::parse(&role).ok_or_else(|| corrupt("role"))?;
        let principal = match key.principal_kind {
            PrincipalKind::User => Principal::User {
                org_id: org,
                id: UserId::from_uuid(key.principal_id),
                role,
            },
            PrincipalKind::Agent => Principal::Agent {
                org_id: org,
                id: AgentId::from_uuid(key.principal_id),
                on_behalf_of: id(&row, "agent_on_behalf_of")?,
                user_role: role,
                grants: json(&row, "agent_grants")?,
            },
            PrincipalKind::Operator => return Ok(None),
        };
        Ok(Some((
            CredentialRecord {
                key_id,
                expires_at: key.expires_at,
                revoked_at: key.revoked_at,
                principal,
            },
            key.last_used_at,
        )))
    }

    async fn begin(&self, scope: &TenantScope, write: bool) -> StoreResult<Box<dyn TenantTx>> {
        let org = scope.org_id();
        let pool = self.pool(org, false).await?;
        let tx = if write {
            pool.begin_with("BEGIN IMMEDIATE").await
        } else {
            pool.begin().await
        }
        .map_err(db_err)?;
        Ok(Box::new(SqliteTenantTx {
            tx,
            org: org.to_string(),
        }))
    }
}

struct SqliteTenantTx {
    tx: Transaction<'static, Sqlite>,
    /// The org of the scope this transaction was opened for; bound into every query.
    org: String,
}

fn user(row: &SqliteRow) -> StoreResult<UserRecord> {
    Ok(UserRecord {
        id: id(row, "id")?,
        name: text(row, "name")?,
        role: Role::parse(&text(row, "role")?).ok_or_else(|| corrupt("role"))?,
        created_at: time(row, "created_at")?,
    })
}

fn agent(row: &SqliteRow) -> StoreResult<AgentRecord> {
    Ok(AgentRecord {
        id: id(row, "id")?,
        name: text(row, "name")?,
        on_behalf_of: id(row, "on_behalf_of")?,
        grants: json(row, "grants")?,
        created_at: time(row, "created_at")?,
    })
}

fn api_key(row: &SqliteRow) -> StoreResult<ApiKeyRecord> {
    Ok(ApiKeyRecord {
        id: id(row, "id")?,
        name: text(row, "name")?,
        principal_kind: PrincipalKind::parse(&text(row, "principal_kind")?)
            .ok_or_else(|| corrupt("principal_kind"))?,
        principal_id: uuid(row, "principal_id")?,
        prefix: text(row, "prefix")?,
        hash: hash32(row, "hash")?,
        created_at: time(row, "created_at")?,
        expires_at: opt_time(row, "expires_at")?,
        revoked_at: opt_time(row, "revoked_at")?,
        last_used_at: opt_time(row, "last_used_at")?,
    })
}

fn install(row: &SqliteRow) -> StoreResult<InstallRecord> {
    Ok(InstallRecord {
        id: id(row, "id")?,
        plugin: text(row, "plugin")?,
        version: text(row, "version")?,
        previous_version: opt_text(row, "previous_version")?,
        artifact_sha256: text(row, "artifact_sha256")?,
        config: json(row, "config")?,
        grants: json(row, "grants")?,
        enabled: int(row, "enabled")? != 0,
        rate_limit_per_minute: sqlx::Row::try_get::<Option<i64>, _>(row, "rate_limit_per_minute")
            .map_err(|_| corrupt("rate_limit_per_minute"))?
            .map(|v| u32::try_from(v).unwrap_or(u32::MAX)),
        created_at: time(row, "created_at")?,
        updated_at: time(row, "updated_at")?,
    })
}

fn secret(row: &SqliteRow) -> StoreResult<SecretRecord> {
    Ok(SecretRecord {
        install_id: id(row, "install_id")?,
        name: text(row, "name")?,
        key_version: u32::try_from(int(row, "key_version")?).map_err(|_| corrupt("key_version"))?,
        ciphertext: blob(row, "ciphertext")?,
        created_at: time(row, "created_at")?,
        updated_at: time(row, "updated_at")?,
    })
}

fn binding(row: &SqliteRow) -> StoreResult<BindingRecord> {
    Ok(BindingRecord {
        agent_id: id(row, "agent_id")?,
        install_id: id(row, "install_id")?,
        created_at: time(row, "created_at")?,
    })
}

fn usage(row: &SqliteRow) -> StoreResult<UsageEvent> {
    Ok(UsageEvent {
        id: id(row, "id")?,
        at: time(row, "at")?,
        install_id: id(row, "install_id")?,
        plugin: text(row, "plugin")?,
        action: text(row, "action")?,
        actor_kind: PrincipalKind::parse(&text(row, "actor_kind")?)
            .ok_or_else(|| corrupt("actor_kind"))?,
        actor_id: uuid(row, "actor_id")?,
        outcome: tenantry_core::Outcome::parse(&text(row, "outcome")?)
            .ok_or_else(|| corrupt("outcome"))?,
        duration_us: uint(row, "duration_us")?,
        fuel: uint(row, "fuel")?,
        peak_memory_bytes: uint(row, "peak_memory_bytes")?,
        host_calls: uint(row, "host_calls")?,
        bytes_in: uint(row, "bytes_in")?,
        bytes_out: uint(row, "bytes_out")?,
        caller_id: opt_text(row, "caller_id")?
            .map(|c| c.parse())
            .transpose()
            .map_err(|_| corrupt("caller_id"))?,
    })
}

fn audit(row: &SqliteRow) -> StoreResult<AuditEntry> {
    Ok(AuditEntry {
        seq: uint(row, "seq")?,
        at: time(row, "at")?,
        actor_kind: PrincipalKind::parse(&text(row, "actor_kind")?)
            .ok_or_else(|| corrupt("actor_kind"))?,
        actor_id: uuid(row, "actor_id")?,
        action: text(row, "action")?,
        target: text(row, "target")?,
        outcome: text(row, "outcome")?,
        request_id: opt_text(row, "request_id")?
            .map(|r| r.parse())
            .transpose()
            .map_err(|_| corrupt("request_id"))?,
        details: json(row, "details")?,
    })
}

macro_rules! fetch_all {
    ($self:ident, $q:expr, $map:expr) => {
        $q.fetch_all(&mut *$self.tx)
            .await
            .map_err(db_err)?
            .iter()
            .map($map)
            .collect()
    };
}

macro_rules! fetch_opt {
    ($self:ident, $q:expr, $map:expr) => {
        $q.fetch_optional(&mut *$self.tx)
            .await
            .map_err(db_err)?
            .as_ref()
            .map($map)
            .transpose()
    };
}

impl SqliteTenantTx {
    async fn exec(
        &mut self,
        q: sqlx::query::Query<'_, Sqlite, sqlx::sqlite::SqliteArguments>,
    ) -> StoreResult<u64> {
        Ok(q.execute(&mut *self.tx)
            .await
            .map_err(db_err)?
            .rows_affected())
    }
}

#[async_trait]
impl TenantTx for SqliteTenantTx {
    async fn commit(self: Box<Self>) -> StoreResult<()> {
        self.tx.commit().await.map_err(db_err)
    }

    async fn current_org_key(&mut self) -> StoreResult<Option<OrgKeyRecord>> {
        let q =
            sqlx::query("SELECT * FROM org_keys WHERE org_id = ? ORDER BY version DESC LIMIT 1")
                .bind(&self.org);
        fetch_opt!(self, q, org_key)
    }

    async fn get_org_key(&mut self, version: u32) -> StoreResult<Option<OrgKeyRecord>> {
        let q = sqlx::query("SELECT * FROM org_keys WHERE org_id = ? AND version = ?")
            .bind(&self.org)
            .bind(i64::from(version));
        fetch_opt!(self, q, org_key)
    }

    async fn insert_org_key(&mut self, k: &OrgKeyRecord) -> StoreResult<()> {
        let q = sqlx::query(
            "INSERT INTO org_keys (org_id, version, wrapped, created_at) VALUES (?, ?, ?, ?)",
        )
        .bind(self.org.clone())
        .bind(i64::from(k.version))
        .bind(k.wrapped.clone())
        .bind(k.created_at);
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
        .bind(u.created_at);
        self.exec(q).await.map(|_| ())
    }

    async fn get_user(&mut self, uid: UserId) -> StoreResult<Option<UserRecord>> {
        let q = sqlx::query("SELECT * FROM users WHERE org_id = ? AND id = ?")
            .bind(&self.org)
            .bind(uid.to_string());
        fetch_opt!(self, q, user)
    }

    async fn list_users(&mut self) -> StoreResult<Vec<UserRecord>> {
        let q = sqlx::query("SELECT * FROM users WHERE org_id = ? ORDER BY id").bind(&self.org);
        fetch_all!(self, q, user)
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
        .bind(a.created_at);
        self.exec(q).await.map(|_| ())
    }

    async fn get_agent(&mut self, aid: AgentId) -> StoreResult<Option<AgentRecord>> {
        let q = sqlx::query("SELECT * FROM agents WHERE org_id = ? AND id = ?")
            .bind(&self.org)
            .bind(aid.to_string());
        fetch_opt!(self, q, agent)
    }

    async fn list_agents(&mut self) -> StoreResult<Vec<AgentRecord>> {
        let q = sqlx::query("SELECT * FROM agents WHERE org_id = ? ORDER BY id").bind(&self.org);
        fetch_all!(self, q, agent)
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
        .bind(k.created_at)
        .bind(k.expires_at)
        .bind(k.revoked_at)
        .bind(k.last_used_at);
        self.exec(q).await.map(|_| ())
    }

    async fn get_api_key(&mut self, kid: ApiKeyId) -> StoreResult<Option<ApiKeyRecord>> {
        let q = sqlx::query("SELECT * FROM api_keys WHERE org_id = ? AND id = ?")
            .bind(&self.org)
            .bind(kid.to_string());
        fetch_opt!(self, q, api_key)
    }

    async fn list_api_keys(&mut self) -> StoreResult<Vec<ApiKeyRecord>> {
        let q = sqlx::query("SELECT * FROM api_keys WHERE org_id = ? ORDER BY id").bind(&self.org);
        fetch_all!(self, q, api_key)
    }

    async fn revoke_api_key(&mut self, kid: ApiKeyId, at: OffsetDateTime) -> StoreResult<bool> {
        let q = sqlx::query(
            "UPDATE api_keys SET revoked_at = ? WHERE org_id = ? AND id = ? AND revoked_at IS NULL",
        )
        .bind(at)
        .bind(self.org.clone())
        .bind(kid.to_string());
        Ok(self.exec(q).await? == 1)
    }

    async fn touch_api_key(&mut self, kid: ApiKeyId, at: OffsetDateTime) -> StoreResult<()> {
        let q = sqlx::query("UPDATE api_keys SET last_used_at = ? WHERE org_id = ? AND id = ?")
            .bind(at)
            .bind(self.org.clone())
            .bind(kid.to_string());
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
        .bind(i.created_at)
        .bind(i.updated_at);
        self.exec(q).await.map(|_| ())
    }

    async fn get_install(&mut self, iid: InstallId) -> StoreResult<Option<InstallRecord>> {
        let q = sqlx::query("SELECT * FROM installs WHERE org_id = ? AND id = ?")
            .bind(&self.org)
            .bind(iid.to_string());
        fetch_opt!(self, q, install)
    }

    async fn get_install_by_plugin(&mut self, plugin: &str) -> StoreResult<Option<InstallRecord>> {
        let q = sqlx::query("SELECT * FROM installs WHERE org_id = ? AND plugin = ?")
            .bind(&self.org)
            .bind(plugin);
        fetch_opt!(self, q, install)
    }

    async fn list_installs(&mut self) -> StoreResult<Vec<InstallRecord>> {
        let q = sqlx::query("SELECT * FROM installs WHERE org_id = ? ORDER BY id").bind(&self.org);
        fetch_all!(self, q, install)
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
        .bind(i.updated_at)
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
        .bind(s.created_at)
        .bind(s.updated_at);
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
        fetch_opt!(self, q, secret)
    }

    async fn list_secrets(&mut self, iid: InstallId) -> StoreResult<Vec<SecretMeta>> {
        let q = sqlx::query(
            "SELECT name, key_version, created_at, updated_at FROM secrets \
             WHERE org_id = ? AND install_id = ? ORDER BY name",
        )
        .bind(&self.org)
        .bind(iid.to_string());
        fetch_all!(self, q, |row: &SqliteRow| {
            Ok(SecretMeta {
                name: text(row, "name")?,
                key_version: u32::try_from(int(row, "key_version")?)
                    .map_err(|_| corrupt("key_version"))?,
                created_at: time(row, "created_at")?,
                updated_at: time(row, "updated_at")?,
            })
        })
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
        .bind(b.created_at);
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
        fetch_all!(self, q, binding)
    }

    async fn is_bound(&mut self, aid: AgentId, iid: InstallId) -> StoreResult<bool> {
        let q = sqlx::query(
            "SELECT 1 AS one FROM bindings WHERE org_id = ? AND agent_id = ? AND install_id = ?",
        )
        .bind(&self.org)
        .bind(aid.to_string())
        .bind(iid.to_string());
        Ok(q.fetch_optional(&mut *self.tx)
            .await
            .map_err(db_err)?
            .is_some())
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
        fetch_opt!(self, q, |r: &SqliteRow| blob(r, "value"))
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
        .bind(OffsetDateTime::now_utc());
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
        fetch_all!(self, q, |r: &SqliteRow| text(r, "key"))
    }

    async fn kv_usage_bytes(&mut self) -> StoreResult<u64> {
        let q = sqlx::query(
            "SELECT COALESCE(SUM(LENGTH(CAST(key AS BLOB)) + LENGTH(value)), 0) AS n FROM kv WHERE org_id = ?",
        )
        .bind(&self.org);
        let row = q.fetch_one(&mut *self.tx).await.map_err(db_err)?;
        uint(&row, "n")
    }

    async fn kv_delete_all(&mut self, iid: InstallId) -> StoreResult<u64> {
        let q = sqlx::query("DELETE FROM kv WHERE org_id = ? AND install_id = ?")
            .bind(self.org.clone())
            .bind(iid.to_string());
        self.exec(q).await
    }

    async fn insert_usage(&mut self, events: &[UsageEvent]) -> StoreResult<()> {
        for e in events {
            let q = sqlx::query(
                "INSERT INTO usage_events (org_id, id, at, install_id, plugin, action, actor_kind, actor_id, \
                 outcome, duration_us, fuel, peak_memory_bytes, host_calls, bytes_in, bytes_out, caller_id) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(self.org.clone())
            .bind(e.id.to_string())
            .bind(e.at)
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
            .bind(e.caller_id.map(|c| c.to_string()));
            self.exec(q).await?;
        }
        Ok(())
    }

    async fn list_usage(&mut self, f: &UsageFilter) -> StoreResult<Vec<UsageEvent>> {
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
        .bind(f.since)
        .bind(f.since)
        .bind(f.until)
        .bind(f.until)
        .bind(f.install_id.map(|i| i.to_string()))
        .bind(f.install_id.map(|i| i.to_string()))
        .bind(after.clone())
        .bind(&self.org)
        .bind(after)
        .bind(i64::from(f.limit.unwrap_or(10_000)));
        fetch_all!(self, q, usage)
    }

    async fn count_usage(
        &mut self,
        kind: RunKind,
        since: OffsetDateTime,
        until: OffsetDateTime,
    ) -> StoreResult<u64> {
        let q = sqlx::query(
            "SELECT COUNT(*) AS n FROM usage_events WHERE org_id = ? AND at >= ? AND at < ? \
             AND outcome NOT IN ('INVALID_INPUT', 'NOT_FOUND') AND (caller_id IS NOT NULL) = ?",
        )
        .bind(&self.org)
        .bind(since)
        .bind(until)
        .bind(kind == RunKind::ToolCall);
        let row = q.fetch_one(&mut *self.tx).await.map_err(db_err)?;
        uint(&row, "n")
    }

    async fn append_audit(&mut self, e: &AuditEntry) -> StoreResult<()> {
        let q = sqlx::query(
            "INSERT INTO audit (org_id, seq, at, actor_kind, actor_id, action, target, outcome, request_id, details) \
             VALUES (?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM audit WHERE org_id = ?), ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(self.org.clone())
        .bind(self.org.clone())
        .bind(e.at)
        .bind(e.actor_kind.as_str())
        .bind(e.actor_id.to_string())
        .bind(e.action.clone())
        .bind(e.target.clone())
        .bind(e.outcome.clone())
        .bind(e.request_id.map(|r| r.to_string()))
        .bind(to_json(&e.details)?);
        self.exec(q).await.map(|_| ())
    }

    async fn list_audit(&mut self, f: &AuditFilter) -> StoreResult<Vec<AuditEntry>> {
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
        .bind(f.since)
        .bind(f.since)
        .bind(i64::from(f.limit.unwrap_or(100).min(1000)));
        fetch_all!(self, q, audit)
    }
}

fn org_key(row: &SqliteRow) -> StoreResult<OrgKeyRecord> {
    Ok(OrgKeyRecord {
        version: u32::try_from(int(row, "version")?).map_err(|_| corrupt("version"))?,
        wrapped: blob(row, "wrapped")?,
        created_at: time(row, "created_at")?,
    })
}
