//! `tenantry-world`: the host side of `wit/plugin.wit`.
//!
//! - [`bindings`] and [`bindings_v2`]: Rust types and host traits generated from
//!   the WIT worlds `tenantry:plugin@0.1.0` (frozen) and `@0.2.0` (one generation
//!   shared by every capability crate, so they agree on types; 0.2.0's traits are
//!   forwarded to 0.1.0's, so each capability is written once);
//! - [`InstallRef`]: which install a store belongs to. It lives in host state and
//!   is never taken from a guest argument;
//! - [`Meter`]: the per-invocation budget every host call is charged against
//!   (host-call count, deadline) plus a record of refused capability attempts;
//! - [`Factor`]: the shape of one host capability (Spin's factors are the model).
//!   Each `tenantry-host-*` crate implements it: it owns its WIT interface's linker
//!   wiring, its engine-wide settings (the factor value) and its per-invocation state,
//!   built in [`Factor::prepare`] from an [`InstanceCtx`] (install, grants, meter) and
//!   the backend the server supplies. The runtime only composes factors.
//!
//! Capability crates (`tenantry-host-*`) depend on this crate; the runtime composes
//! them. This crate must not depend on any capability or on storage.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tenantry_core::manifest::Grants;
use tenantry_core::{InstallId, OrgId};
use wasmtime::component::Linker;

/// `tenantry:plugin@0.1.0` (frozen, `wit/0.1.0/`): the host traits every
/// capability implements, and the exports the runtime calls.
#[allow(missing_docs, clippy::all)]
pub mod bindings {
    wasmtime::component::bindgen!({
        path: "../../wit/0.1.0",
        world: "plugin",
        imports: { default: async | trappable },
        exports: { default: async },
    });
}

/// `tenantry:plugin@0.2.0` (`wit/`): the same capabilities under the new package
/// version, plus `wasi:http/outgoing-handler` instead of the `http` interface.
///
/// Its `types.error` is 0.1.0's Rust type and each 0.2.0 host trait forwards to
/// the 0.1.0 one ([`forward_v2!`]), so a capability is written once and linked
/// under both versions (`add_to_linker` of each module). The
/// exports (`describe`, `invoke`) have the same shape in both versions, so one
/// `PluginPre` serves both. Each capability implements 0.2.0 with [`forward_v2!`].
#[allow(missing_docs, clippy::all)]
pub mod bindings_v2 {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "plugin",
        imports: { default: async | trappable },
        exports: { default: async },
        with: {
            "tenantry:plugin/types": super::bindings::tenantry::plugin::types,
            "wasi:http": wasmtime_wasi_http::p2::bindings::http,
            "wasi:io": wasmtime_wasi::p2::bindings::io,
            "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
        },
    });
}

/// Implements a 0.2.0 capability trait by forwarding to the type's 0.1.0
/// implementation: `forward_v2!(kv for KvHost)`. (A blanket impl would conflict
/// with the `&mut T` impls bindgen generates.)
#[macro_export]
macro_rules! forward_v2 {
    (kv for $t:ty) => {
        impl $crate::bindings_v2::tenantry::plugin::kv::Host for $t {
            async fn get(&mut self, key: String) -> $crate::HostResult<Option<Vec<u8>>> {
                $crate::bindings::tenantry::plugin::kv::Host::get(self, key).await
            }
            async fn set(&mut self, key: String, value: Vec<u8>) -> $crate::HostResult<()> {
                $crate::bindings::tenantry::plugin::kv::Host::set(self, key, value).await
            }
            async fn delete(&mut self, key: String) -> $crate::HostResult<bool> {
                $crate::bindings::tenantry::plugin::kv::Host::delete(self, key).await
            }
            async fn list_keys(&mut self, prefix: String) -> $crate::HostResult<Vec<String>> {
                $crate::bindings::tenantry::plugin::kv::Host::list_keys(self, prefix).await
            }
        }
    };
    (secrets for $t:ty) => {
        impl $crate::bindings_v2::tenantry::plugin::secrets::Host for $t {
            async fn get(&mut self, name: String) -> $crate::HostResult<Option<String>> {
                $crate::bindings::tenantry::plugin::secrets::Host::get(self, name).await
            }
        }
    };
    (config for $t:ty) => {
        impl $crate::bindings_v2::tenantry::plugin::config::Host for $t {
            async fn get(&mut self) -> wasmtime::Result<String> {
                $crate::bindings::tenantry::plugin::config::Host::get(self).await
            }
        }
    };
    (log for $t:ty) => {
        impl $crate::bindings_v2::tenantry::plugin::log::Host for $t {
            async fn log(
                &mut self,
                level: $crate::bindings_v2::tenantry::plugin::log::Level,
                message: String,
            ) -> wasmtime::Result<()> {
                use $crate::bindings::tenantry::plugin::log::Level as V1;
                use $crate::bindings_v2::tenantry::plugin::log::Level as V2;
                let level = match level {
                    V2::Debug => V1::Debug,
                    V2::Info => V1::Info,
                    V2::Warn => V1::Warn,
                    V2::Error => V1::Error,
                };
                $crate::bindings::tenantry::plugin::log::Host::log(self, level, message).await
            }
        }
    };
    (tools for $t:ty) => {
        impl $crate::bindings_v2::tenantry::plugin::tools::Host for $t {
            async fn call(
                &mut self,
                plugin: String,
                action: String,
                input: String,
            ) -> $crate::HostResult<String> {
                $crate::bindings::tenantry::plugin::tools::Host::call(self, plugin, action, input)
                    .await
            }
        }
    };
}

/// What a fallible host function returns: a trap (outer) or the guest's error.
pub type HostResult<T> = wasmtime::Result<Result<T, GuestError>>;

pub use bindings::tenantry::plugin::types::Error as GuestError;

/// The install a sandbox runs for. Set by the host; guests cannot name another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstallRef {
    pub org_id: OrgId,
    pub install_id: InstallId,
}

/// What every capability may use to build its state for one invocation.
pub struct InstanceCtx<'a> {
    pub install: InstallRef,
    /// What the install was granted (capabilities read their own part).
    pub grants: &'a Grants,
    /// The install's validated config (JSON).
    pub config: &'a serde_json::Value,
    /// The execution's budget, shared with nested tool calls.
    pub meter: &'a Arc<Meter>,
    /// Tool-call nesting depth: 0 when a principal called.
    pub depth: u32,
}

/// One host capability, as a unit.
///
/// A factor value holds the capability's engine-wide settings (limits, policy); it
/// lives as long as the runtime. [`Factor::add_to_linker`] wires the capability's
/// WIT interface(s) once per engine, reaching the per-invocation state through
/// `get`; [`Factor::prepare`] builds that state for each invocation. Grants are
/// enforced by the state at call time (every import is always linked, so one
/// compiled component serves every install of an artifact).
pub trait Factor: Send + Sync + 'static {
    /// Per-invocation state, kept in the store.
    type State: Send + 'static;
    /// What the server supplies for each invocation (its storage, …); `()` if none.
    type Backend: Clone + Send + Sync + 'static;

    fn add_to_linker<T: Send + 'static>(
        linker: &mut Linker<T>,
        get: fn(&mut T) -> &mut Self::State,
    ) -> wasmtime::Result<()>;

    fn prepare(&self, cx: &InstanceCtx<'_>, backend: &Self::Backend) -> Self::State;
}

/// Why a host call stopped the guest (a trap, not an error the guest can handle).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    MaxHostCalls,
    Timeout,
}

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Stop::MaxHostCalls => "host-call limit reached",
            Stop::Timeout => "wall-time limit reached during a host call",
        })
    }
}

impl std::error::Error for Stop {}

/// Budget and bookkeeping shared by all capabilities of one invocation (and by
/// the nested invocations its tool calls start).
#[derive(Debug)]
pub struct Meter {
    max_host_calls: u64,
    deadline: Instant,
    host_calls: AtomicU64,
    stopped: Mutex<Option<Stop>>,
    denied: Mutex<Vec<String>>,
    memory_limit_hit: AtomicBool,
    /// The execution's CPU budget (fuel) still unspent, shared by the caller and
    /// every nested tool call; stores settle against it (see `spend_fuel`).
    fuel_left: AtomicU64,
}

impl Meter {
    pub fn new(max_host_calls: u64, deadline: Instant, fuel: u64) -> Self {
        Self {
            max_host_calls,
            deadline,
            fuel_left: AtomicU64::new(fuel),
            host_calls: AtomicU64::new(0),
            stopped: Mutex::new(None),
            denied: Mutex::new(Vec::new()),
            memory_limit_hit: AtomicBool::new(false),
        }
    }

    /// Charges one host call. An `Err` must be returned as a trap.
    pub fn charge(&self) -> wasmtime::Result<()> {
        let n = self.host_calls.fetch_add(1, Ordering::Relaxed) + 1;
        if n > self.max_host_calls {
            return Err(self.stop(Stop::MaxHostCalls));
        }
        if Instant::now() >= self.deadline {
            return Err(self.stop(Stop::Timeout));
        }
        Ok(())
    }

    /// Records why the guest is being stopped and returns the trap error.
    pub fn stop(&self, why: Stop) -> wasmtime::Error {
        if let Ok(mut s) = self.stopped.lock() {
            s.get_or_insert(why);
        }
        wasmtime::Error::new(why)
    }

    /// Time left before the invocation's deadline (for host-call timeouts).
    pub fn remaining(&self) -> std::time::Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Records a refused capability attempt (for the audit trail).
    pub fn deny(&self, what: impl Into<String>) {
        if let Ok(mut d) = self.denied.lock()
            && d.len() < 100
        {
            d.push(what.into());
        }
    }

    pub fn host_calls(&self) -> u64 {
        self.host_calls
            .load(Ordering::Relaxed)
            .min(self.max_host_calls)
    }
    pub fn max_host_calls(&self) -> u64 {
        self.max_host_calls
    }
    pub fn stopped(&self) -> Option<Stop> {
        self.stopped.lock().ok().and_then(|s| *s)
    }
    pub fn denied(&self) -> Vec<String> {
        self.denied.lock().map(|d| d.clone()).unwrap_or_default()
    }
    pub fn set_memory_limit_hit(&self) {
        self.memory_limit_hit.store(true, Ordering::Relaxed);
    }
    pub fn memory_limit_hit(&self) -> bool {
        self.memory_limit_hit.load(Ordering::Relaxed)
    }

    /// Charges `used` fuel to the shared budget and returns what is left (0 once
    /// it is spent).
    pub fn spend_fuel(&self, used: u64) -> u64 {
        let before = self
            .fuel_left
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |f| {
                Some(f.saturating_sub(used))
            })
            .unwrap_or(0);
        before.saturating_sub(used)
    }

    pub fn fuel_left(&self) -> u64 {
        self.fuel_left.load(Ordering::Relaxed)
    }
}

/// Runs a host-side future with the invocation's remaining wall time; past the
/// deadline the guest is stopped (epochs do not interrupt a guest blocked in a host
/// call, so every blocking capability goes through this).
pub async fn with_deadline<T>(
    meter: &Meter,
    fut: impl std::future::Future<Output = T>,
) -> wasmtime::Result<T> {
    match tokio_timeout(meter.remaining(), fut).await {
        Some(v) => Ok(v),
        None => Err(meter.stop(Stop::Timeout)),
    }
}

async fn tokio_timeout<T>(
    d: std::time::Duration,
    fut: impl std::future::Future<Output = T>,
) -> Option<T> {
    tokio::time::timeout(d, fut).await.ok()
}

/// An error from a capability backend (the server's implementation), turned into
/// the guest-visible WIT error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendError {
    NotFound(String),
    LimitExceeded(String),
    PermissionDenied(String),
    Failed(String),
}

impl From<BackendError> for GuestError {
    fn from(e: BackendError) -> Self {
        match e {
            BackendError::NotFound(m) => GuestError::NotFound(m),
            BackendError::LimitExceeded(m) => GuestError::LimitExceeded(m),
            BackendError::PermissionDenied(m) => GuestError::PermissionDenied(m),
            BackendError::Failed(m) => GuestError::Failed(m),
        }
    }
}
