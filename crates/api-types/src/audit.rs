//! The org's audit trail.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{PrincipalKind, RequestId};

/// One audit-trail entry. `seq`, `prev_hash` and `row_hash` leave room for the
/// per-org hash chain (BRIEF §9); they are filled by the store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
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
    #[schema(value_type = Object)]
    pub details: Value,
}
