//! `tenantry-store`: the storage seam.
//!
//! Two traits, one per kind of data:
//! - [`ControlStore`]: global data no tenant owns (the plugin registry, the org
//!   directory, operator keys) and the index from an API key's hash to its org;
//! - [`TenantStore`]: everything an org owns (users, agents, API keys, installs,
//!   secrets, bindings, key-value data, usage, audit). Every transaction is opened
//!   from a [`TenantScope`], and the backend derives the org it touches from that scope
//!   alone: the file it opens (embedded) or the row-level-security context it sets
//!   (pooled). Methods never take an org id argument. A transaction is a
//!   [`TenantTx`]: one small trait per resource (`tx`: [`UserTx`], [`InstallTx`],
//!   [`KvTx`], …) combined, so a backend implements each resource on its own.
//!
//! This crate holds records and traits only, and the audit trail's hash chain
//! ([`chain`], SHA-256, which both backends compute the same way); it must not
//! depend on a database driver, HTTP or encryption. Backends: `tenantry-store-sqlite` (embedded, one file per org) and
//! `tenantry-store-postgres` (pooled, row-level security).

pub mod chain;
mod records;
pub mod rows;
mod seen;
mod tx;

pub use records::*;
pub use rows::{Columns, FromColumns, corrupt};
pub use seen::{Generations, Seen};
pub use tx::*;

use async_trait::async_trait;
use tenantry_core::{ApiKeyId, Error, ErrorCode, OrgId, PublisherId, TenantScope};

/// What can go wrong in a store, as the domain needs to tell it apart.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique key is already taken.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The org's store does not exist (deleted or never created).
    #[error("tenant store not found")]
    TenantNotFound,
    /// The backend failed. The text is for logs, never for users.
    #[error("storage backend: {0}")]
    Backend(String),
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(what) => Error::new(ErrorCode::Conflict, what),
            StoreError::TenantNotFound => Error::not_found("org"),
            StoreError::Backend(detail) => {
                tracing::error!(%detail, "storage backend error");
                Error::internal()
            }
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Global data: registry, orgs, operator keys, the API key index.
#[async_trait]
pub trait ControlStore: Send + Sync + 'static {
    // ---- orgs ----
    async fn insert_org(&self, org: &OrgRecord) -> StoreResult<()>;
    /// An org's record; `seen` lets a backend answer from a kept copy (see [`Seen`]).
    async fn get_org(&self, id: OrgId, seen: Seen) -> StoreResult<Option<OrgRecord>>;
    async fn list_orgs(&self) -> StoreResult<Vec<OrgRecord>>;
    async fn set_org_tier(&self, id: OrgId, tier: &str) -> StoreResult<bool>;
    /// Suspends the org as of `at`, or resumes it (`None`); `false`: no such org.
    async fn set_org_suspended(
        &self,
        id: OrgId,
        at: Option<time::OffsetDateTime>,
    ) -> StoreResult<bool>;
    async fn set_org_overrides(
        &self,
        id: OrgId,
        overrides: &tenantry_core::TierOverrides,
    ) -> StoreResult<bool>;
    /// Deletes an org from the directory in one transaction: its row goes, a
    /// tombstone (id, name, `at`) stays so the id is never reused, and its keys leave
    /// the key index. `false`: no such org. The org's own store is erased first
    /// ([`TenantStore::drop_tenant`]).
    async fn delete_org(&self, id: OrgId, at: time::OffsetDateTime) -> StoreResult<bool>;

    // ---- operator and key index ----
    async fn insert_operator_key(&self, key: &OperatorKeyRecord) -> StoreResult<()>;
    async fn count_operator_keys(&self) -> StoreResult<u64>;
    /// Every operator key, revoked and expired ones too, in id order.
    async fn list_operator_keys(&self) -> StoreResult<Vec<OperatorKeyRecord>>;
    /// Revokes an operator key as of `at`; `false`: no such key, or already revoked.
    async fn revoke_operator_key(
        &self,
        id: ApiKeyId,
        at: time::OffsetDateTime,
    ) -> StoreResult<bool>;
    /// Records which org (or the operator) a key hash belongs to.
    async fn insert_key_index(&self, entry: &KeyIndexEntry) -> StoreResult<()>;
    async fn delete_key_index(&self, key_id: ApiKeyId) -> StoreResult<()>;
    /// The key behind a hash; for an org's key also how far storage has been seen
    /// ([`Seen`]), read in the same statement.
    async fn lookup_key(&self, hash: &[u8; 32]) -> StoreResult<Option<KeyLookup>>;

    // ---- registry ----
    async fn insert_publisher(&self, p: &PublisherRecord) -> StoreResult<()>;
    async fn get_publisher_by_name(&self, name: &str) -> StoreResult<Option<PublisherRecord>>;
    async fn list_publishers(&self) -> StoreResult<Vec<PublisherRecord>>;
    async fn insert_publisher_key(&self, k: &PublisherKeyRecord) -> StoreResult<()>;
    /// A publisher key; `seen` lets a backend answer from a kept copy (see [`Seen`]).
    async fn get_publisher_key(
        &self,
        key_id: &str,
        seen: Seen,
    ) -> StoreResult<Option<PublisherKeyRecord>>;
    async fn list_publisher_keys(
        &self,
        publisher: PublisherId,
    ) -> StoreResult<Vec<PublisherKeyRecord>>;
    async fn revoke_publisher_key(
        &self,
        key_id: &str,
        at: time::OffsetDateTime,
    ) -> StoreResult<bool>;
    /// Inserts a version, creating the plugin row if it is the first one. Fails with
    /// `Conflict` if the version exists.
    async fn insert_version(&self, v: &VersionRecord) -> StoreResult<()>;
    async fn list_versions(&self, plugin: &str) -> StoreResult<Vec<VersionRecord>>;
    async fn get_version(&self, plugin: &str, version: &str) -> StoreResult<Option<VersionRecord>>;
    async fn get_plugin(&self, name: &str) -> StoreResult<Option<PluginSummary>>;
    /// Text search over name, description, capabilities and docs; empty query lists all.
    async fn search_plugins(&self, query: &str, limit: u32) -> StoreResult<Vec<PluginSummary>>;
    /// One review per (plugin, org); writing again replaces it.
    async fn upsert_review(&self, r: &ReviewRecord) -> StoreResult<()>;
    async fn list_reviews(&self, plugin: &str) -> StoreResult<Vec<ReviewRecord>>;
}

/// Content-addressed artifact bytes, named by their lowercase hex SHA-256. The store
/// only keeps bytes; callers validate digests and re-hash what they read.
#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// Stores bytes under `digest` (idempotent; a stored digest is never rewritten).
    async fn put_blob(&self, digest: &str, bytes: &[u8]) -> StoreResult<()>;
    async fn get_blob(&self, digest: &str) -> StoreResult<Option<Vec<u8>>>;
}

/// Opens transactions on one org's data.
#[async_trait]
pub trait TenantStore: Send + Sync + 'static {
    /// Creates the org's store (file, keys table). Idempotent.
    async fn create_tenant(&self, org: OrgId) -> StoreResult<()>;
    /// Erases the org's store: its file (embedded) or every row it owns (pooled),
    /// audit trail included. Only for an org its operator suspended (the pooled store
    /// refuses another); idempotent. Afterwards the org reads as empty, or its reads
    /// fail with [`StoreError::TenantNotFound`] (embedded: no file).
    async fn drop_tenant(&self, org: OrgId) -> StoreResult<()>;
    /// Tenant stores open now, where the backend opens one per org (embedded: its
    /// files); `None` for a backend with one shared pool.
    fn open_tenant_stores(&self) -> Option<usize> {
        None
    }
    /// The one read that happens before a scope exists: the credential behind a key
    /// that the control store's index placed in `org` (the org comes from that index,
    /// never from a request). `None` unless the stored hash equals `hash` and the
    /// key's principal still exists. Also returns the key's last-used time. `seen`
    /// (from the lookup) lets a backend answer from kept rows.
    async fn credential(
        &self,
        org: OrgId,
        key_id: ApiKeyId,
        hash: &[u8; 32],
        seen: Seen,
    ) -> StoreResult<
        Option<(
            tenantry_core::scope::CredentialRecord,
            Option<time::OffsetDateTime>,
        )>,
    >;
    /// Begins a transaction on the scope's org. `write` transactions take the write
    /// lock up front so validate-then-write cannot interleave with another writer.
    async fn begin(&self, scope: &TenantScope, write: bool) -> StoreResult<Box<dyn TenantTx>>;
    /// Begins a read transaction that may answer `get_install` and `is_bound` from
    /// rows kept in memory at or after `seen` (the request's key lookup).
    async fn begin_seen(&self, scope: &TenantScope, seen: Seen) -> StoreResult<Box<dyn TenantTx>> {
        let _ = seen;
        self.begin(scope, false).await
    }
    /// Records that the scope's key was used at `at` (its `last_used_at`, unless that
    /// is later). Changes nothing else, so a backend that keeps rows in memory need not
    /// forget them for this write.
    async fn touch_key(
        &self,
        scope: &TenantScope,
        key_id: ApiKeyId,
        at: time::OffsetDateTime,
    ) -> StoreResult<()> {
        let mut tx = self.begin(scope, true).await?;
        tx.touch_api_key(key_id, at).await?;
        tx.commit().await
    }
    /// Appends invocation records (usage events, audit entries) in one write
    /// transaction. Only appends, so a backend that keeps rows in memory need not
    /// forget them for this write.
    async fn append_records(
        &self,
        scope: &TenantScope,
        usage: &[UsageEvent],
        audit: &[AuditEntry],
    ) -> StoreResult<()> {
        let mut tx = self.begin(scope, true).await?;
        tx.insert_usage(usage).await?;
        for e in audit {
            tx.append_audit(e).await?;
        }
        tx.commit().await
    }
    /// Appends the invocation records of many orgs (a recorder's batch, one entry per
    /// org). Returns the orgs whose records were not written, with why; the others'
    /// are. By default org by org ([`append_each`]).
    async fn append_batch(&self, batch: Vec<OrgRecords>) -> Vec<(OrgId, StoreError)> {
        append_each(self, batch).await
    }
}

/// One org's invocation records, for [`TenantStore::append_batch`].
pub struct OrgRecords {
    pub scope: TenantScope,
    pub usage: Vec<UsageEvent>,
    pub audit: Vec<AuditEntry>,
}

/// Orgs whose records [`append_each`] writes at the same time.
const CONCURRENT_ORGS: usize = 16;

/// [`TenantStore::append_batch`] as one [`TenantStore::append_records`] per org,
/// [`CONCURRENT_ORGS`] at a time (each may be a round trip to its own file).
pub async fn append_each<S: TenantStore + ?Sized>(
    store: &S,
    batch: Vec<OrgRecords>,
) -> Vec<(OrgId, StoreError)> {
    use futures::StreamExt;
    futures::stream::iter(batch)
        .map(|r| async move {
            let org = r.scope.org_id();
            store
                .append_records(&r.scope, &r.usage, &r.audit)
                .await
                .err()
                .map(|e| (org, e))
        })
        .buffer_unordered(CONCURRENT_ORGS)
        .filter_map(|failed| async move { failed })
        .collect()
        .await
}
