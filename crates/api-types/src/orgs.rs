//! Orgs: operator provisioning, an org's own view, tiers and limits.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::{KeyOwner, OrgId, Permission, Role};

// An org (`GET /v1/orgs`, `POST /v1/orgs`, …). Undocumented for the schema: its
// description has always been empty.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = OrgRecord)]
pub struct Org {
    pub id: OrgId,
    pub name: String,
    pub tier: String,
    /// Operator-set changes to the tier's limits for this org.
    #[serde(default, skip_serializing_if = "TierOverrides::is_empty")]
    pub overrides: TierOverrides,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Set while the operator has the org suspended: every key of the org is refused
    /// with `ORG_SUSPENDED` until it is resumed.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub suspended_at: Option<OffsetDateTime>,
}

/// A deleted org (`DELETE /v1/orgs/{org_id}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeletedOrg {
    pub id: OrgId,
    pub name: String,
    #[serde(with = "time::serde::rfc3339")]
    pub deleted_at: OffsetDateTime,
    /// The org's key-encryption key was destroyed in the key vault: its secrets
    /// decrypt from no copy of its data, backups made before the deletion included.
    /// `false`: the org had no vault key (created before the vault, or the server
    /// runs without one), so such a copy still opens with the master key.
    pub keys_shredded: bool,
}

/// Why the operator suspends an org (`POST /v1/orgs/{org_id}/suspend`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SuspendOrg {
    /// Kept in the org's audit trail (1-500 characters), e.g. a ticket reference.
    pub reason: String,
}

/// An org as its own members see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OrgView {
    #[serde(flatten)]
    pub org: Org,
    /// The caller's effective permissions.
    pub permissions: Vec<Permission>,
    /// The version of the org's key (secrets are sealed under it; owners rotate it).
    pub key_version: u32,
}

/// What one master-key rotation call did (`POST /v1/operator/master-key/rotate`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MasterKeyRotation {
    /// Orgs looked at (all of them).
    pub orgs_checked: u64,
    /// Key-vault files sealed again under the new master key.
    pub vault_files_resealed: u64,
    /// Orgs whose key was wrapped by the old master key alone, given a new one.
    pub org_keys_rotated: u64,
    /// Orgs that still need the old master key: run the rotation again until 0,
    /// then remove `previous_master_key_file`.
    pub remaining: u64,
}

/// What rotating the org's key did (`POST /v1/org/key/rotate`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct KeyRotation {
    /// The org key's version now.
    pub key_version: u32,
    /// Secrets sealed again under it.
    pub secrets_resealed: u64,
    /// The org's keys are wrapped under its key-encryption key in the key vault
    /// (deleting the org shreds them); `false`: the server has no key vault.
    pub in_vault: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOrg {
    #[schema(pattern = r"^[a-z0-9][a-z0-9_-]*$", min_length = 1, max_length = 64)]
    pub name: String,
    pub tier: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetTier {
    pub tier: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProvisionUser {
    #[schema(
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$",
        min_length = 1,
        max_length = 128
    )]
    pub name: String,
    pub role: Role,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProvisionKey {
    pub owner: KeyOwner,
    #[schema(
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$",
        min_length = 1,
        max_length = 128
    )]
    pub name: String,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
}

/// The limits of one tier. Byte sizes are bytes, times are milliseconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Tier {
    pub name: String,
    pub executions_per_day: u64,
    pub executions_per_month: u64,
    pub max_wall_time_ms: u64,
    pub concurrent_executions: u32,
    pub host_calls_per_execution: u64,
    pub tool_calls_per_day: u64,
    pub memory_bytes: u64,
    /// The seeds' "code size" of a submitted script. Plugin artifacts are bounded by the
    /// registry-wide ceiling (`max_artifact_bytes`) instead (BRIEF §7), so this is
    /// shown but not enforced on installs.
    pub artifact_bytes: u64,
    pub output_bytes: u64,
    pub plugins_installed: u32,
    pub storage_bytes: u64,
    pub agents: u32,
    /// Invocations an org may start per minute (GCRA, burst = the whole minute).
    /// Installs may have a lower limit of their own.
    #[serde(default = "default_rate")]
    pub invocations_per_minute: u64,
}

fn default_rate() -> u64 {
    60
}

/// Per-org changes to a tier's limits (operator-set). Absent fields keep the tier's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TierOverrides {
    pub executions_per_day: Option<u64>,
    pub executions_per_month: Option<u64>,
    #[schema(minimum = 1, maximum = 900000)]
    pub max_wall_time_ms: Option<u64>,
    pub concurrent_executions: Option<u32>,
    pub host_calls_per_execution: Option<u64>,
    pub tool_calls_per_day: Option<u64>,
    /// 1 MiB up to the sandbox's largest memory on this server (the OpenAPI
    /// document states the server's bound).
    #[schema(minimum = 1048576, maximum = 4294967296u64)]
    pub memory_bytes: Option<u64>,
    pub artifact_bytes: Option<u64>,
    #[schema(minimum = 1)]
    pub output_bytes: Option<u64>,
    pub plugins_installed: Option<u32>,
    pub storage_bytes: Option<u64>,
    pub agents: Option<u32>,
    #[schema(minimum = 1, maximum = 60000000)]
    pub invocations_per_minute: Option<u64>,
}

impl TierOverrides {
    /// No field set (then an org's `overrides` is left out).
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// One billing quota's state in the current window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct QuotaState {
    pub quota: String,
    pub used: u64,
    pub limit: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub resets_at: OffsetDateTime,
}

/// An org's effective limits and where it stands against its quotas.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LimitsView {
    /// The tier with the org's overrides applied.
    pub effective: Tier,
    pub overrides: TierOverrides,
    pub quotas: Vec<QuotaState>,
    /// Why `quotas` is empty: the quota store is unreachable.
    pub quotas_error: Option<String>,
    pub limiter: LimiterStatus,
    /// The platform's pilot guardrails, which apply to every org.
    pub pilot: PilotPolicy,
}

/// The operator's pilot guardrails (`[pilot]` in the server's configuration); each
/// part is off when null. Refusals are `POLICY_DENIED`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PilotPolicy {
    /// At most this many orgs on the platform.
    pub max_orgs: Option<u64>,
    /// Plugins orgs may install: `@scope/name`, or `@scope/*`.
    pub plugins: Option<Vec<String>>,
    /// Hosts plugins may reach, whatever an install was granted; every egress grant
    /// must fall within one of them.
    pub egress: Option<Vec<String>>,
}

/// The limiter backend's state, for `/v1/limits` and monitoring.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LimiterStatus {
    /// `local` (this node decides alone) or `redis` (shared by every node).
    pub backend: String,
    /// Redis is unreachable: rate limits and concurrency are decided by this node
    /// alone, and billing quotas refuse metered work until it returns.
    pub degraded: bool,
    /// Rate-limit and concurrency decisions this node made locally because Redis failed.
    pub fallback_decisions: u64,
}
