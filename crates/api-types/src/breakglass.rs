//! Break-glass: the operator's ticketed, time-bound access to one org.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{ApiKeyId, SecretText};

/// `POST /v1/orgs/{org_id}/breakglass`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenBreakGlass {
    /// The ticket this access is for (1-100 characters); every request made with the
    /// token is audited in the org with it.
    pub ticket: String,
    /// Why (1-500 characters).
    pub reason: String,
    /// Seconds until the token stops working (default 3600; at most the server's
    /// `breakglass_max_ttl_minutes`, 240 minutes by default).
    #[serde(default = "default_ttl")]
    pub ttl_seconds: u32,
    /// Allow changes (what an owner may do). Default: read-only.
    #[serde(default)]
    pub write: bool,
}

fn default_ttl() -> u32 {
    3600
}

/// A break-glass grant (never its token).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BreakGlassGrant {
    pub id: ApiKeyId,
    pub ticket: String,
    pub reason: String,
    /// `read` or `write`.
    pub access: String,
    /// The operator (key) that opened it.
    pub opened_by: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    pub opened_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// When it was closed early, if it was.
    #[serde(with = "time::serde::rfc3339::option")]
    pub closed_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
    /// Neither closed nor expired (as of the answer).
    pub open: bool,
    /// Waiting for a second operator's approval: its token is refused until then.
    pub pending: bool,
    /// The operator (key) that approved it, where an approval was asked.
    pub approved_by: Option<Uuid>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub approved_at: Option<OffsetDateTime>,
}

/// A new grant: its token is shown once.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OpenedBreakGlass {
    #[serde(flatten)]
    pub grant: BreakGlassGrant,
    /// The token (an API key of the org for this grant only). Not stored; cannot be
    /// shown again.
    #[schema(value_type = String)]
    pub token: SecretText,
}
