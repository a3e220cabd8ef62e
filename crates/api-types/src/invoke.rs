//! Invoking plugin actions.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::{InvocationId, Outcome};

// Which action to run, with what input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InvokeRequest {
    #[schema(pattern = r"^[a-z0-9][a-z0-9_-]{0,63}$")]
    pub action: String,
    #[serde(default = "empty_object")]
    #[schema(value_type = Object)]
    pub input: Value,
}

fn empty_object() -> Value {
    json!({})
}

/// Measurements of one invocation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct InvocationStats {
    pub duration_us: u64,
    /// CPU used, in fuel units (the metered compute unit).
    pub fuel: u64,
    pub peak_memory_bytes: u64,
    pub host_calls: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

// Why a run did not produce output: its outcome and the plugin's or host's message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct InvokeError {
    pub code: Outcome,
    pub message: String,
}

/// What an invocation produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct InvokeResponse {
    pub invocation_id: InvocationId,
    pub outcome: Outcome,
    #[schema(value_type = Option<Object>)]
    pub output: Option<Value>,
    pub error: Option<InvokeError>,
    pub stats: InvocationStats,
}
