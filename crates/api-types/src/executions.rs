//! Code execution: scripts that call the org's tools (`/v1/executions`).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use crate::{InvocationId, PrincipalKind};

/// A script to run. The caller's org is its key's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecuteRequest {
    pub language: ScriptLanguage,
    /// The body of an async function of `(callTool, input, console)`: `return` its
    /// value; `await callTool("@scope/plugin.action", args)` calls a tool. At most
    /// the tier's `artifact_bytes`.
    #[schema(
        example = "const r = await callTool('@examples/echo.echo', {message: input.text});\nreturn r.echo;"
    )]
    pub code: String,
    /// Passed to the script as `input` (any JSON; `null` when left out).
    #[serde(default)]
    pub input: Value,
}

/// The language of a script.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ScriptLanguage {
    Javascript,
}

/// Why an execution produced no value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ExecutionError {
    /// `SYNTAX_ERROR`, `SCRIPT_ERROR` (an uncaught exception), `MAX_TOOL_CALLS`,
    /// `TOOL_ERROR`, a tool call's outcome the script let through
    /// (`PERMISSION_DENIED`, `INVALID_INPUT`, `NOT_FOUND`, …), or the sandbox's
    /// (`TIMEOUT`, `OUT_OF_FUEL`, `MEMORY_LIMIT`, `OUTPUT_TOO_LARGE`, `ENGINE_TRAP`).
    pub code: String,
    pub message: String,
    /// The script's line (1-based), for syntax errors and thrown exceptions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<u32>,
}

/// One `console.*` line of a script.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ExecutionLog {
    /// `debug`, `info`, `warn` or `error`.
    pub level: String,
    pub message: String,
}

/// Measurements of one execution.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ExecutionStats {
    /// Wall time of the sandbox, microseconds.
    pub duration_us: u64,
    /// Tool calls made (each has its own usage event, `caller_id` = this execution).
    pub tool_call_count: u64,
    /// CPU used by the script itself, in fuel units.
    pub fuel: u64,
    pub peak_memory_bytes: u64,
}

/// What an execution produced: `value` when `success`, else `error`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ExecutionResult {
    pub execution_id: InvocationId,
    pub success: bool,
    /// The script's returned value (JSON; `null` for `undefined`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub value: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ExecutionError>,
    /// `console.*` lines, at most 100 and 16 KiB of text.
    pub logs: Vec<ExecutionLog>,
    /// Lines written beyond those limits (not kept).
    #[serde(default)]
    pub logs_dropped: u64,
    pub stats: ExecutionStats,
}

/// A finished execution's record (kept in the audit trail; the code itself is not
/// stored, only its SHA-256).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ExecutionRecord {
    pub execution_id: InvocationId,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub actor_kind: PrincipalKind,
    pub actor_id: uuid::Uuid,
    pub success: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    /// SHA-256 of the code, hex.
    pub code_sha256: String,
    pub code_bytes: u64,
    pub duration_us: u64,
    pub tool_call_count: u64,
}
