//! Plain records the stores read and write. No behaviour beyond small helpers.

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use time::OffsetDateTime;
use uuid::Uuid;

use tenantry_core::manifest::Grants;
use tenantry_core::{
    AgentId, ApiKeyId, InstallId, InvocationId, OrgId, Outcome, Permission, PrincipalKind,
    PublisherId, RequestId, Role, UserId,
};

#[derive(Debug, Clone, PartialEq)]
pub struct OrgRecord {
    pub id: OrgId,
    pub name: String,
    pub tier: String,
    /// Operator-set changes to the tier's limits for this org.
    pub overrides: tenantry_core::TierOverrides,
    pub created_at: OffsetDateTime,
    /// Set while the operator has the org suspended (every key of it refused).
    pub suspended_at: Option<OffsetDateTime>,
}

/// An operator credential (the platform itself, never a tenant).
#[derive(Debug, Clone)]
pub struct OperatorKeyRecord {
    pub id: ApiKeyId,
    pub name: String,
    pub hash: [u8; 32],
    pub created_at: OffsetDateTime,
    pub expires_at: Option<OffsetDateTime>,
    pub revoked_at: Option<OffsetDateTime>,
}

/// Global index from a key's hash to where its record lives.
#[derive(Debug, Clone)]
pub struct KeyIndexEntry {
    pub hash: [u8; 32],
    pub key_id: ApiKeyId,
    /// `None` for operator keys.
    pub org_id: Option<OrgId>,
}

/// Result of looking a key hash up in the control store.
#[derive(Debug, Clone)]
pub enum KeyLookup {
    Operator(OperatorKeyRecord),
    Tenant {
        org_id: OrgId,
        key_id: ApiKeyId,
        /// How far storage was seen when the key was looked up.
        seen: crate::Seen,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct PublisherRecord {
    pub id: PublisherId,
    pub name: String,
    pub created_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PublisherKeyRecord {
    pub key_id: String,
    pub publisher_id: PublisherId,
    /// Text form `ed25519:<base64>`.
    pub public_key: String,
    pub not_before: OffsetDateTime,
    pub not_after: Option<OffsetDateTime>,
    pub revoked_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
}

impl PublisherKeyRecord {
    /// Whether a signature made at `at` by this key is acceptable.
    pub fn valid_at(&self, at: OffsetDateTime) -> bool {
        self.revoked_at.is_none()
            && at >= self.not_before
            && self.not_after.is_none_or(|end| at < end)
    }
}

/// One immutable published version.
#[derive(Debug, Clone, PartialEq)]
pub struct VersionRecord {
    pub plugin: String,
    pub version: String,
    pub publisher: String,
    /// The manifest exactly as signed (its sha256 is `manifest_sha256`).
    pub manifest_json: String,
    pub manifest_sha256: String,
    pub artifact_sha256: String,
    pub artifact_size: u64,
    pub key_id: String,
    pub signature: String,
    /// The `created` time inside the signed statement.
    pub signed_at: OffsetDateTime,
    pub published_at: OffsetDateTime,
}

/// A plugin as listed and searched.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginSummary {
    pub name: String,
    pub publisher: String,
    pub description: String,
    pub latest_version: String,
    pub capabilities: Vec<String>,
    pub rating_average: Option<f64>,
    pub rating_count: u64,
    pub created_at: OffsetDateTime,
}

/// An org's review of a plugin. The org is never shown to other orgs.
#[derive(Debug, Clone, PartialEq)]
pub struct ReviewRecord {
    pub plugin: String,
    pub org_id: OrgId,
    pub rating: u8,
    pub body: String,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OrgKeyRecord {
    pub version: u32,
    pub wrapped: Vec<u8>,
    pub created_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq)]
pub struct UserRecord {
    pub id: UserId,
    pub name: String,
    pub role: Role,
    pub created_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AgentRecord {
    pub id: AgentId,
    pub name: String,
    pub on_behalf_of: UserId,
    pub grants: BTreeSet<Permission>,
    pub created_at: OffsetDateTime,
}

/// An API key of a user or agent, or a break-glass token of the operator (never the
/// key itself).
#[derive(Debug, Clone, PartialEq)]
pub struct ApiKeyRecord {
    pub id: ApiKeyId,
    pub name: String,
    pub principal_kind: PrincipalKind,
    pub principal_id: Uuid,
    /// First characters of the key, for recognising it in listings.
    pub prefix: String,
    pub hash: [u8; 32],
    pub created_at: OffsetDateTime,
    pub expires_at: Option<OffsetDateTime>,
    pub revoked_at: Option<OffsetDateTime>,
    pub last_used_at: Option<OffsetDateTime>,
    /// Set for (and only for) an operator's break-glass token: its ticket, reason and
    /// access. `revoked_at` is when it was closed.
    pub breakglass: Option<tenantry_core::scope::BreakGlass>,
}

/// An org's instance of a plugin version.
#[derive(Debug, Clone, PartialEq)]
pub struct InstallRecord {
    pub id: InstallId,
    pub plugin: String,
    pub version: String,
    /// The version before the last upgrade, for rollback.
    pub previous_version: Option<String>,
    pub artifact_sha256: String,
    pub config: serde_json::Value,
    pub grants: Grants,
    pub enabled: bool,
    /// Optional per-install rate limit (requests per minute), at most the tier's.
    pub rate_limit_per_minute: Option<u32>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// A sealed secret: ciphertext only (see `tenantry-crypto`).
#[derive(Clone, PartialEq)]
pub struct SecretRecord {
    pub install_id: InstallId,
    pub name: String,
    pub key_version: u32,
    pub ciphertext: Vec<u8>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

impl std::fmt::Debug for SecretRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretRecord")
            .field("install_id", &self.install_id)
            .field("name", &self.name)
            .field("key_version", &self.key_version)
            .finish_non_exhaustive()
    }
}

/// What may be shown about a secret: its name and times.
#[derive(Debug, Clone, PartialEq)]
pub struct SecretMeta {
    pub name: String,
    pub key_version: u32,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BindingRecord {
    pub agent_id: AgentId,
    pub install_id: InstallId,
    pub created_at: OffsetDateTime,
}

/// One invocation's metering record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsageEvent {
    pub id: InvocationId,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub install_id: InstallId,
    pub plugin: String,
    pub action: String,
    pub actor_kind: PrincipalKind,
    pub actor_id: Uuid,
    pub outcome: Outcome,
    pub duration_us: u64,
    pub fuel: u64,
    pub peak_memory_bytes: u64,
    pub host_calls: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// The invocation whose tool call started this run; `None` for an invocation
    /// requested through the API.
    pub caller_id: Option<InvocationId>,
}

/// Which runs [`crate::UsageTx::count_usage`] counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunKind {
    /// Invocations requested through the API (what the execution quotas count).
    Requested,
    /// Runs started by a plugin's tool call (what the tool-call quota counts).
    ToolCall,
}

/// Which usage events to read: `since <= at < until`, in `(at, id)` order.
#[derive(Debug, Clone, Default)]
pub struct UsageFilter {
    pub since: Option<OffsetDateTime>,
    pub until: Option<OffsetDateTime>,
    pub install_id: Option<InstallId>,
    /// Cursor: only events strictly after this one in `(at, id)` order. An id that
    /// is not one of the org's events matches nothing (a foreign cursor reads
    /// nothing).
    pub after: Option<InvocationId>,
    pub limit: Option<u32>,
}

/// One audit-trail entry. `seq`, `prev_hash` and `row_hash` leave room for the
/// per-org hash chain (BRIEF §9); they are filled by the store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub seq: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub actor_kind: PrincipalKind,
    pub actor_id: Uuid,
    /// Dotted verb, e.g. `install.create`, `secret.set`, `invoke`.
    pub action: String,
    /// What it acted on (an id or name; never a secret value).
    pub target: String,
    /// `OK` or an error/outcome code.
    pub outcome: String,
    pub request_id: Option<RequestId>,
    /// Non-secret details.
    pub details: serde_json::Value,
}

#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub action: Option<String>,
    pub target: Option<String>,
    pub actor_id: Option<Uuid>,
    pub since: Option<OffsetDateTime>,
    pub limit: Option<u32>,
}
