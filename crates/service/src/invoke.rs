//! The invoke path: one action of one install, in a fresh sandbox.
//!
//! Authorisation (permission, agent binding, install enabled) → the tier's limits →
//! the compiled plugin (verified digest and signature, compiled once per version) →
//! input validated against the action's schema → the runtime → a usage event and an
//! audit entry handed to the [`Recorder`](crate::recorder::Recorder). Tool calls made
//! by the plugin come back through the capability backends
//! ([`crate::capabilities`]) and run the same path ([`Run`]), nested.

use serde_json::{Value, json};
use std::sync::Arc;
use tenantry_core::manifest::Manifest;
use tenantry_core::{
    Error, ErrorCode, InstallId, InvocationId, Outcome, Permission, RateLimitState, Result,
    TenantScope, Tier,
};
use tenantry_runtime::{Backends, InstallRef, Invocation, Limits, LoadedPlugin, Nested};
use tenantry_store::{AuditEntry, InstallRecord, Seen, UsageEvent};

use crate::capabilities::StoreHost;
use crate::recorder::Record;
use crate::{RequestCtx, Service, audit_entry, registry};

/// Largest JSON input accepted by the invoke endpoint.
pub const MAX_INPUT_BYTES: usize = 1 << 20;

/// Which action to run, with what input (a JSON object).
#[derive(Debug, Clone)]
pub struct InvokeRequest {
    pub action: String,
    pub input: Value,
}

/// Measurements of one invocation.
#[derive(Debug, Clone, Default)]
pub struct InvocationStats {
    pub duration_us: u64,
    /// CPU used, in fuel units (the metered compute unit).
    pub fuel: u64,
    pub peak_memory_bytes: u64,
    pub host_calls: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

/// Why a run produced no output: its outcome and the message.
#[derive(Debug, Clone)]
pub struct InvokeError {
    pub code: Outcome,
    pub message: String,
}

/// What an invocation produced.
#[derive(Debug, Clone)]
pub struct InvokeResponse {
    pub invocation_id: InvocationId,
    pub outcome: Outcome,
    pub output: Option<Value>,
    pub error: Option<InvokeError>,
    pub stats: InvocationStats,
}

/// A plugin version ready to run.
pub struct Prepared {
    pub loaded: Arc<LoadedPlugin>,
    pub manifest: Manifest,
    /// The actions' input schemas, compiled once per version.
    inputs: tenantry_core::manifest::InputSchemas,
    /// The key that signed the version and its publisher: checked again at every use,
    /// so a revocation stops a cached version on its next invocation, on every node.
    key_id: String,
    publisher_id: tenantry_core::PublisherId,
}

/// An invocation's response and the rate limits it was counted against (the org's,
/// then the install's own when it has one).
pub struct Invoked {
    pub response: InvokeResponse,
    pub rate_limits: Vec<RateLimitState>,
}

/// Who invokes: an org's principal, and the hash of the key it presented.
pub struct Invoker {
    pub scope: TenantScope,
    pub(crate) key_hash: Option<[u8; 32]>,
    /// How far the key lookup saw storage: the invoke path's reads may use rows kept
    /// at or after it.
    pub(crate) seen: Seen,
}

/// Authenticates the key of an invoke request. A key whose org's rate limit refused
/// it moments ago is refused again first, without reading storage (see
/// `service::limits`), so hammering far beyond a limit costs the node almost nothing.
pub async fn invoker(svc: &Service, presented_key: &str) -> Result<Invoker> {
    let key_hash = tenantry_crypto::hash_api_key(presented_key);
    if let Some(e) = key_hash.as_ref().and_then(|h| svc.refused_again(h)) {
        return Err(e);
    }
    let (scope, seen) = crate::auth::tenant_seen(svc, presented_key).await?;
    Ok(Invoker {
        scope,
        key_hash,
        seen,
    })
}

/// Invokes an action as the invoker's principal.
pub async fn invoke(
    svc: &Service,
    who: &Invoker,
    ctx: &RequestCtx,
    install: InstallId,
    req: &InvokeRequest,
) -> Result<Invoked> {
    let scope = &who.scope;
    tenantry_core::manifest::validate_ident("action name", &req.action)?;
    if !req.input.is_object() {
        return Err(Error::invalid(
            "input must be a JSON object (the action's input_schema describes its fields)",
        ));
    }
    scope.require(Permission::Invoke)?;
    let tier = svc.tier_of(scope.org_id(), who.seen).await?;
    let rate_limits = svc
        .check_org_rate(scope, &tier, who.key_hash.as_ref())
        .await?;
    let mut tx = svc.tenants.begin_seen(scope, who.seen).await?;
    let record = tx
        .get_install(install)
        .await?
        .ok_or_else(|| Error::not_found("install"))?;
    if let Some(agent) = scope.agent_id()
        && !tx.is_bound(agent, install).await?
    {
        return Err(Error::denied(
            "this agent is not bound to the install; ask an admin to bind it",
        ));
    }
    drop(tx);
    if !record.enabled {
        return Err(Error::new(
            ErrorCode::InstallDisabled,
            "the install is disabled; enable it with `tenantry install enable`",
        ));
    }
    svc.settings.pilot.check_plugin(&record.plugin)?;
    let mut admission = svc
        .admit(
            scope,
            install,
            record.rate_limit_per_minute,
            &tier,
            rate_limits,
        )
        .await?;
    let rate_limits = std::mem::take(&mut admission.rate_limits);
    let result = Run {
        scope,
        ctx,
        tier: &tier,
        install: &record,
        action: &req.action,
        input: &req.input,
        caller: None,
        seen: who.seen,
    }
    .run(svc)
    .await;
    let ran = matches!(&result, Ok(r) if r.sandbox_ran);
    svc.release(admission, ran).await;
    result.map(|r| Invoked {
        response: r.response,
        rate_limits,
    })
}

/// Loads (verify + compile, once per version) the plugin an install runs. A cached
/// version is used only while the key that signed it is still registered and not
/// revoked (one read of the control store, shared by every node).
pub async fn prepare(svc: &Service, install: &InstallRecord, seen: Seen) -> Result<Arc<Prepared>> {
    let key = (install.plugin.clone(), install.version.clone());
    let cached = svc.prepared.lock().ok().and_then(|m| m.get(&key).cloned());
    if let Some(p) = cached {
        let usable = svc
            .control
            .get_publisher_key(&p.key_id, seen)
            .await?
            .is_some_and(|k| k.publisher_id == p.publisher_id && k.revoked_at.is_none());
        if usable {
            return Ok(p);
        }
        // Verify from scratch below: the error then says exactly what is wrong.
        if let Ok(mut m) = svc.prepared.lock() {
            m.remove(&key);
        }
    }
    let version = svc
        .control
        .get_version(&install.plugin, &install.version)
        .await?
        .ok_or_else(Error::internal)?;
    let registry::Verified {
        manifest,
        artifact,
        key: signer,
    } = registry::verify_for_use(svc, &version).await?;
    let rt = svc.runtime.clone();
    let digest = version.artifact_sha256.clone();
    let loaded = tokio::task::spawn_blocking(move || rt.load(&digest, &artifact))
        .await
        .map_err(|_| Error::internal())?
        .map_err(|e| {
            Error::new(
                ErrorCode::PluginNotRunnable,
                format!(
                    "{}@{} cannot run on this server: {e}; install another version",
                    install.plugin, install.version
                ),
            )
        })?;
    let inputs = manifest.input_schemas()?;
    let prepared = Arc::new(Prepared {
        loaded,
        inputs,
        manifest,
        key_id: version.key_id,
        publisher_id: signer.publisher_id,
    });
    if let Ok(mut m) = svc.prepared.lock() {
        m.insert(key, prepared.clone());
    }
    Ok(prepared)
}

/// The limits an org's tier gives one execution.
pub fn limits_for(tier: &Tier) -> Limits {
    Limits {
        memory_bytes: tier.memory_bytes,
        fuel: tier.fuel_per_execution(),
        wall_time: tier.max_wall_time(),
        max_host_calls: tier.host_calls_per_execution,
        max_input_bytes: MAX_INPUT_BYTES,
        max_output_bytes: usize::try_from(tier.output_bytes).unwrap_or(usize::MAX),
    }
}

/// One action of one install to run, already authorised and admitted.
pub(crate) struct Run<'a> {
    pub scope: &'a TenantScope,
    pub ctx: &'a RequestCtx,
    pub tier: &'a Tier,
    pub install: &'a InstallRecord,
    pub action: &'a str,
    pub input: &'a Value,
    /// Set for a tool call: the caller's meter and depth, and the caller's invocation
    /// (for the usage record).
    pub caller: Option<(Nested, InvocationId)>,
    /// How far the request's key lookup saw storage ([`Seen::NOTHING`] for a tool
    /// call: its reads go to storage).
    pub seen: Seen,
}

/// What a [`Run`] produced.
pub(crate) struct Ran {
    pub response: InvokeResponse,
    /// Whether the sandbox ran: quotas of runs that never started are refunded.
    pub sandbox_ran: bool,
}

/// What the sandbox (or the input check before it) made of one run.
struct Execution {
    outcome: Outcome,
    output: Option<String>,
    error: Option<String>,
    stats: InvocationStats,
    /// Capability calls the plugin was denied, for the audit entry.
    denied: Vec<String>,
}

impl Run<'_> {
    /// Runs the action and records it (usage + audit).
    pub(crate) async fn run(self, svc: &Service) -> Result<Ran> {
        let Run {
            scope,
            ctx,
            tier,
            install,
            action,
            input,
            caller,
            seen,
        } = self;
        let id = InvocationId::new();
        let (nested, caller_id) = caller.unzip();
        let prepared = prepare(svc, install, seen).await?;
        let input_text = input.to_string();
        let validated = prepared.inputs.validate(action, input);
        let sandbox_ran = validated.is_ok();
        let e = match validated {
            Err(e) => Execution {
                outcome: if e.code == ErrorCode::NotFound {
                    Outcome::NotFound
                } else {
                    Outcome::InvalidInput
                },
                output: None,
                error: Some(e.message),
                stats: InvocationStats {
                    bytes_in: input_text.len() as u64,
                    ..Default::default()
                },
                denied: vec![],
            },
            Ok(()) => {
                let host = Arc::new(StoreHost {
                    svc: svc.clone(),
                    scope: scope.system_for_same_org(),
                    ctx: *ctx,
                    tier: tier.clone(),
                    invocation: id,
                });
                let r = svc
                    .runtime
                    .invoke(
                        &prepared.loaded,
                        Invocation {
                            install: InstallRef {
                                org_id: scope.org_id(),
                                install_id: install.id,
                            },
                            action,
                            input: &input_text,
                            config: &install.config,
                            grants: &install.grants,
                            limits: limits_for(tier),
                            backends: Backends {
                                kv: host.clone(),
                                secrets: host.clone(),
                                tools: host,
                            },
                            nested,
                        },
                    )
                    .await;
                let s = r.stats;
                Execution {
                    outcome: r.outcome,
                    output: r.output,
                    error: r.error,
                    stats: InvocationStats {
                        duration_us: s.duration_us,
                        fuel: s.fuel,
                        peak_memory_bytes: s.peak_memory_bytes,
                        host_calls: s.host_calls,
                        bytes_in: s.bytes_in,
                        bytes_out: s.bytes_out,
                    },
                    denied: r.denied,
                }
            }
        };
        svc.metrics.invocation(
            e.outcome,
            sandbox_ran.then_some((e.stats.duration_us, e.stats.fuel)),
        );
        let actor = scope.actor();
        let usage = UsageEvent {
            id,
            at: tenantry_core::now(),
            install_id: install.id,
            plugin: install.plugin.clone(),
            action: action.to_string(),
            actor_kind: actor.kind,
            actor_id: actor.id,
            outcome: e.outcome,
            duration_us: e.stats.duration_us,
            fuel: e.stats.fuel,
            peak_memory_bytes: e.stats.peak_memory_bytes,
            host_calls: e.stats.host_calls,
            bytes_in: e.stats.bytes_in,
            bytes_out: e.stats.bytes_out,
            caller_id,
        };
        let audit = AuditEntry {
            outcome: e.outcome.as_str().to_string(),
            ..audit_entry(
                scope,
                ctx,
                "invoke",
                install.id.to_string(),
                json!({
                    "invocation_id": id, "plugin": install.plugin, "version": install.version, "action": action,
                    "artifact_sha256": install.artifact_sha256, "denied": e.denied,
                }),
            )
        };
        svc.recorder
            .record(Record {
                scope: scope.system_for_same_org(),
                usage: Some(usage),
                audit,
            })
            .await;
        let output = e
            .output
            .map(|o| serde_json::from_str(&o).unwrap_or(Value::String(o)));
        let error = e.error.map(|message| InvokeError {
            code: e.outcome,
            message,
        });
        Ok(Ran {
            response: InvokeResponse {
                invocation_id: id,
                outcome: e.outcome,
                output,
                error,
                stats: e.stats,
            },
            sandbox_ran,
        })
    }
}
