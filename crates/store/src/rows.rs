//! The one mapping from a stored row to each record, shared by every backend.
//!
//! A backend implements [`Columns`] for its row type: how it reads a nullable text,
//! integer, time, uuid or JSON column (SQLite keeps times as fixed-width UTC text and
//! JSON as text; PostgreSQL as `timestamptz` and `jsonb`). Everything above that —
//! which column becomes which field, ranges, enum parsing — is written once here, as
//! [`FromColumns`] for each record whose columns mean the same in every schema. A
//! column named differently in one schema is aliased in that backend's `SELECT`.

use serde::de::DeserializeOwned;
use std::str::FromStr;
use time::OffsetDateTime;
use uuid::Uuid;

use tenantry_core::scope::{BreakGlass, CredentialRecord, Principal};
use tenantry_core::{AgentId, ApiKeyId, OrgId, Outcome, PrincipalKind, Role, UserId};

use crate::*;

/// The error of a column that is missing, NULL where it may not be, of the wrong
/// type or out of range.
pub fn corrupt(col: &str) -> StoreError {
    StoreError::Backend(format!("corrupt column {col}"))
}

/// Typed access to one row's columns by name. Required methods read nullable
/// columns as the backend stores them; the provided ones refuse NULL and check ranges
/// (every failure is [`corrupt`]).
pub trait Columns {
    fn opt_text(&self, col: &str) -> StoreResult<Option<String>>;
    fn opt_i64(&self, col: &str) -> StoreResult<Option<i64>>;
    fn opt_f64(&self, col: &str) -> StoreResult<Option<f64>>;
    fn bool(&self, col: &str) -> StoreResult<bool>;
    fn opt_bytes(&self, col: &str) -> StoreResult<Option<Vec<u8>>>;
    fn opt_time(&self, col: &str) -> StoreResult<Option<OffsetDateTime>>;
    /// A uuid column in its canonical hyphenated text form.
    fn opt_uuid_text(&self, col: &str) -> StoreResult<Option<String>>;
    /// A JSON column (NOT NULL) decoded into `T`.
    fn json<T: DeserializeOwned>(&self, col: &str) -> StoreResult<T>;

    fn bytes(&self, col: &str) -> StoreResult<Vec<u8>> {
        self.opt_bytes(col)?.ok_or_else(|| corrupt(col))
    }

    fn text(&self, col: &str) -> StoreResult<String> {
        self.opt_text(col)?.ok_or_else(|| corrupt(col))
    }

    fn i64(&self, col: &str) -> StoreResult<i64> {
        self.opt_i64(col)?.ok_or_else(|| corrupt(col))
    }

    fn u64(&self, col: &str) -> StoreResult<u64> {
        u64::try_from(self.i64(col)?).map_err(|_| corrupt(col))
    }

    fn u32(&self, col: &str) -> StoreResult<u32> {
        u32::try_from(self.i64(col)?).map_err(|_| corrupt(col))
    }

    fn opt_u32(&self, col: &str) -> StoreResult<Option<u32>> {
        self.opt_i64(col)?
            .map(|v| u32::try_from(v).map_err(|_| corrupt(col)))
            .transpose()
    }

    fn time(&self, col: &str) -> StoreResult<OffsetDateTime> {
        self.opt_time(col)?.ok_or_else(|| corrupt(col))
    }

    fn uuid(&self, col: &str) -> StoreResult<Uuid> {
        let text = self.opt_uuid_text(col)?.ok_or_else(|| corrupt(col))?;
        Uuid::try_parse(&text).map_err(|_| corrupt(col))
    }

    /// A typed id (`OrgId`, `UserId`, …) from a uuid column.
    fn id<T: FromStr>(&self, col: &str) -> StoreResult<T> {
        self.opt_id(col)?.ok_or_else(|| corrupt(col))
    }

    fn opt_id<T: FromStr>(&self, col: &str) -> StoreResult<Option<T>> {
        self.opt_uuid_text(col)?
            .map(|t| T::from_str(&t).map_err(|_| corrupt(col)))
            .transpose()
    }

    /// A text column holding one of an enum's names.
    fn parsed<T>(&self, col: &str, parse: impl FnOnce(&str) -> Option<T>) -> StoreResult<T> {
        parse(&self.text(col)?).ok_or_else(|| corrupt(col))
    }

    fn hash32(&self, col: &str) -> StoreResult<[u8; 32]> {
        self.bytes(col)?.try_into().map_err(|_| corrupt(col))
    }
}

/// A record read from a row of its table (the columns of `SELECT *`).
pub trait FromColumns: Sized {
    fn from_row(row: &impl Columns) -> StoreResult<Self>;
}

impl FromColumns for OrgRecord {
    fn from_row(row: &impl Columns) -> StoreResult<Self> {
        Ok(Self {
            id: row.id("id")?,
            name: row.text("name")?,
            tier: row.text("tier")?,
            overrides: row.json("overrides")?,
            created_at: row.time("created_at")?,
            suspended_at: row.opt_time("suspended_at")?,
        })
    }
}

impl FromColumns for OperatorKeyRecord {
    fn from_row(row: &impl Columns) -> StoreResult<Self> {
        Ok(Self {
            id: row.id("id")?,
            name: row.text("name")?,
            hash: row.hash32("hash")?,
            created_at: row.time("created_at")?,
            expires_at: row.opt_time("expires_at")?,
            revoked_at: row.opt_time("revoked_at")?,
        })
    }
}

/// A `key_index` row (`key_id`, and `org_id`, NULL for an operator key) as the key
/// and its org.
pub fn key_index_row(row: &impl Columns) -> StoreResult<(ApiKeyId, Option<OrgId>)> {
    Ok((row.id("key_id")?, row.opt_id("org_id")?))
}

impl FromColumns for PublisherRecord {
    fn from_row(row: &impl Columns) -> StoreResult<Self> {
        Ok(Self {
            id: row.id("id")?,
            name: row.text("name")?,
            created_at: row.time("created_at")?,
        })
    }
}

impl FromColumns for PublisherKeyRecord {
    fn from_row(row: &impl Columns) -> StoreResult<Self> {
        Ok(Self {
            key_id: row.text("key_id")?,
            publisher_id: row.id("publisher_id")?,
            public_key: row.text("public_key")?,
            not_before: row.time("not_before")?,
            not_after: row.opt_time("not_after")?,
            revoked_at: row.opt_time("revoked_at")?,
            created_at: row.time("created_at")?,
        })
    }
}

impl FromColumns for VersionRecord {
    fn from_row(row: &impl Columns) -> StoreResult<Self> {
        Ok(Self {
            plugin: row.text("plugin")?,
            version: row.text("version")?,
            publisher: row.text("publisher")?,
            manifest_json: row.text("manifest_json")?,
            manifest_sha256: row.text("manifest_sha256")?,
            artifact_sha256: row.text("artifact_sha256")?,
            artifact_size: row.u64("artifact_size")?,
            key_id: row.text("key_id")?,
            signature: row.text("signature")?,
            signed_at: row.time("signed_at")?,
            published_at: row.time("published_at")?,
        })
    }
}

/// What a published version writes in its plugin's `plugins` row besides names and
/// times, taken from its manifest: the description and docs (empty when absent) and
/// the capabilities (`[]` when absent).
pub struct PluginListing {
    pub description: String,
    pub docs: String,
    pub capabilities: serde_json::Value,
}

impl PluginListing {
    pub fn of(v: &VersionRecord) -> StoreResult<Self> {
        let manifest: serde_json::Value = serde_json::from_str(&v.manifest_json)
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        let field = |k: &str| manifest.get(k).cloned().unwrap_or(serde_json::Value::Null);
        let description = field("description")
            .as_str()
            .unwrap_or_default()
            .to_string();
        let docs = field("docs").as_str().unwrap_or_default().to_string();
        let capabilities = match field("capabilities") {
            serde_json::Value::Null => serde_json::json!([]),
            c => c,
        };
        Ok(Self {
            description,
            docs,
            capabilities,
        })
    }
}

/// The terms [`ControlStore::search_plugins`] looks for: the first 8
/// whitespace-separated words of the query, lowercased.
pub fn search_terms(query: &str) -> Vec<String> {
    query
        .split_whitespace()
        .take(8)
        .map(str::to_lowercase)
        .collect()
}

/// From the plugin summary query: a `plugins` row plus `rating_average` and
/// `rating_count` over its reviews.
impl FromColumns for PluginSummary {
    fn from_row(row: &impl Columns) -> StoreResult<Self> {
        let count = row.u64("rating_count")?;
        let avg = row.opt_f64("rating_average")?;
        Ok(Self {
            name: row.text("name")?,
            publisher: row.text("publisher")?,
            description: row.text("description")?,
            latest_version: row.text("latest_version")?,
            capabilities: row.json("capabilities")?,
            rating_average: if count == 0 { None } else { avg },
            rating_count: count,
            created_at: row.time("created_at")?,
        })
    }
}

impl FromColumns for ReviewRecord {
    fn from_row(row: &impl Columns) -> StoreResult<Self> {
        Ok(Self {
            plugin: row.text("plugin")?,
            org_id: row.id("org_id")?,
            rating: u8::try_from(row.i64("rating")?).map_err(|_| corrupt("rating"))?,
            body: row.text("body")?,
            created_at: row.time("created_at")?,
            updated_at: row.time("updated_at")?,
        })
    }
}

impl FromColumns for OrgKeyRecord {
    fn from_row(row: &impl Columns) -> StoreResult<Self> {
        Ok(Self {
            version: row.u32("version")?,
            wrapped: row.bytes("wrapped")?,
            created_at: row.time("created_at")?,
        })
    }
}

impl FromColumns for UserRecord {
    fn from_row(row: &impl Columns) -> StoreResult<Self> {
        Ok(Self {
            id: row.id("id")?,
            name: row.text("name")?,
            role: row.parsed("role", Role::parse)?,
            created_at: row.time("created_at")?,
        })
    }
}

impl FromColumns for AgentRecord {
    fn from_row(row: &impl Columns) -> StoreResult<Self> {
        Ok(Self {
            id: row.id("id")?,
            name: row.text("name")?,
            on_behalf_of: row.id("on_behalf_of")?,
            grants: row.json("grants")?,
            created_at: row.time("created_at")?,
        })
    }
}

impl FromColumns for ApiKeyRecord {
    fn from_row(row: &impl Columns) -> StoreResult<Self> {
        Ok(Self {
            id: row.id("id")?,
            name: row.text("name")?,
            principal_kind: row.parsed("principal_kind", PrincipalKind::parse)?,
            principal_id: row.uuid("principal_id")?,
            prefix: row.text("prefix")?,
            hash: row.hash32("hash")?,
            created_at: row.time("created_at")?,
            expires_at: row.opt_time("expires_at")?,
            revoked_at: row.opt_time("revoked_at")?,
            last_used_at: row.opt_time("last_used_at")?,
            breakglass: match (
                row.opt_text("breakglass_ticket")?,
                row.opt_text("breakglass_reason")?,
                row.opt_text("breakglass_access")?,
            ) {
                (None, None, None) => None,
                (Some(ticket), Some(reason), Some(access)) => Some(BreakGlass {
                    ticket,
                    reason,
                    write: match access.as_str() {
                        "write" => true,
                        "read" => false,
                        _ => return Err(corrupt("breakglass_access")),
                    },
                    pending: row.bool("breakglass_pending")?,
                    approved_by: row.opt_id("breakglass_approved_by")?,
                    approved_at: row.opt_time("breakglass_approved_at")?,
                }),
                _ => return Err(corrupt("breakglass_ticket")),
            },
        })
    }
}

/// The credential of `key` (read from `row` as an [`ApiKeyRecord`]) from the
/// credential query: the `api_keys` row joined with its agent's `agent_on_behalf_of`
/// and `agent_grants` and its user's `user_role`. `None` when the key's user (or its
/// agent's user) is gone, or for an operator key that is not a break-glass token:
/// such a key authenticates no one.
pub fn credential(
    row: &impl Columns,
    org_id: OrgId,
    key: &ApiKeyRecord,
) -> StoreResult<Option<CredentialRecord>> {
    let role = || -> StoreResult<Option<Role>> {
        row.opt_text("user_role")?
            .map(|r| Role::parse(&r).ok_or_else(|| corrupt("role")))
            .transpose()
    };
    let principal = match key.principal_kind {
        PrincipalKind::User => {
            let Some(role) = role()? else { return Ok(None) };
            Principal::User {
                org_id,
                id: UserId::from_uuid(key.principal_id),
                role,
            }
        }
        PrincipalKind::Agent => {
            let Some(user_role) = role()? else {
                return Ok(None);
            };
            Principal::Agent {
                org_id,
                id: AgentId::from_uuid(key.principal_id),
                on_behalf_of: row.id("agent_on_behalf_of")?,
                user_role,
                grants: row.json("agent_grants")?,
            }
        }
        PrincipalKind::Operator => match &key.breakglass {
            Some(grant) => Principal::BreakGlass {
                org_id,
                operator_id: key.principal_id,
                grant: grant.clone(),
            },
            None => return Ok(None),
        },
    };
    Ok(Some(CredentialRecord {
        key_id: key.id,
        expires_at: key.expires_at,
        revoked_at: key.revoked_at,
        principal,
    }))
}

impl FromColumns for InstallRecord {
    fn from_row(row: &impl Columns) -> StoreResult<Self> {
        Ok(Self {
            id: row.id("id")?,
            plugin: row.text("plugin")?,
            version: row.text("version")?,
            previous_version: row.opt_text("previous_version")?,
            artifact_sha256: row.text("artifact_sha256")?,
            config: row.json("config")?,
            grants: row.json("grants")?,
            enabled: row.bool("enabled")?,
            rate_limit_per_minute: row.opt_u32("rate_limit_per_minute")?,
            created_at: row.time("created_at")?,
            updated_at: row.time("updated_at")?,
        })
    }
}

impl FromColumns for SecretRecord {
    fn from_row(row: &impl Columns) -> StoreResult<Self> {
        Ok(Self {
            install_id: row.id("install_id")?,
            name: row.text("name")?,
            key_version: row.u32("key_version")?,
            ciphertext: row.bytes("ciphertext")?,
            created_at: row.time("created_at")?,
            updated_at: row.time("updated_at")?,
        })
    }
}

impl FromColumns for SecretMeta {
    fn from_row(row: &impl Columns) -> StoreResult<Self> {
        Ok(Self {
            name: row.text("name")?,
            key_version: row.u32("key_version")?,
            created_at: row.time("created_at")?,
            updated_at: row.time("updated_at")?,
        })
    }
}

impl FromColumns for BindingRecord {
    fn from_row(row: &impl Columns) -> StoreResult<Self> {
        Ok(Self {
            agent_id: row.id("agent_id")?,
            install_id: row.id("install_id")?,
            created_at: row.time("created_at")?,
        })
    }
}

impl FromColumns for UsageEvent {
    fn from_row(row: &impl Columns) -> StoreResult<Self> {
        Ok(Self {
            id: row.id("id")?,
            at: row.time("at")?,
            install_id: row.id("install_id")?,
            plugin: row.text("plugin")?,
            action: row.text("action")?,
            actor_kind: row.parsed("actor_kind", PrincipalKind::parse)?,
            actor_id: row.uuid("actor_id")?,
            outcome: row.parsed("outcome", Outcome::parse)?,
            duration_us: row.u64("duration_us")?,
            fuel: row.u64("fuel")?,
            peak_memory_bytes: row.u64("peak_memory_bytes")?,
            host_calls: row.u64("host_calls")?,
            bytes_in: row.u64("bytes_in")?,
            bytes_out: row.u64("bytes_out")?,
            caller_id: row.opt_id("caller_id")?,
        })
    }
}

impl FromColumns for crate::chain::ChainHead {
    fn from_row(row: &impl Columns) -> StoreResult<Self> {
        let row_hash = match row.opt_bytes("row_hash")? {
            Some(h) => Some(h.try_into().map_err(|_| corrupt("row_hash"))?),
            None => None,
        };
        Ok(Self {
            seq: row.u64("seq")?,
            row_hash,
        })
    }
}

impl FromColumns for crate::chain::ChainedEntry {
    fn from_row(row: &impl Columns) -> StoreResult<Self> {
        Ok(Self {
            entry: AuditEntry::from_row(row)?,
            prev_hash: row.opt_bytes("prev_hash")?,
            row_hash: row.opt_bytes("row_hash")?,
        })
    }
}

impl FromColumns for AuditEntry {
    fn from_row(row: &impl Columns) -> StoreResult<Self> {
        Ok(Self {
            seq: row.u64("seq")?,
            at: row.time("at")?,
            actor_kind: row.parsed("actor_kind", PrincipalKind::parse)?,
            actor_id: row.uuid("actor_id")?,
            action: row.text("action")?,
            target: row.text("target")?,
            outcome: row.text("outcome")?,
            request_id: row.opt_id("request_id")?,
            details: row.json("details")?,
        })
    }
}
