//! Code execution: scripts that call the org's tools.

use axum::extract::State;
use axum::http::HeaderMap;
use tenantry_api_types::{ExecuteRequest, ExecutionRecord, ExecutionResult, InvocationId};
use tenantry_service::executions;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::{ApiResult, rate_limit_headers};
use crate::extract::{Invoking, Json, Path, Tenant};
use crate::wire::{ToDomain, ToWire};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(execute))
        .routes(routes!(get_execution))
}

/// Run a JavaScript script in a fresh sandbox under the org's limits. The script
/// calls tools with `await callTool("@scope/plugin.action", args)`: an agent may
/// call the installs it is bound to, a user every install. Script failures
/// (`success: false`, with the error's code and line) are answered 200; HTTP
/// errors mean the script did not start.
#[utoipa::path(post, path = "/v1/executions", tag = "executions", request_body = ExecuteRequest, responses((status = 200, body = ExecutionResult, headers(
    ("RateLimit" = String, description = "The org's rate limit this execution was counted against"),
    ("RateLimit-Policy" = String, description = "The same limit's quota"),
))))]
async fn execute(
    State(s): State<AppState>,
    Invoking(who, ctx): Invoking,
    Json(b): Json<ExecuteRequest>,
) -> ApiResult<(HeaderMap, axum::Json<ExecutionResult>)> {
    let done = executions::execute(&s.svc, &who, &ctx, &b.to_domain()).await?;
    let mut headers = HeaderMap::new();
    rate_limit_headers(&done.rate_limits, &mut headers);
    Ok((headers, axum::Json(done.to_wire())))
}

/// A finished execution of the caller's org: who ran it, whether it succeeded, the
/// SHA-256 of its code, its duration and tool calls (from the audit trail, written
/// moments after the execution answers).
#[utoipa::path(get, path = "/v1/executions/{execution_id}", tag = "executions", params(("execution_id" = InvocationId, Path)), responses((status = 200, body = ExecutionRecord)))]
async fn get_execution(
    State(s): State<AppState>,
    Tenant(t, _): Tenant,
    Path(id): Path<tenantry_core::InvocationId>,
) -> ApiResult<axum::Json<ExecutionRecord>> {
    Ok(axum::Json(executions::get(&s.svc, &t, id).await?.to_wire()))
}
