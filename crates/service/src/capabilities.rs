//! The capability backends a plugin's host calls reach (kv, secrets, tool calls),
//! implemented on the org's own store for one invocation. The runtime's host crates
//! enforce grants and limits before calling these; these re-check the org, apply the
//! tier's storage quota and run tool calls through the invoke path, nested.

use serde_json::Value;
use tenantry_core::{ErrorCode, InvocationId, Outcome, TenantScope, Tier};
use tenantry_runtime::{
    BackendError, InstallRef, KvBackend, Nested, SecretsBackend, ToolBackend, ToolError,
};

use crate::invoke::Run;
use crate::{RequestCtx, Service};

/// The capability backends of one invocation, on the org's own store.
pub(crate) struct StoreHost {
    pub(crate) svc: Service,
    /// The invoking principal's scope (same org, no permissions of its own).
    pub(crate) scope: TenantScope,
    pub(crate) ctx: RequestCtx,
    pub(crate) tier: Tier,
    /// The invocation these capabilities serve: the caller of its tool calls.
    pub(crate) invocation: InvocationId,
}

fn backend(e: impl std::fmt::Display) -> BackendError {
    tracing::error!(error = %e, "capability backend failed");
    BackendError::Failed("storage error".into())
}

impl StoreHost {
    /// A transaction on the org's store for install `i`'s kv data, after [`Self::check`].
    async fn kv_tx(
        &self,
        i: &InstallRef,
        write: bool,
    ) -> std::result::Result<Box<dyn tenantry_store::TenantTx>, BackendError> {
        self.check(i)?;
        self.svc
            .tenants
            .begin(&self.scope, write)
            .await
            .map_err(backend)
    }

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
        let mut tx = self.kv_tx(i, false).await?;
        tx.kv_get(i.install_id, key).await.map_err(backend)
    }
    async fn set(
        &self,
        i: &InstallRef,
        key: &str,
        value: &[u8],
    ) -> std::result::Result<(), BackendError> {
        let mut tx = self.kv_tx(i, true).await?;
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
        let mut tx = self.kv_tx(i, true).await?;
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
        let mut tx = self.kv_tx(i, false).await?;
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
        let result = Run {
            scope: &self.scope,
            ctx: &self.ctx,
            tier: &self.tier,
            install: &target,
            action,
            input: &input,
            caller: Some((nested, self.invocation)),
            seen: tenantry_store::Seen::NOTHING,
        }
        .run(&self.svc)
        .await;
        if !matches!(&result, Ok(r) if r.sandbox_ran) {
            self.svc.refund(std::slice::from_ref(&quota)).await;
        }
        let r = result
            .map_err(|e| fail(Outcome::Internal, e.message))?
            .response;
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
    use std::sync::Arc;
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
