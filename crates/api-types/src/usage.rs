//! Usage: metering events, summaries, exports.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{InstallId, InvocationId, Outcome, PrincipalKind};

/// One invocation's metering record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
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

/// How summary rows are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    /// One row for the whole range (key `all`).
    #[default]
    None,
    /// By UTC day of the event (key `YYYY-MM-DD`).
    Day,
    /// By plugin name (key `@publisher/name`).
    Plugin,
    /// By install id.
    Install,
    /// By invoking principal (key = its id; `actor_kind` says agent or user).
    Agent,
}

/// One group's usage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UsageRow {
    /// The group: `all`, a `YYYY-MM-DD` day, a plugin name, an install id or a
    /// principal id.
    pub key: String,
    /// With `group_by=agent`: the kind of principal (`agent`, `user`, `operator`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor_kind: Option<PrincipalKind>,
    /// Invocations.
    pub count: u64,
    /// Invocations whose outcome is not `OK`.
    pub errors: u64,
    /// Nearest-rank percentiles of the wall time, in milliseconds.
    pub p50_duration_ms: f64,
    pub p95_duration_ms: f64,
    pub p99_duration_ms: f64,
    /// Sums over the group.
    pub fuel: u64,
    pub host_calls: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// The largest peak linear memory of one invocation.
    pub max_peak_memory_bytes: u64,
}

/// A summary of a time range.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UsageSummary {
    pub group_by: GroupBy,
    #[serde(with = "time::serde::rfc3339::option")]
    pub since: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub until: Option<OffsetDateTime>,
    /// Rows ordered by key (days chronologically).
    pub rows: Vec<UsageRow>,
}

/// Export encodings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExportFormat {
    /// One JSON object per line, the same shape as `GET /v1/usage` items.
    #[default]
    Jsonl,
    /// RFC 4180 CSV with a header row of the columns in `docs/api.md`.
    Csv,
}

impl ExportFormat {
    /// The `Content-Type` of an export in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            ExportFormat::Jsonl => "application/x-ndjson",
            ExportFormat::Csv => "text/csv; charset=utf-8",
        }
    }
    /// The file extension an export in this format is offered under.
    pub fn extension(self) -> &'static str {
        match self {
            ExportFormat::Jsonl => "jsonl",
            ExportFormat::Csv => "csv",
        }
    }
}
