//! `tenantry-runtime`: runs one plugin action in a fresh WebAssembly sandbox.
//!
//! One [`Runtime`] per process holds one wasmtime `Engine` (pooling allocator,
//! copy-on-write memory images, fuel, epoch interruption), one `Linker` with every
//! capability, and a cache of compiled components by artifact digest. Each
//! [`Runtime::invoke`] builds a fresh `Store` and instance, runs the action under the
//! invocation's [`Limits`], and maps whatever happened to a stable
//! [`Outcome`](tenantry_core::Outcome).
//!
//! Capabilities are composed here (Spin style): each is a
//! [`Factor`](tenantry_world::Factor) in its own crate (`tenantry-host-kv`,
//! `-secrets`, `-http`, `-tools`; `config` and `log`, which need no backend, in
//! `builtins`) that owns its linker wiring and builds its per-invocation state from
//! the install's grants, the meter and the backend in [`Backends`]; `factors` is the
//! one list of them. Every import is always linked, so one pre-instantiated
//! component serves every install of an artifact: what an install may do is decided
//! at call time from the grants in host state, and a refused call returns
//! `permission-denied` to the guest and is recorded for the audit trail.
//!
//! This crate must not depend on storage or HTTP serving: the server supplies
//! backends through the capability traits.

mod builtins;
mod engine;
mod factors;
mod guests;

pub use engine::{LoadError, LoadedPlugin, Runtime, RuntimeConfig};
pub use guests::GuestPool;
pub use tenantry_host_http::EgressPolicy;
pub use tenantry_host_kv::{KvBackend, KvLimits};
pub use tenantry_host_secrets::SecretsBackend;
pub use tenantry_host_tools::{Nested, ToolBackend, ToolError};
pub use tenantry_world::{BackendError, InstallRef};

use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;
use tenantry_core::Outcome;
use tenantry_core::manifest::Grants;

/// Hard limits of one invocation (from the org's tier).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Linear memory, bytes.
    pub memory_bytes: u64,
    /// CPU budget in wasmtime fuel units (≈ one per wasm instruction).
    pub fuel: u64,
    pub wall_time: Duration,
    pub max_host_calls: u64,
    pub max_input_bytes: usize,
    pub max_output_bytes: usize,
}

impl Default for Limits {
    /// The free tier's numbers (BRIEF §7), with a CPU budget of 2·10⁹ fuel.
    fn default() -> Self {
        Self {
            memory_bytes: 32 << 20,
            fuel: 2_000_000_000,
            wall_time: Duration::from_secs(5),
            max_host_calls: 10,
            max_input_bytes: 1 << 20,
            max_output_bytes: 100 << 10,
        }
    }
}

/// The server's implementations of the capabilities.
#[derive(Clone)]
pub struct Backends {
    pub kv: Arc<dyn KvBackend>,
    pub secrets: Arc<dyn SecretsBackend>,
    pub tools: Arc<dyn ToolBackend>,
}

/// One call of one action of one install.
pub struct Invocation<'a> {
    pub install: InstallRef,
    pub action: &'a str,
    /// JSON text.
    pub input: &'a str,
    /// The install's validated config.
    pub config: &'a serde_json::Value,
    pub grants: &'a Grants,
    pub limits: Limits,
    pub backends: Backends,
    /// Set when this is a tool call made by another invocation.
    pub nested: Option<Nested>,
}

/// Measurements of one invocation.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Stats {
    pub duration_us: u64,
    pub fuel: u64,
    pub peak_memory_bytes: u64,
    pub host_calls: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InvocationResult {
    pub outcome: Outcome,
    /// JSON text on `OK`.
    pub output: Option<String>,
    /// A message safe to show the caller when not `OK`.
    pub error: Option<String>,
    pub stats: Stats,
    /// Capability attempts that were refused (for the audit trail).
    pub denied: Vec<String>,
}
