//! `tenantry-host-kv`: the `tenantry:plugin/kv` capability.
//!
//! Keys are scoped by construction: the backend is always called with the
//! [`InstallRef`] from host state, so a guest can name any key string it likes
//! (`../other`, another install's id) and still only reach its own install's keys.
//! Size limits apply per key and per value; the backend enforces the org's storage
//! quota.

use std::sync::Arc;
use tenantry_world::bindings::tenantry::plugin::kv;
use tenantry_world::{
    BackendError, Factor, GuestError, InstallRef, InstanceCtx, Meter, with_deadline,
};
use wasmtime::component::{HasSelf, Linker};

/// Storage behind the capability (the server implements it on the tenant store).
#[async_trait::async_trait]
pub trait KvBackend: Send + Sync + 'static {
    async fn get(&self, install: &InstallRef, key: &str) -> Result<Option<Vec<u8>>, BackendError>;
    async fn set(&self, install: &InstallRef, key: &str, value: &[u8]) -> Result<(), BackendError>;
    async fn delete(&self, install: &InstallRef, key: &str) -> Result<bool, BackendError>;
    async fn list(
        &self,
        install: &InstallRef,
        prefix: &str,
        limit: u32,
    ) -> Result<Vec<String>, BackendError>;
}

/// Per-call size limits.
#[derive(Debug, Clone, Copy)]
pub struct KvLimits {
    pub max_key_bytes: usize,
    pub max_value_bytes: usize,
}

impl Default for KvLimits {
    fn default() -> Self {
        Self {
            max_key_bytes: 512,
            max_value_bytes: 1024 * 1024,
        }
    }
}

/// The capability: engine-wide key and value size limits.
pub struct KvFactor {
    pub limits: KvLimits,
}

impl Factor for KvFactor {
    type State = KvHost;
    type Backend = Arc<dyn KvBackend>;

    fn add_to_linker<T: Send + 'static>(
        linker: &mut Linker<T>,
        get: fn(&mut T) -> &mut KvHost,
    ) -> wasmtime::Result<()> {
        // 0.1.0 and 0.2.0 (the same interface; 0.2.0 forwards to 0.1.0's trait).
        kv::add_to_linker::<T, HasSelf<KvHost>>(linker, get)?;
        tenantry_world::bindings_v2::tenantry::plugin::kv::add_to_linker::<T, HasSelf<KvHost>>(
            linker, get,
        )
    }

    fn prepare(&self, cx: &InstanceCtx<'_>, backend: &Self::Backend) -> KvHost {
        KvHost {
            install: cx.install,
            backend: cx.grants.kv.then(|| backend.clone()),
            limits: self.limits,
            meter: cx.meter.clone(),
        }
    }
}

/// The capability's per-invocation state.
pub struct KvHost {
    install: InstallRef,
    /// `None` when the install was not granted kv: every call is refused.
    backend: Option<Arc<dyn KvBackend>>,
    limits: KvLimits,
    meter: Arc<Meter>,
}

type R<T> = wasmtime::Result<Result<T, GuestError>>;

impl KvHost {
    fn backend(&self) -> Result<&Arc<dyn KvBackend>, GuestError> {
        self.backend.as_ref().ok_or_else(|| {
            self.meter.deny("kv");
            GuestError::PermissionDenied("kv is not granted to this install".into())
        })
    }

    /// The backend for a call on `key`: kv granted and the key within limits.
    fn for_key(&self, key: &str) -> Result<Arc<dyn KvBackend>, GuestError> {
        let backend = self.backend()?.clone();
        if key.is_empty() || key.len() > self.limits.max_key_bytes {
            return Err(GuestError::LimitExceeded(format!(
                "kv keys are 1-{} bytes",
                self.limits.max_key_bytes
            )));
        }
        Ok(backend)
    }
}

impl kv::Host for KvHost {
    async fn get(&mut self, key: String) -> R<Option<Vec<u8>>> {
        self.meter.charge()?;
        let b = match self.for_key(&key) {
            Ok(b) => b,
            Err(e) => return Ok(Err(e)),
        };
        Ok(with_deadline(&self.meter, b.get(&self.install, &key))
            .await?
            .map_err(Into::into))
    }

    async fn set(&mut self, key: String, value: Vec<u8>) -> R<()> {
        self.meter.charge()?;
        let b = match self.for_key(&key) {
            Ok(b) => b,
            Err(e) => return Ok(Err(e)),
        };
        if value.len() > self.limits.max_value_bytes {
            return Ok(Err(GuestError::LimitExceeded(format!(
                "kv values are at most {} bytes",
                self.limits.max_value_bytes
            ))));
        }
        Ok(
            with_deadline(&self.meter, b.set(&self.install, &key, &value))
                .await?
                .map_err(Into::into),
        )
    }

    async fn delete(&mut self, key: String) -> R<bool> {
        self.meter.charge()?;
        let b = match self.for_key(&key) {
            Ok(b) => b,
            Err(e) => return Ok(Err(e)),
        };
        Ok(with_deadline(&self.meter, b.delete(&self.install, &key))
            .await?
            .map_err(Into::into))
    }

    async fn list_keys(&mut self, prefix: String) -> R<Vec<String>> {
        self.meter.charge()?;
        let b = match self.backend() {
            Ok(b) => b.clone(),
            Err(e) => return Ok(Err(e)),
        };
        Ok(
            with_deadline(&self.meter, b.list(&self.install, &prefix, 1000))
                .await?
                .map_err(Into::into),
        )
    }
}

tenantry_world::forward_v2!(kv for KvHost);
