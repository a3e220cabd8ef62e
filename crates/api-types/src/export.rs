//! An org's export (`GET /v1/org/export`): JSON lines, one object per line, whose
//! `kind` says what it holds. The first line is `export`, the last `end` (with the
//! count of each kind before it): a download without `end` is incomplete.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::{
    Agent, ApiKey, AuditEntry, Binding, Install, InstallId, Org, SecretMeta, UsageEvent, User,
};

/// One line of an org export.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ExportLine {
    /// First: the format, the org, when.
    Export {
        /// `tenantry-org-export/1`.
        format: String,
        org: Org,
        #[serde(with = "time::serde::rfc3339")]
        exported_at: OffsetDateTime,
    },
    User(User),
    Agent(Agent),
    /// Metadata only: a key's secret part is never stored.
    ApiKey(ApiKey),
    Install(ExportedInstall),
    Binding(Binding),
    /// One key-value entry of an install.
    Kv {
        install_id: InstallId,
        key: String,
        /// The value, base64 (standard alphabet, padded).
        value_base64: String,
    },
    /// Usage events in `(at, id)` order.
    Usage(UsageEvent),
    /// Audit entries oldest first, with their chain hashes (hex).
    Audit(ExportedAudit),
    /// Last: how many lines of each kind came before it.
    End {
        counts: BTreeMap<String, u64>,
    },
}

/// An install in an export: its config and grants, and its secrets by name only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ExportedInstall {
    #[serde(flatten)]
    pub install: Install,
    /// The install's secrets: names and times, never values.
    pub secrets: Vec<SecretMeta>,
}

/// An audit entry in an export, with the hashes that chain it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ExportedAudit {
    #[serde(flatten)]
    pub entry: AuditEntry,
    pub prev_hash: Option<String>,
    pub row_hash: Option<String>,
}
