//! Code execution: an agent sends a short JavaScript script that calls its org's
//! tools (`POST /v1/executions`, the seeds' "code mode").
//!
//! The script runs in the JavaScript engine component (`engines/javascript`:
//! SpiderMonkey built with componentize-js, its heap snapshotted at build time), which the
//! runtime treats as a plugin with one action, `run`: a fresh instance per
//! execution under the org's tier limits (memory, fuel, wall time, output), an
//! empty WASI context (no files, no network, no environment), and one way out,
//! `callTool`, which is the `tools` host call. Which tools a script may call is
//! decided here, from the caller: an agent reaches the enabled installs it is
//! bound to, a user with `invoke` every enabled install of the org. Each tool call
//! runs the ordinary invoke path nested under the execution ([`crate::invoke::Run`]:
//! input checked against the action's schema, a usage event whose `caller_id` is
//! the execution, an audit entry) and counts against the tier's tool calls per
//! execution (`host_calls_per_execution`, the seeds' `maxToolCallsPerExecution`)
//! and per day.
//!
//! Tier limits used: `artifact_bytes` is the largest script (the seeds' code size,
//! refused before any instance is made), `host_calls_per_execution` the tool calls
//! one execution may make, `output_bytes` the result with its log lines,
//! `executions_per_day`/`_per_month` and the org's rate and concurrency as for any
//! invocation. Each execution leaves one audit entry (`execute`, target the
//! execution id) with the SHA-256 of the code, never the code.

use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use tenantry_core::manifest::Grants;
use tenantry_core::{
    Error, ErrorCode, InvocationId, Outcome, Permission, RateLimitState, Result, TenantScope,
};
use tenantry_runtime::{
    Backends, InstallRef, Invocation, LoadedPlugin, Nested, ToolBackend, ToolError,
};
use tenantry_store::AuditFilter;

use crate::capabilities::StoreHost;
use crate::invoke::{Invoker, limits_for};
use crate::recorder::Record;
use crate::{RequestCtx, Service, audit_entry};

/// The engine component (SpiderMonkey, ~12 MB), built by `scripts/build-js-plugin
/// --engine` from `engines/javascript/src/index.js`.
static ENGINE_WASM: &[u8] = include_bytes!("../../../engines/javascript/engine.wasm");

/// Log lines a script may write; more are counted, not kept.
pub const MAX_LOG_LINES: u32 = 100;
/// Bytes of log text a script may write (and at most a quarter of its output limit).
pub const MAX_LOG_BYTES: u64 = 16 * 1024;

/// Largest request body (the code, JSON-escaped, and the input).
pub const MAX_REQUEST_BYTES: usize = 4 << 20;

/// The language of a script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    JavaScript,
}

impl Language {
    pub fn as_str(self) -> &'static str {
        match self {
            Language::JavaScript => "javascript",
        }
    }
}

/// A script to run.
#[derive(Debug, Clone)]
pub struct ExecuteRequest {
    pub language: Language,
    pub code: String,
    /// Passed to the script as `input`.
    pub input: Value,
}

/// Why an execution did not produce a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptError {
    /// `SYNTAX_ERROR`, `SCRIPT_ERROR` (an uncaught exception), `MAX_TOOL_CALLS`, a
    /// tool call's own outcome (`PERMISSION_DENIED`, `INVALID_INPUT`, `NOT_FOUND`,
    /// …) when the script let it propagate, or the sandbox's (`TIMEOUT`,
    /// `OUT_OF_FUEL`, `MEMORY_LIMIT`, `OUTPUT_TOO_LARGE`, `ENGINE_TRAP`).
    pub code: String,
    pub message: String,
    /// Where in the script, for syntax errors and exceptions the script threw.
    pub line: Option<u32>,
    pub column: Option<u32>,
}

/// One `console.*` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub level: String,
    pub message: String,
}

/// Measurements of one execution (its tool calls have usage records of their own).
#[derive(Debug, Clone, Default)]
pub struct ExecutionStats {
    pub duration_us: u64,
    pub tool_calls: u64,
    pub fuel: u64,
    pub peak_memory_bytes: u64,
}

/// What an execution produced.
#[derive(Debug, Clone)]
pub struct Executed {
    pub execution_id: InvocationId,
    pub success: bool,
    pub value: Option<Value>,
    pub error: Option<ScriptError>,
    pub logs: Vec<LogLine>,
    /// Lines written beyond the log limits.
    pub logs_dropped: u64,
    pub stats: ExecutionStats,
    pub rate_limits: Vec<RateLimitState>,
}

/// A finished execution, from its audit entry.
#[derive(Debug, Clone)]
pub struct ExecutionRecord {
    pub execution_id: InvocationId,
    pub at: time::OffsetDateTime,
    pub actor_kind: tenantry_core::PrincipalKind,
    pub actor_id: uuid::Uuid,
    pub success: bool,
    pub error_code: Option<String>,
    pub code_sha256: String,
    pub code_bytes: u64,
    pub duration_us: u64,
    pub tool_calls: u64,
}

/// Runs a script as the invoker's principal.
pub async fn execute(
    svc: &Service,
    who: &Invoker,
    ctx: &RequestCtx,
    req: &ExecuteRequest,
) -> Result<Executed> {
    let scope = &who.scope;
    let input_bytes = req.input.to_string().len();
    if input_bytes > crate::invoke::MAX_INPUT_BYTES {
        return Err(Error::new(
            ErrorCode::TooLarge,
            format!(
                "input is {input_bytes} bytes of JSON; the limit is {}",
                crate::invoke::MAX_INPUT_BYTES
            ),
        ));
    }
    scope.require(Permission::Invoke)?;
    let tier = svc.tier_of(scope.org_id(), who.seen).await?;
    if req.code.len() as u64 > tier.artifact_bytes {
        return Err(Error::new(
            ErrorCode::TooLarge,
            format!(
                "the script is {} bytes; the org's tier allows {} (artifact_bytes)",
                req.code.len(),
                tier.artifact_bytes
            ),
        ));
    }
    let rate_limits = svc
        .check_org_rate(scope, &tier, who.key_hash.as_ref())
        .await?;
    let callable = callable_plugins(svc, scope).await?;
    let engine = engine(svc).await?;
    let mut admission = svc
        .admit(
            scope,
            tenantry_core::InstallId::nil(),
            None,
            &tier,
            rate_limits,
        )
        .await?;
    let rate_limits = std::mem::take(&mut admission.rate_limits);

    let id = InvocationId::new();
    let host = Arc::new(StoreHost {
        svc: svc.clone(),
        scope: scope.system_for_same_org(),
        ctx: *ctx,
        tier: tier.clone(),
        invocation: id,
    });
    let tools = Arc::new(ScriptTools {
        host: host.clone(),
        max: tier.host_calls_per_execution,
        made: AtomicU64::new(0),
        over: AtomicBool::new(false),
    });
    let mut limits = limits_for(&tier);
    // Each tool call's plugin has the tier's host calls of its own, on the
    // execution's shared meter.
    let per_call = tier.host_calls_per_execution;
    limits.max_host_calls = per_call.saturating_add(per_call.saturating_mul(per_call));
    let input = json!({
        "code": req.code,
        "input": req.input,
        "max_log_lines": MAX_LOG_LINES,
        "max_log_bytes": MAX_LOG_BYTES.min(tier.output_bytes / 4),
        "max_output_bytes": tier.output_bytes,
    })
    .to_string();
    limits.max_input_bytes = input.len();
    let r = svc
        .runtime
        .invoke(
            &engine,
            Invocation {
                install: InstallRef {
                    org_id: scope.org_id(),
                    install_id: tenantry_core::InstallId::nil(),
                },
                action: "run",
                input: &input,
                config: &Value::Object(Default::default()),
                grants: &Grants {
                    tools: callable,
                    ..Grants::default()
                },
                limits,
                backends: Backends {
                    // The engine is granted neither kv nor secrets: the runtime
                    // refuses those calls before they reach a backend.
                    kv: host.clone(),
                    secrets: host,
                    tools: tools.clone(),
                },
                nested: None,
            },
        )
        .await;
    svc.release(admission, true).await;

    let tool_calls = tools.made.load(Ordering::Relaxed).min(tools.max);
    let mut out = read_result(r.outcome, r.output.as_deref(), r.error);
    if tools.over.load(Ordering::Relaxed) || r.outcome == Outcome::MaxHostCalls {
        out.value = Err(ScriptError {
            code: "MAX_TOOL_CALLS".into(),
            message: format!(
                "the script made more than {} tool calls, its tier's limit per execution",
                tools.max
            ),
            line: None,
            column: None,
        });
    }
    let stats = ExecutionStats {
        duration_us: r.stats.duration_us,
        tool_calls,
        fuel: r.stats.fuel,
        peak_memory_bytes: r.stats.peak_memory_bytes,
    };
    let error_code = out.value.as_ref().err().map(|e| e.code.clone());
    let audit = audit_entry(
        scope,
        ctx,
        "execute",
        id.to_string(),
        json!({
            "language": req.language.as_str(),
            "code_sha256": tenantry_crypto::sha256_hex(req.code.as_bytes()),
            "code_bytes": req.code.len(),
            "success": error_code.is_none(),
            "error_code": error_code,
            "duration_us": stats.duration_us,
            "tool_calls": tool_calls,
            "denied": r.denied,
        }),
    );
    svc.recorder
        .record(Record {
            scope: scope.system_for_same_org(),
            usage: None,
            audit: tenantry_store::AuditEntry {
                outcome: error_code.clone().unwrap_or_else(|| "OK".into()),
                ..audit
            },
        })
        .await;
    let (value, error) = match out.value {
        Ok(v) => (Some(v), None),
        Err(e) => (None, Some(e)),
    };
    Ok(Executed {
        execution_id: id,
        success: error.is_none(),
        value,
        error,
        logs: out.logs,
        logs_dropped: out.logs_dropped,
        stats,
        rate_limits,
    })
}

/// A finished execution's record (from its audit entry, written moments after the
/// execution ends), for the caller's org only.
pub async fn get(svc: &Service, scope: &TenantScope, id: InvocationId) -> Result<ExecutionRecord> {
    scope.require(Permission::Invoke)?;
    let mut tx = svc.tenants.begin(scope, false).await?;
    let found = tx
        .list_audit(&AuditFilter {
            action: Some("execute".into()),
            target: Some(id.to_string()),
            limit: Some(1),
            ..AuditFilter::default()
        })
        .await?;
    let e = found
        .into_iter()
        .next()
        .ok_or_else(|| Error::not_found("execution"))?;
    let d = &e.details;
    let u = |k: &str| d.get(k).and_then(Value::as_u64).unwrap_or(0);
    Ok(ExecutionRecord {
        execution_id: id,
        at: e.at,
        actor_kind: e.actor_kind,
        actor_id: e.actor_id,
        success: d.get("success").and_then(Value::as_bool).unwrap_or(false),
        error_code: d
            .get("error_code")
            .and_then(Value::as_str)
            .map(str::to_string),
        code_sha256: d
            .get("code_sha256")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        code_bytes: u("code_bytes"),
        duration_us: u("duration_us"),
        tool_calls: u("tool_calls"),
    })
}

/// Loads the engine in the background (at server start), so the first script does
/// not wait for it to compile. A thread of its own, not the blocking pool: a
/// shutdown never waits for it.
pub fn warm_engine(svc: &Service) {
    let rt = svc.runtime.clone();
    let spawned = std::thread::Builder::new()
        .name("tenantry-engine-warm".into())
        .spawn(move || {
            let started = std::time::Instant::now();
            match load_engine(&rt) {
                Ok(_) => tracing::info!(elapsed = ?started.elapsed(), "script engine ready"),
                Err(e) => tracing::error!(error = %e, "the JavaScript engine does not load"),
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "the script engine will compile on first use");
    }
}

/// The engine, compiled once per process (the runtime caches it by digest, and
/// the compile cache across restarts).
async fn engine(svc: &Service) -> Result<Arc<LoadedPlugin>> {
    if let Some(p) = svc.runtime.cached(engine_digest()) {
        return Ok(p);
    }
    let rt = svc.runtime.clone();
    tokio::task::spawn_blocking(move || load_engine(&rt))
        .await
        .map_err(|_| Error::internal())?
        .map_err(|e| {
            tracing::error!(error = %e, "the JavaScript engine does not load");
            Error::new(
                ErrorCode::Unavailable,
                "the script engine cannot run on this server; the operator should check the server log",
            )
        })
}

fn load_engine(
    rt: &tenantry_runtime::Runtime,
) -> std::result::Result<Arc<LoadedPlugin>, tenantry_runtime::LoadError> {
    match rt.cached(engine_digest()) {
        Some(p) => Ok(p),
        None => rt.load(engine_digest(), ENGINE_WASM),
    }
}

/// The engine's key in the runtime's cache.
fn engine_digest() -> &'static str {
    static DIGEST: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DIGEST.get_or_init(|| format!("engine:{}", tenantry_crypto::sha256_hex(ENGINE_WASM)))
}

/// The plugins the caller's scripts may call: an agent's enabled, bound installs;
/// for a user, every enabled install of the org.
async fn callable_plugins(svc: &Service, scope: &TenantScope) -> Result<Vec<String>> {
    let mut tx = svc.tenants.begin(scope, false).await?;
    let installs = tx.list_installs().await?;
    let bound: Option<Vec<_>> = match scope.agent_id() {
        Some(agent) => Some(
            tx.list_bindings()
                .await?
                .into_iter()
                .filter(|b| b.agent_id == agent)
                .map(|b| b.install_id)
                .collect(),
        ),
        None => None,
    };
    Ok(installs
        .into_iter()
        .filter(|i| i.enabled && bound.as_ref().is_none_or(|b| b.contains(&i.id)))
        .filter(|i| svc.settings.pilot.check_plugin(&i.plugin).is_ok())
        .map(|i| i.plugin)
        .collect())
}

/// The tool calls of one execution: counted against the tier's limit, then run
/// like a plugin's tool calls ([`StoreHost`]).
struct ScriptTools {
    host: Arc<StoreHost>,
    max: u64,
    made: AtomicU64,
    /// Set once a call went over `max`: the execution ends `MAX_TOOL_CALLS` even if
    /// the script caught the error.
    over: AtomicBool,
}

#[async_trait::async_trait]
impl ToolBackend for ScriptTools {
    async fn call(
        &self,
        caller: &InstallRef,
        plugin: &str,
        action: &str,
        input: String,
        nested: Nested,
    ) -> std::result::Result<String, ToolError> {
        if self.made.fetch_add(1, Ordering::Relaxed) >= self.max {
            self.over.store(true, Ordering::Relaxed);
            return Err(ToolError {
                outcome: Outcome::MaxHostCalls,
                message: format!("more than {} tool calls in one execution", self.max),
            });
        }
        self.host.call(caller, plugin, action, input, nested).await
    }
}

/// What the engine returned, read.
struct ScriptResult {
    value: std::result::Result<Value, ScriptError>,
    logs: Vec<LogLine>,
    logs_dropped: u64,
}

/// Reads the engine's answer (`{ok, value | error, logs, logs_dropped}`), or maps
/// the sandbox's outcome when the engine did not answer.
fn read_result(outcome: Outcome, output: Option<&str>, message: Option<String>) -> ScriptResult {
    let fail = |code: &str, message: String| ScriptResult {
        value: Err(ScriptError {
            code: code.into(),
            message,
            line: None,
            column: None,
        }),
        logs: vec![],
        logs_dropped: 0,
    };
    let message = message.unwrap_or_default();
    let body: Value = match (outcome, output) {
        (Outcome::Ok, Some(text)) => match serde_json::from_str(text) {
            Ok(v) => v,
            Err(_) => return fail("ENGINE_TRAP", "the engine's answer was not JSON".into()),
        },
        (Outcome::PluginTrap | Outcome::PluginError, _) => {
            return fail("ENGINE_TRAP", message);
        }
        (o, _) => return fail(o.as_str(), message),
    };
    let logs = body
        .get("logs")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|l| LogLine {
                    level: str_of(l, "level"),
                    message: str_of(l, "message"),
                })
                .collect()
        })
        .unwrap_or_default();
    let logs_dropped = body
        .get("logs_dropped")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let value = if body.get("ok").and_then(Value::as_bool) == Some(true) {
        Ok(body.get("value").cloned().unwrap_or(Value::Null))
    } else {
        let e = body.get("error").cloned().unwrap_or(Value::Null);
        let line = |k: &str| {
            e.get(k)
                .and_then(Value::as_u64)
                .and_then(|n| u32::try_from(n).ok())
        };
        Err(ScriptError {
            code: script_code(e.get("code").and_then(Value::as_str).unwrap_or("")),
            message: str_of(&e, "message"),
            line: line("line"),
            column: line("column"),
        })
    };
    ScriptResult {
        value,
        logs,
        logs_dropped,
    }
}

fn str_of(v: &Value, k: &str) -> String {
    v.get(k)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// The codes a script's error may carry: the engine's own, and the outcomes a tool
/// call can end with. Anything else (a script can throw any `code`) is
/// `SCRIPT_ERROR`.
fn script_code(code: &str) -> String {
    const ENGINE: [&str; 4] = [
        "SYNTAX_ERROR",
        "SCRIPT_ERROR",
        "TOOL_ERROR",
        "MAX_TOOL_CALLS",
    ];
    if ENGINE.contains(&code) {
        return code.to_string();
    }
    match Outcome::ALL.iter().find(|o| o.as_str() == code) {
        Some(o) if *o != Outcome::Ok => o.as_str().to_string(),
        _ => "SCRIPT_ERROR".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_script_cannot_claim_a_code_outside_the_list() {
        assert_eq!(script_code("PERMISSION_DENIED"), "PERMISSION_DENIED");
        assert_eq!(script_code("MAX_TOOL_CALLS"), "MAX_TOOL_CALLS");
        assert_eq!(script_code("OK"), "SCRIPT_ERROR");
        assert_eq!(script_code("ROOT_GRANTED"), "SCRIPT_ERROR");
        assert_eq!(script_code(""), "SCRIPT_ERROR");
    }

    #[test]
    fn the_sandbox_outcome_stands_when_the_engine_did_not_answer() {
        let r = read_result(Outcome::Timeout, None, Some("stopped".into()));
        let e = r.value.unwrap_err();
        assert_eq!(
            (e.code.as_str(), e.message.as_str()),
            ("TIMEOUT", "stopped")
        );
        let r = read_result(Outcome::Ok, Some("not json"), None);
        assert_eq!(r.value.unwrap_err().code, "ENGINE_TRAP");
    }
}
