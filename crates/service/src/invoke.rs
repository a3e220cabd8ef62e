//! The invoke path: one action of one install, in a fresh sandbox.
//!
//! Authorisation (permission, agent binding, install enabled) → the tier's limits →
//! the compiled plugin (verified digest and signature, compiled once per version) →
//! input validated against the action's schema → the runtime → a usage event and an
//! audit entry handed to the [`Recorder`](crate::recorder::Recorder). Tool calls made
//! by the plugin come back through [`StoreHost`] and run the same path, nested.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::sync::Arc;
use tenantry_core::manifest::Manifest;
use tenantry_core::{
    Error, ErrorCode, InstallId, InvocationId, Outcome, Permission, Result, TenantScope, Tier,
};
use tenantry_runtime::{
    BackendError, Backends, InstallRef, Invocation, KvBackend, Limits, LoadedPlugin, Nested,
    SecretsBackend, ToolBackend, ToolError,
};
use tenantry_store::{AuditEntry, InstallRecord, UsageEvent};

use crate::limits::RateLimitHeaders;
use crate::recorder::Record;
use crate::{RequestCtx, Service, audit_entry, registry};

/// Largest JSON input accepted by the invoke endpoint.
pub const MAX_INPUT_BYTES: usize = 1 << 20;

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
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
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct InvocationStats {
    pub duration_us: u64,
    /// CPU used, in fuel units (the metered compute unit).
    pub fuel: u64,
    pub peak_memory_bytes: u64,
    pub host_calls: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct InvokeError {
    pub code: Outcome,
    pub message: String,
}

/// What an invocation produced.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct InvokeResponse {
    pub invocation_id: InvocationId,
    pub outcome: Outcome,
    #[schema(value_type = Option<Object>)]
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

/// An invocation's response and the rate limits it was counted against.
pub struct Invoked {
    pub response: InvokeResponse,
    pub rate_limit: RateLimitHeaders,
}

/// Who invokes: an org's principal, and the hash of the key it presented.
pub struct Invoker {
    pub scope: TenantScope,
    key_hash: Option<[u8; 32]>,
}

/// Authenticates the key of an invoke request. A key whose org's rate limit refused
/// it moments ago is refused again first, without reading storage (see
/// `service::limits`), so hammering far beyond a limit costs the node almost nothing.
pub async fn invoker(svc: &Service, presented_key: &str) -> Result<Invoker> {
    let key_hash = tenantry_crypto::hash_api_key(presented_key);
    if let Some(e) = key_hash.as_ref().and_then(|h| svc.refused_again(h)) {
        return Err(e);
    }
    let scope = crate::auth::tenant(svc, presented_key).await?;
    Ok(Invoker { scope, key_hash })
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
    let tier = svc.tier_of(scope.org_id()).await?;
    let rate_limit = svc
        .check_org_rate(scope, &tier, who.key_hash.as_ref())
        .await?;
    let mut tx = svc.read(scope).await?;
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
    let mut admission = svc
        .admit(
            scope,
            install,
            record.rate_limit_per_minute,
            &tier,
            rate_limit,
        )
        .await?;
    let rate_limit = std::mem::take(&mut admission.rate_limit);
    let result = run_install(
        svc,
        scope,
        ctx,
        &tier,
        &record,
        &req.action,
        &req.input,
        None,
    )
    .await;
    let ran = matches!(&result, Ok((_, true)));
    svc.release(admission, ran).await;
    result.map(|(response, _)| Invoked {
        response,
        rate_limit,
    })
}

/// Loads (verify + compile, once per version) the plugin an install runs. A cached
/// version is used only while the key that signed it is still registered and not
/// revoked (one read of the control store, shared by every node).
pub async fn prepare(svc: &Service, install: &InstallRecord) -> Result<Arc<Prepared>> {
    let key = (install.plugin.clone(), install.version.clone());
    let cached = svc.prepared.lock().ok().and_then(|m| m.get(&key).cloned());
    if let Some(p) = cached {
        let usable = svc
            .control
            .get_publisher_key(&p.key_id)
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

/// Runs one action of an install (already authorised and admitted) and records it.
/// `nested` is set for a tool call (the caller's meter and depth, and the caller's
/// invocation id for the usage record). The flag says
/// whether the sandbox ran (quotas of runs that never started are refunded).
#[allow(clippy::too_many_arguments)]
async fn run_install(
    svc: &Service,
    scope: &TenantScope,
    ctx: &RequestCtx,
    tier: &Tier,
    install: &InstallRecord,
    action: &str,
    input: &Value,
    nested: Option<(Nested, InvocationId)>,
) -> Result<(InvokeResponse, bool)> {
    let id = InvocationId::new();
    let (nested, caller_id) = nested.unzip();
    let prepared = prepare(svc, install).await?;
    let input_text = input.to_string();
    let validated = prepared.inputs.validate(action, input);
    let ran = validated.is_ok();
    let (outcome, output, error, stats, denied) = match validated {
        Err(e) => {
            let outcome = if e.code == ErrorCode::NotFound {
                Outcome::NotFound
            } else {
                Outcome::InvalidInput
            };
            (
                outcome,
                None,
                Some(e.message),
                InvocationStats {
                    bytes_in: input_text.len() as u64,
                    ..Default::default()
                },
                vec![],
            )
        }
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
            let stats = InvocationStats {
                duration_us: s.duration_us,
                fuel: s.fuel,
                peak_memory_bytes: s.peak_memory_bytes,
                host_calls: s.host_calls,
                bytes_in: s.bytes_in,
                bytes_out: s.bytes_out,
            };
            (r.outcome, r.output, r.error, stats, r.denied)
        }
    };
    let actor = scope.actor();
    let usage = UsageEvent {
        id,
        at: tenantry_core::now(),
        install_id: install.id,
        plugin: install.plugin.clone(),
        action: action.to_string(),
        actor_kind: actor.kind,
        actor_id: actor.id,
        outcome,
        duration_us: stats.duration_us,
        fuel: stats.fuel,
        peak_memory_bytes: stats.peak_memory_bytes,
        host_calls: stats.host_calls,
        bytes_in: stats.bytes_in,
        bytes_out: stats.bytes_out,
        caller_id,
    };
    let audit = AuditEntry {
        outcome: outcome.as_str().to_string(),
        ..audit_entry(
            scope,
            ctx,
            "invoke",
            install.id.to_string(),
            json!({
                "invocation_id": id, "plugin": install.plugin, "version": install.version, "action": action,
                "artifact_sha256": install.artifact_sha256, "denied": denied,
            }),
        )
    };
    svc.recorder
        .record(Record {
            scope: scope.system_for_same_org(),
            usage,
            audit,
        })
        .await;
    let output = output.map(|o| serde_json::from_str(&o).unwrap_or(Value::String(o)));
    let error = error.map(|message| InvokeError {
        code: outcome,
        message,
    });
    Ok((
        InvokeResponse {
            invocation_id: id,
            outcome,
            output,
            error,
            stats,
        },
        ran,
    ))
}

/// The capability backends of one invocation, on the org's own store.
struct StoreHost {
    svc: Service,
    /// The invoking principal's scope (same org, no permissions of its own).
    scope: TenantScope,
    ctx: RequestCtx,
    tier: Tier,
    /// The invocation these capabilities serve: the caller of its tool calls.
    invocation: InvocationId,
}

fn backend(e: impl std::fmt::Display) -> BackendError {
    tracing::error!(error = %e, "capability backend failed");
    BackendError::Failed("storage error".into())
}

impl StoreHost {
    /// Refuses an install of another org (cannot happen through the runtime, which
    /// takes the install from host state; checked anyway).
    fn check(&self, i: &InstallRef) -> std::result::Result<(), BackendError> {
        if i.org_id == self.scope.org_id() {
            Ok(())
        } else {
            Err(BackendError::PermissionDenied(
                "install of another org".into(),
            ))
        }
    }
}

#[async_trait::async_trait]
impl KvBackend for StoreHost {
    async fn get(
        &self,
        i: &InstallRef,
        key: &str,
    ) -> std::result::Result<Option<Vec<u8>>, BackendError> {
        self.check(i)?;
        let mut tx = self
            .svc
            .tenants
            .begin(&self.scope, false)
            .await
            .map_err(backend)?;
        tx.kv_get(i.install_id, key).await.map_err(backend)
    }
    async fn set(
        &self,
        i: &InstallRef,
        key: &str,
        value: &[u8],
    ) -> std::result::Result<(), BackendError> {
        self.check(i)?;
        let mut tx = self
            .svc
            .tenants
            .begin(&self.scope, true)
            .await
            .map_err(backend)?;
        let used = tx.kv_usage_bytes().await.map_err(backend)?;
        let old = tx
            .kv_get(i.install_id, key)
            .await
            .map_err(backend)?
            .map_or(0, |v| v.len() + key.len()) as u64;
        if used.saturating_sub(old) + (key.len() + value.len()) as u64 > self.tier.storage_bytes {
            return Err(BackendError::LimitExceeded(format!(
                "the org's storage quota ({} bytes) is used up",
                self.tier.storage_bytes
            )));
        }
        tx.kv_set(i.install_id, key, value).await.map_err(backend)?;
        tx.commit().await.map_err(backend)
    }
    async fn delete(&self, i: &InstallRef, key: &str) -> std::result::Result<bool, BackendError> {
        self.check(i)?;
        let mut tx = self
            .svc
            .tenants
            .begin(&self.scope, true)
            .await
            .map_err(backend)?;
        let found = tx.kv_delete(i.install_id, key).await.map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(found)
    }
    async fn list(
        &self,
        i: &InstallRef,
        prefix: &str,
        limit: u32,
    ) -> std::result::Result<Vec<String>, BackendError> {
        self.check(i)?;
        let mut tx = self
            .svc
            .tenants
            .begin(&self.scope, false)
            .await
            .map_err(backend)?;
        tx.kv_list(i.install_id, prefix, limit)
            .await
            .map_err(backend)
    }
}

#[async_trait::async_trait]
impl SecretsBackend for StoreHost {
    async fn get(
        &self,
        i: &InstallRef,
        name: &str,
    ) -> std::result::Result<Option<String>, BackendError> {
        self.check(i)?;
        let v = crate::secrets::open_for_install(&self.svc, &self.scope, i.install_id, name)
            .await
            .map_err(|e| backend(e.code))?;
        Ok(v.map(|v| String::from_utf8_lossy(v.expose()).into_owned()))
    }
}

#[async_trait::async_trait]
impl ToolBackend for StoreHost {
    async fn call(
        &self,
        caller: &InstallRef,
        plugin: &str,
        action: &str,
        input: String,
        nested: Nested,
    ) -> std::result::Result<String, ToolError> {
        let fail = |outcome, message: String| ToolError { outcome, message };
        if caller.org_id != self.scope.org_id() {
            return Err(fail(
                Outcome::NotFound,
                format!("{plugin} is not installed in this org"),
            ));
        }
        let found = async {
            let mut tx = self.svc.tenants.begin(&self.scope, false).await?;
            tx.get_install_by_plugin(plugin).await
        }
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "tool call lookup failed");
            fail(Outcome::Internal, "storage error".into())
        })?;
        let Some(target) = found else {
            return Err(fail(
                Outcome::NotFound,
                format!("{plugin} is not installed in this org"),
            ));
        };
        if !target.enabled {
            return Err(fail(
                Outcome::PermissionDenied,
                format!("{plugin} is disabled in this org"),
            ));
        }
        let input: Value = serde_json::from_str(&input).map_err(|e| {
            fail(
                Outcome::InvalidInput,
                format!("tool input is not JSON: {e}"),
            )
        })?;
        let quota = self
            .svc
            .reserve_tool_call(&self.scope, &self.tier)
            .await
            .map_err(|e| {
                let outcome = match e.code {
                    ErrorCode::QuotaExceeded => Outcome::QuotaExceeded,
                    _ => Outcome::Internal,
                };
                fail(outcome, e.message)
            })?;
        let result = run_install(
            &self.svc,
            &self.scope,
            &self.ctx,
            &self.tier,
            &target,
            action,
            &input,
            Some((nested, self.invocation)),
        )
        .await;
        if !matches!(&result, Ok((_, true))) {
            self.svc.refund(std::slice::from_ref(&quota)).await;
        }
        let (r, _) = result.map_err(|e| fail(Outcome::Internal, e.message))?;
        match (r.outcome, r.output) {
            (Outcome::Ok, Some(out)) => Ok(out.to_string()),
            (o, _) => Err(fail(o, r.error.map(|e| e.message).unwrap_or_default())),
        }
    }
}

#[cfg(test)]
mod tests {
    //! The capability backends re-check the install's org even though the runtime
    //! only ever hands them the invoking install: a host state pointing at another
    //! org must be refused, never served from the invoking org's store.
    use super::*;
    use tenantry_core::scope::Session;
    use tenantry_core::{InstallId, OrgId};
    use tenantry_runtime::{KvBackend, Nested, SecretsBackend, ToolBackend};

    async fn service(dir: &std::path::Path) -> Service {
        use tenantry_store_sqlite::{FileBlobs, SqliteControl, SqliteTenants};
        Service::new(
            Arc::new(SqliteControl::open(dir).await.unwrap()),
            Arc::new(SqliteTenants::open(dir).await.unwrap()),
            Arc::new(tenantry_crypto::MasterKey::generate()),
            crate::ArtifactStore::new(Arc::new(FileBlobs::new(dir))),
            crate::Settings::default(),
            tenantry_runtime::Runtime::new(tenantry_runtime::RuntimeConfig {
                max_instances: 2,
                ..Default::default()
            })
            .unwrap(),
        )
    }

    #[tokio::test]
    async fn a_backend_refuses_an_install_of_another_org() {
        let dir = tempfile::tempdir().unwrap();
        let svc = service(dir.path()).await;
        let key = crate::orgs::bootstrap_operator(&svc)
            .await
            .unwrap()
            .unwrap();
        let key = String::from_utf8_lossy(key.expose()).into_owned();
        let Session::Operator(op) = crate::auth::authenticate(&svc, &key).await.unwrap() else {
            panic!("operator key")
        };
        let ctx = RequestCtx::new();
        let a = crate::orgs::create(&svc, &op, &ctx, "a", None)
            .await
            .unwrap();
        let host = StoreHost {
            svc: svc.clone(),
            scope: op.enter_org(a.id).system_for_same_org(),
            ctx,
            tier: Tier::free(),
            invocation: InvocationId::new(),
        };
        let elsewhere = InstallRef {
            org_id: OrgId::new(),
            install_id: InstallId::new(),
        };
        assert!(matches!(
            KvBackend::get(&host, &elsewhere, "k").await,
            Err(BackendError::PermissionDenied(_))
        ));
        assert!(matches!(
            KvBackend::set(&host, &elsewhere, "k", b"v").await,
            Err(BackendError::PermissionDenied(_))
        ));
        assert!(matches!(
            SecretsBackend::get(&host, &elsewhere, "api_token").await,
            Err(BackendError::PermissionDenied(_))
        ));
        let nested = Nested {
            meter: Arc::new(tenantry_world::Meter::new(
                10,
                std::time::Instant::now() + std::time::Duration::from_secs(5),
                1_000_000,
            )),
            depth: 1,
        };
        let e = ToolBackend::call(&host, &elsewhere, "@x/y", "run", "{}".into(), nested)
            .await
            .unwrap_err();
        assert_eq!(e.outcome, Outcome::NotFound);
    }
}
