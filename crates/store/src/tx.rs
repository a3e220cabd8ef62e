//! One tenant transaction, as one small trait per resource.
//!
//! [`TenantTx`] is what [`crate::TenantStore::begin`] hands out (`Box<dyn TenantTx>`):
//! [`TenantTx::commit`] plus every resource trait below as a supertrait. Their methods
//! are called on a `dyn TenantTx` without importing anything (a trait object reaches
//! its supertraits' methods). A backend implements each resource trait for its
//! transaction type in a file of its own, so a new resource is one trait here, one
//! `impl` per backend and one line in [`TenantTx`]'s supertraits.

use async_trait::async_trait;
use tenantry_core::{AgentId, ApiKeyId, InstallId, UserId};

use crate::chain::ChainedEntry;
use crate::*;

/// One transaction on one org's data. Dropping it without [`TenantTx::commit`] rolls
/// back. Every method is implicitly confined to the scope's org. A transaction begun
/// for reading refuses writes; one in which a write failed cannot commit (the commit
/// is an error and nothing is kept). Timestamps are kept to the microsecond and read
/// back in UTC. `tenantry-store-tests` checks every backend against this contract.
#[async_trait]
pub trait TenantTx:
    OrgKeyTx
    + UserTx
    + AgentTx
    + ApiKeyTx
    + InstallTx
    + SecretTx
    + BindingTx
    + KvTx
    + UsageTx
    + AuditTx
    + Send
{
    /// The org this transaction is confined to (the scope's).
    fn org_id(&self) -> tenantry_core::OrgId;
    async fn commit(self: Box<Self>) -> StoreResult<()>;
}

/// Org keys (wrapped by the master key).
#[async_trait]
pub trait OrgKeyTx: Send {
    async fn current_org_key(&mut self) -> StoreResult<Option<OrgKeyRecord>>;
    async fn get_org_key(&mut self, version: u32) -> StoreResult<Option<OrgKeyRecord>>;
    async fn insert_org_key(&mut self, k: &OrgKeyRecord) -> StoreResult<()>;
    /// Deletes every version below `version` (retired by a rotation); returns how many.
    async fn delete_org_keys_before(&mut self, version: u32) -> StoreResult<u64>;
}

/// Users.
#[async_trait]
pub trait UserTx: Send {
    async fn insert_user(&mut self, u: &UserRecord) -> StoreResult<()>;
    async fn get_user(&mut self, id: UserId) -> StoreResult<Option<UserRecord>>;
    async fn list_users(&mut self) -> StoreResult<Vec<UserRecord>>;
    async fn set_user_role(&mut self, id: UserId, role: tenantry_core::Role) -> StoreResult<bool>;
}

/// Agents.
#[async_trait]
pub trait AgentTx: Send {
    async fn insert_agent(&mut self, a: &AgentRecord) -> StoreResult<()>;
    async fn get_agent(&mut self, id: AgentId) -> StoreResult<Option<AgentRecord>>;
    async fn list_agents(&mut self) -> StoreResult<Vec<AgentRecord>>;
    async fn delete_agent(&mut self, id: AgentId) -> StoreResult<bool>;
}

/// API keys.
#[async_trait]
pub trait ApiKeyTx: Send {
    async fn insert_api_key(&mut self, k: &ApiKeyRecord) -> StoreResult<()>;
    async fn get_api_key(&mut self, id: ApiKeyId) -> StoreResult<Option<ApiKeyRecord>>;
    async fn list_api_keys(&mut self) -> StoreResult<Vec<ApiKeyRecord>>;
    async fn revoke_api_key(&mut self, id: ApiKeyId, at: time::OffsetDateTime)
    -> StoreResult<bool>;
    async fn touch_api_key(&mut self, id: ApiKeyId, at: time::OffsetDateTime) -> StoreResult<()>;
    /// Approves a pending break-glass grant (`by`: the approving operator key);
    /// `false`: no such grant, or it is not pending.
    async fn approve_breakglass(
        &mut self,
        id: ApiKeyId,
        by: uuid::Uuid,
        at: time::OffsetDateTime,
    ) -> StoreResult<bool>;
}

/// Installs.
#[async_trait]
pub trait InstallTx: Send {
    async fn insert_install(&mut self, i: &InstallRecord) -> StoreResult<()>;
    async fn get_install(&mut self, id: InstallId) -> StoreResult<Option<InstallRecord>>;
    async fn get_install_by_plugin(&mut self, plugin: &str) -> StoreResult<Option<InstallRecord>>;
    async fn list_installs(&mut self) -> StoreResult<Vec<InstallRecord>>;
    async fn update_install(&mut self, i: &InstallRecord) -> StoreResult<bool>;
    async fn delete_install(&mut self, id: InstallId) -> StoreResult<bool>;
}

/// Secrets (ciphertext only).
#[async_trait]
pub trait SecretTx: Send {
    async fn upsert_secret(&mut self, s: &SecretRecord) -> StoreResult<()>;
    async fn get_secret(
        &mut self,
        install: InstallId,
        name: &str,
    ) -> StoreResult<Option<SecretRecord>>;
    async fn list_secrets(&mut self, install: InstallId) -> StoreResult<Vec<SecretMeta>>;
    async fn delete_secret(&mut self, install: InstallId, name: &str) -> StoreResult<bool>;
    async fn delete_secrets_of(&mut self, install: InstallId) -> StoreResult<u64>;
}

/// Bindings of agents to installs.
#[async_trait]
pub trait BindingTx: Send {
    async fn insert_binding(&mut self, b: &BindingRecord) -> StoreResult<()>;
    async fn delete_binding(&mut self, agent: AgentId, install: InstallId) -> StoreResult<bool>;
    async fn list_bindings(&mut self) -> StoreResult<Vec<BindingRecord>>;
    async fn is_bound(&mut self, agent: AgentId, install: InstallId) -> StoreResult<bool>;
    async fn delete_bindings_of_install(&mut self, install: InstallId) -> StoreResult<u64>;
}

/// Key-value data of installs.
#[async_trait]
pub trait KvTx: Send {
    async fn kv_get(&mut self, install: InstallId, key: &str) -> StoreResult<Option<Vec<u8>>>;
    async fn kv_set(&mut self, install: InstallId, key: &str, value: &[u8]) -> StoreResult<()>;
    async fn kv_delete(&mut self, install: InstallId, key: &str) -> StoreResult<bool>;
    async fn kv_list(
        &mut self,
        install: InstallId,
        prefix: &str,
        limit: u32,
    ) -> StoreResult<Vec<String>>;
    /// Bytes of kv data (keys + values) held by the whole org.
    async fn kv_usage_bytes(&mut self) -> StoreResult<u64>;
    async fn kv_delete_all(&mut self, install: InstallId) -> StoreResult<u64>;
}

/// Usage events.
#[async_trait]
pub trait UsageTx: Send {
    async fn insert_usage(&mut self, events: &[UsageEvent]) -> StoreResult<()>;
    async fn list_usage(&mut self, filter: &UsageFilter) -> StoreResult<Vec<UsageEvent>>;
    /// Runs of one kind recorded with `since <= at < until`: usage events except
    /// those refused before the sandbox started (`INVALID_INPUT`, `NOT_FOUND`). Seeds
    /// the quota counters after a restart.
    async fn count_usage(
        &mut self,
        kind: RunKind,
        since: time::OffsetDateTime,
        until: time::OffsetDateTime,
    ) -> StoreResult<u64>;
}

/// The audit trail.
#[async_trait]
pub trait AuditTx: Send {
    async fn append_audit(&mut self, e: &AuditEntry) -> StoreResult<()>;
    async fn list_audit(&mut self, filter: &AuditFilter) -> StoreResult<Vec<AuditEntry>>;
    /// Up to `limit` entries with `seq > after`, oldest first, with their hashes:
    /// what [`crate::chain::Verifier`] checks.
    async fn audit_chain(&mut self, after: u64, limit: u32) -> StoreResult<Vec<ChainedEntry>>;
}
