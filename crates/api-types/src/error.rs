//! The one error body every failed request answers with.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ErrorCode;

/// Every error response: `{"error": {"code", "message", "request_id", "details"?}}`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// The error inside [`ErrorBody`].
// Fields in alphabetical order: the order they have always been sent in.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable, machine-matchable code.
    pub code: ErrorCode,
    /// Machine-readable facts (which limit, when it resets), for some codes.
    #[schema(value_type = Option<Object>)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<Value>,
    /// What went wrong and what to do.
    pub message: String,
    /// The request's id (also in `x-request-id`), for the server log.
    pub request_id: String,
}
