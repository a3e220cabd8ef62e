//! `tenantry-host-secrets`: the `tenantry:plugin/secrets` capability.
//!
//! Only names in the install's grants are looked up, and only for the install in
//! host state; anything else is `permission-denied` and recorded for the audit trail.

use std::sync::Arc;
use tenantry_world::bindings::tenantry::plugin::secrets;
use tenantry_world::{
    BackendError, Factor, GuestError, InstallRef, InstanceCtx, Meter, with_deadline,
};
use wasmtime::component::{HasSelf, Linker};

/// Decrypts one secret of one install (the server implements it).
#[async_trait::async_trait]
pub trait SecretsBackend: Send + Sync + 'static {
    /// The value, or `None` if the org has not set it. The returned string is handed
    /// to the guest and dropped.
    async fn get(&self, install: &InstallRef, name: &str) -> Result<Option<String>, BackendError>;
}

/// The capability (no engine-wide settings).
pub struct SecretsFactor;

impl Factor for SecretsFactor {
    type State = SecretsHost;
    type Backend = Arc<dyn SecretsBackend>;

    fn add_to_linker<T: Send + 'static>(
        linker: &mut Linker<T>,
        get: fn(&mut T) -> &mut SecretsHost,
    ) -> wasmtime::Result<()> {
        // 0.1.0 and 0.2.0 (the same interface; 0.2.0 forwards to 0.1.0's trait).
        secrets::add_to_linker::<T, HasSelf<SecretsHost>>(linker, get)?;
        tenantry_world::bindings_v2::tenantry::plugin::secrets::add_to_linker::<
            T,
            HasSelf<SecretsHost>,
        >(linker, get)
    }

    fn prepare(&self, cx: &InstanceCtx<'_>, backend: &Self::Backend) -> SecretsHost {
        SecretsHost {
            install: cx.install,
            granted: cx.grants.secrets.clone(),
            backend: backend.clone(),
            meter: cx.meter.clone(),
        }
    }
}

/// The capability's per-invocation state.
pub struct SecretsHost {
    install: InstallRef,
    /// Secret names this install may read.
    granted: Vec<String>,
    backend: Arc<dyn SecretsBackend>,
    meter: Arc<Meter>,
}

impl secrets::Host for SecretsHost {
    async fn get(&mut self, name: String) -> wasmtime::Result<Result<Option<String>, GuestError>> {
        self.meter.charge()?;
        if !self.granted.contains(&name) {
            self.meter.deny(format!(
                "secret:{}",
                name.chars().take(64).collect::<String>()
            ));
            return Ok(Err(GuestError::PermissionDenied(
                "that secret is not granted to this install".into(),
            )));
        }
        Ok(
            with_deadline(&self.meter, self.backend.get(&self.install, &name))
                .await?
                .map_err(Into::into),
        )
    }
}

tenantry_world::forward_v2!(secrets for SecretsHost);
