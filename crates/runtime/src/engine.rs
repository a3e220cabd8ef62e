//! The engine, the compile cache, and one invocation from store to outcome.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tenantry_core::Outcome;
use tenantry_host_http::EgressPolicy;
use tenantry_host_kv::KvLimits;
use tenantry_world::bindings::{PluginPre, tenantry::plugin as wit};
use tenantry_world::{GuestError, InstanceCtx, Meter, Stop};
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{
    AsContextMut, Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, Trap,
};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::factors::{Factors, States};
use crate::guests::{GuestPool, GuestThreads};
use crate::{Invocation, InvocationResult, Stats};

/// Bytes of each pooled table and async stack kept resident (reset with `memset`
/// rather than `madvise`) between invocations: fewer page faults per instantiate.
const KEEP_RESIDENT: usize = 64 << 10;
/// Dirty bytes of each pooled linear memory kept resident between invocations.
/// With `PAGEMAP_SCAN` (Linux ≥ 6.7) the pool finds the pages the guest wrote and
/// copies the image back over just those, instead of `madvise` + page faults on the
/// next use; a Rust SDK plugin's fresh instance + invoke drops from ~33 µs to
/// ~12 µs (docs/benchmarks.md). Guests that dirty more than this get the rest
/// decommitted as before. Without it (older kernels) the pool would `memset` the
/// first N bytes whether dirty or not, so there the table/stack figure is used.
const MEM_KEEP_RESIDENT_DIRTY: usize = 1 << 20;

/// Engine-wide settings (the per-invocation ones are [`crate::Limits`]).
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Instances alive at once (pool size).
    pub max_instances: u32,
    /// Largest linear memory any tier may grant.
    pub max_memory_bytes: u64,
    /// Wasm stack per invocation.
    pub max_wasm_stack: usize,
    /// Epoch tick: wall-time limits are enforced to this granularity.
    pub epoch_tick: Duration,
    /// Deepest tool-call chain.
    pub max_tool_depth: u32,
    pub egress: EgressPolicy,
    pub kv: KvLimits,
    /// Where guest code runs. `None`: on the caller's executor (tests, benches,
    /// embedding). The server uses [`GuestPool::for_this_machine`]: foreground
    /// and background guest threads (see `crate::guests`).
    pub guest_pool: Option<GuestPool>,
    /// Where compiled components are kept across restarts (wasmtime's cache: keyed
    /// by the wasm's hash and the compiler's settings, so an entry is only ever used
    /// for the same bytes). `None`: compile in memory only.
    pub compile_cache_dir: Option<std::path::PathBuf>,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            max_instances: 256,
            max_memory_bytes: 256 << 20,
            max_wasm_stack: 512 << 10,
            epoch_tick: Duration::from_millis(1),
            max_tool_depth: 4,
            egress: EgressPolicy::default(),
            kv: KvLimits::default(),
            guest_pool: None,
            compile_cache_dir: None,
        }
    }
}

/// Why a component cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("not a valid WebAssembly component: {0}")]
    Malformed(String),
    #[error("the component imports something Tenantry does not provide: {0}")]
    UnsupportedImport(String),
    #[error("the component does not export the tenantry:plugin world: {0}")]
    MissingExport(String),
    #[error("engine setup failed: {0}")]
    Engine(String),
}

/// A compiled, pre-linked component.
pub struct LoadedPlugin {
    pub digest: String,
    pre: PluginPre<HostState>,
}

/// Everything a store holds: WASI (empty: no files, env, args or sockets), the
/// limiter, and every capability's state.
pub(crate) struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: Limiter,
    pub(crate) capabilities: States,
    fuel: FuelAccount,
}

impl tenantry_host_http::WasiHttpParts for HostState {
    fn wasi_http_parts(&mut self) -> (&mut tenantry_host_http::HttpHost, &mut ResourceTable) {
        (&mut self.capabilities.http, &mut self.table)
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Memory and table limits of one store; records the peak and whether the limit
/// was what stopped growth.
struct Limiter {
    memory_limit: usize,
    peak: usize,
    meter: Arc<Meter>,
}

impl wasmtime::ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_limit {
            self.meter.set_memory_limit_hit();
            return Ok(false);
        }
        self.peak = self.peak.max(desired);
        Ok(true)
    }
    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

/// The sandbox runtime. Cheap to share (`Arc` inside).
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    linker: Linker<HostState>,
    cache: Mutex<HashMap<String, Arc<LoadedPlugin>>>,
    config: RuntimeConfig,
    factors: Factors,
    /// Stores alive now (instances being set up, running or torn down).
    live: AtomicUsize,
    /// Epochs the ticker has advanced (a stalled ticker means no wall-time limit).
    ticks: Arc<AtomicU64>,
    ticker_stop: Arc<AtomicBool>,
    guests: Option<GuestThreads>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

/// An [`Invocation`] that owns its data, to cross to the guest threads.
struct OwnedInvocation {
    install: tenantry_world::InstallRef,
    action: String,
    input: String,
    config: serde_json::Value,
    grants: tenantry_core::manifest::Grants,
    limits: crate::Limits,
    backends: crate::Backends,
}

impl OwnedInvocation {
    fn new(inv: Invocation<'_>) -> Self {
        Self {
            install: inv.install,
            action: inv.action.to_string(),
            input: inv.input.to_string(),
            config: inv.config.clone(),
            grants: inv.grants.clone(),
            limits: inv.limits,
            backends: inv.backends,
        }
    }

    fn as_invocation(&self) -> Invocation<'_> {
        Invocation {
            install: self.install,
            action: &self.action,
            input: &self.input,
            config: &self.config,
            grants: &self.grants,
            limits: self.limits,
            backends: self.backends.clone(),
            nested: None,
        }
    }
}

fn engine_err(e: impl std::fmt::Display) -> LoadError {
    LoadError::Engine(e.to_string())
}

impl Runtime {
    pub fn new(config: RuntimeConfig) -> Result<Self, LoadError> {
        let mut pool = PoolingAllocationConfig::new();
        let n = config.max_instances;
        let memory_keep_resident = if PoolingAllocationConfig::is_pagemap_scan_available() {
            MEM_KEEP_RESIDENT_DIRTY
        } else {
            KEEP_RESIDENT
        };
        pool.total_component_instances(n)
            .total_core_instances(n * 16)
            .total_memories(n * 2)
            .total_tables(n * 16)
            .max_core_instances_per_component(16)
            .max_memories_per_component(2)
            .max_tables_per_component(16)
            .max_memory_size(usize::try_from(config.max_memory_bytes).map_err(engine_err)?)
            .linear_memory_keep_resident(memory_keep_resident)
            .table_keep_resident(KEEP_RESIDENT)
            .async_stack_keep_resident(KEEP_RESIDENT)
            .pagemap_scan(wasmtime::Enabled::Auto);
        let mut c = Config::new();
        c.wasm_component_model(true)
            .consume_fuel(true)
            .epoch_interruption(true)
            .max_wasm_stack(config.max_wasm_stack)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        if let Some(dir) = &config.compile_cache_dir {
            let mut cache = wasmtime::CacheConfig::new();
            cache.with_directory(dir);
            c.cache(Some(wasmtime::Cache::new(cache).map_err(engine_err)?));
        }
        let engine = Engine::new(&c).map_err(engine_err)?;

        let mut linker: Linker<HostState> = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(engine_err)?;
        Factors::add_to_linker(&mut linker).map_err(engine_err)?;
        wit::types::add_to_linker::<_, HasSelf<HostState>>(&mut linker, |s| s)
            .map_err(engine_err)?;
        // 0.2.0's `types` holds only the `error` type (0.1.0's, by `with`): an
        // empty instance satisfies its import.
        linker
            .instance("tenantry:plugin/types@0.2.0")
            .map_err(engine_err)?;

        // The epoch ticker: wall-time limits are deadlines in ticks.
        let ticker_stop = Arc::new(AtomicBool::new(false));
        let ticks = Arc::new(AtomicU64::new(0));
        {
            let (engine, stop, tick) = (engine.clone(), ticker_stop.clone(), config.epoch_tick);
            let ticks = ticks.clone();
            std::thread::Builder::new()
                .name("tenantry-epoch".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(tick);
                        engine.increment_epoch();
                        ticks.fetch_add(1, Ordering::Relaxed);
                    }
                })
                .map_err(engine_err)?;
        }
        let factors = Factors::new(&config).map_err(engine_err)?;
        let guests = config
            .guest_pool
            .map(GuestThreads::new)
            .transpose()
            .map_err(engine_err)?;
        Ok(Self {
            inner: Arc::new(Inner {
                engine,
                linker,
                cache: Mutex::new(HashMap::new()),
                config,
                factors,
                live: AtomicUsize::new(0),
                ticks,
                ticker_stop,
                guests,
            }),
        })
    }

    /// Compiles (once per digest) and pre-links a component. CPU-heavy on first
    /// use: call it from a blocking context. The caller has already verified the
    /// artifact's digest and signature.
    pub fn load(&self, digest: &str, wasm: &[u8]) -> Result<Arc<LoadedPlugin>, LoadError> {
        if let Some(p) = self.cached(digest) {
            return Ok(p);
        }
        let component = Component::new(&self.inner.engine, wasm)
            .map_err(|e| LoadError::Malformed(format!("{e:#}")))?;
        let pre = self
            .inner
            .linker
            .instantiate_pre(&component)
            .map_err(|e| LoadError::UnsupportedImport(format!("{e:#}")))?;
        let pre = PluginPre::new(pre).map_err(|e| LoadError::MissingExport(format!("{e:#}")))?;
        let plugin = Arc::new(LoadedPlugin {
            digest: digest.to_string(),
            pre,
        });
        if let Ok(mut c) = self.inner.cache.lock() {
            c.insert(digest.to_string(), plugin.clone());
        }
        Ok(plugin)
    }

    /// A compiled component, if this digest was loaded before.
    pub fn cached(&self, digest: &str) -> Option<Arc<LoadedPlugin>> {
        self.inner
            .cache
            .lock()
            .ok()
            .and_then(|c| c.get(digest).cloned())
    }

    pub fn config(&self) -> &RuntimeConfig {
        &self.inner.config
    }

    /// Epoch ticks so far: readiness checks that they advance (wall-time limits
    /// depend on it).
    pub fn epoch_ticks(&self) -> u64 {
        self.inner.ticks.load(Ordering::Relaxed)
    }

    /// Sandboxes alive now: the pool's occupancy (of `max_instances`).
    pub fn live_instances(&self) -> usize {
        self.inner.live.load(Ordering::Relaxed)
    }

    /// Runs one action in a fresh instance, on the guest threads if the runtime
    /// has them (`crate::guests`; tool calls stay on the calling guest's thread).
    /// Never panics on guest behaviour.
    pub async fn invoke(
        &self,
        plugin: &Arc<LoadedPlugin>,
        inv: Invocation<'_>,
    ) -> InvocationResult {
        let pool = match &self.inner.guests {
            Some(pool) if inv.nested.is_none() => pool,
            _ => return self.run(plugin, inv).await,
        };
        let owned = OwnedInvocation::new(inv);
        let (this, plugin) = (self.clone(), plugin.clone());
        pool.run(Box::pin(async move {
            this.run(&plugin, owned.as_invocation()).await
        }))
        .await
    }

    /// One invocation, on the current executor.
    async fn run(&self, plugin: &LoadedPlugin, inv: Invocation<'_>) -> InvocationResult {
        let start = Instant::now();
        let _live = Live::count(&self.inner.live);
        let limits = inv.limits;
        let mut stats = Stats {
            bytes_in: inv.input.len() as u64,
            ..Stats::default()
        };
        let refuse = |outcome, msg: String, stats: Stats| InvocationResult {
            outcome,
            output: None,
            error: Some(msg),
            stats,
            denied: vec![],
        };
        if inv.input.len() > limits.max_input_bytes {
            return refuse(
                Outcome::InvalidInput,
                format!("input is over {} bytes", limits.max_input_bytes),
                stats,
            );
        }
        if let Err(e) = serde_json::from_str::<serde_json::Value>(inv.input) {
            return refuse(
                Outcome::InvalidInput,
                format!("input is not valid JSON: {e}"),
                stats,
            );
        }
        if limits.memory_bytes > self.inner.config.max_memory_bytes {
            return refuse(
                Outcome::Internal,
                "memory limit is above the runtime's maximum".into(),
                stats,
            );
        }
        let depth = inv.nested.as_ref().map_or(0, |n| n.depth);
        let meter = match &inv.nested {
            Some(n) => n.meter.clone(),
            None => Arc::new(Meter::new(
                limits.max_host_calls,
                start + limits.wall_time,
                limits.fuel,
            )),
        };
        // A tool call's store starts with what is left of the whole execution's
        // budget (never more than its own tier allows).
        let fuel_at_start = meter.fuel_left().min(limits.fuel);
        let cx = InstanceCtx {
            install: inv.install,
            grants: inv.grants,
            config: inv.config,
            meter: &meter,
            depth,
        };
        let state = HostState {
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
            limiter: Limiter {
                memory_limit: limits.memory_bytes as usize,
                peak: 0,
                meter: meter.clone(),
            },
            capabilities: self.inner.factors.prepare(&cx, &inv.backends),
            fuel: FuelAccount {
                settled: fuel_at_start,
                used: 0,
            },
        };
        let mut store = Store::new(&self.inner.engine, state);
        store.limiter(|s| &mut s.limiter);
        // Fuel is enabled in the engine config, so this cannot fail.
        let _ = store.set_fuel(fuel_at_start);
        let ticks = (meter.remaining().as_micros()
            / self.inner.config.epoch_tick.as_micros().max(1)) as u64
            + 1;
        store.set_epoch_deadline(ticks);
        store.epoch_deadline_trap();
        // Settle the guest's fuel against the execution's shared budget at every
        // crossing between wasm and host: a tool call starts with exactly what is
        // left, and what it spent is taken from the caller the moment it returns
        // (including the guest allocator calls the host makes to hand it results).
        store.call_hook(|mut ctx, _| {
            settle_fuel(&mut ctx);
            Ok(())
        });
        // Yield to the async executor periodically so a CPU-bound guest cannot hog a
        // worker thread (other tenants' requests keep being served).
        let _ = store.fuel_async_yield_interval(Some(100_000));

        let remaining = meter.remaining();
        let run = async {
            let instance = plugin.pre.instantiate_async(&mut store).await?;
            instance
                .call_invoke(&mut store, inv.action, inv.input)
                .await
        };
        let result = tokio::time::timeout(remaining, run).await;

        settle_fuel(&mut store.as_context_mut());
        // Each invocation reports its own share (tool calls have their own usage
        // records, so sums over records count every unit once).
        stats.fuel = store.data().fuel.used;
        stats.peak_memory_bytes = store.data().limiter.peak as u64;
        stats.host_calls = meter.host_calls();
        stats.duration_us = start.elapsed().as_micros() as u64;
        let denied = meter.denied();
        let done = |outcome, output: Option<String>, error: Option<String>, mut stats: Stats| {
            stats.bytes_out = output.as_ref().map_or(0, |o| o.len() as u64);
            InvocationResult {
                outcome,
                output,
                error,
                stats,
                denied: denied.clone(),
            }
        };
        match result {
            Err(_elapsed) => done(
                Outcome::Timeout,
                None,
                Some(format!(
                    "stopped after the {:?} wall-time limit",
                    limits.wall_time
                )),
                stats,
            ),
            Ok(Ok(Ok(out))) => {
                if out.len() > limits.max_output_bytes {
                    done(
                        Outcome::OutputTooLarge,
                        None,
                        Some(format!(
                            "output is {} bytes; the limit is {}",
                            out.len(),
                            limits.max_output_bytes
                        )),
                        stats,
                    )
                } else {
                    done(Outcome::Ok, Some(out), None, stats)
                }
            }
            Ok(Ok(Err(guest))) => {
                let (outcome, msg) = match guest {
                    GuestError::InvalidInput(m) => (Outcome::InvalidInput, m),
                    GuestError::PermissionDenied(m) => (Outcome::PermissionDenied, m),
                    GuestError::EgressDenied(m) => (Outcome::EgressDenied, m),
                    GuestError::NotFound(m) => (Outcome::NotFound, m),
                    GuestError::LimitExceeded(m) | GuestError::Failed(m) => {
                        (Outcome::PluginError, m)
                    }
                };
                done(outcome, None, Some(msg), stats)
            }
            Ok(Err(trap)) => {
                let (outcome, msg) = classify_trap(&trap, &meter, limits.wall_time);
                done(outcome, None, Some(msg), stats)
            }
        }
    }
}

/// Counts one live store for as long as it is held.
struct Live<'a>(&'a AtomicUsize);

impl<'a> Live<'a> {
    fn count(n: &'a AtomicUsize) -> Self {
        n.fetch_add(1, Ordering::Relaxed);
        Self(n)
    }
}

impl Drop for Live<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Fuel bookkeeping of one store against the execution's shared budget.
struct FuelAccount {
    /// The store's fuel when it was last settled.
    settled: u64,
    /// Fuel this store has spent (settled so far).
    used: u64,
}

/// Charges what the store spent since the last settlement to the shared budget,
/// and lowers the store's fuel to what is left of that budget.
fn settle_fuel(ctx: &mut wasmtime::StoreContextMut<'_, HostState>) {
    let Ok(left) = ctx.get_fuel() else { return };
    let account = &mut ctx.data_mut().fuel;
    let used = account.settled.saturating_sub(left);
    account.used += used;
    let budget = ctx.data().limiter.meter.spend_fuel(used);
    let now = left.min(budget);
    if now < left {
        let _ = ctx.set_fuel(now);
    }
    ctx.data_mut().fuel.settled = now;
}

fn classify_trap(e: &wasmtime::Error, meter: &Meter, wall: Duration) -> (Outcome, String) {
    match meter.stopped() {
        Some(Stop::MaxHostCalls) => {
            return (
                Outcome::MaxHostCalls,
                format!("more than {} host calls", meter.max_host_calls()),
            );
        }
        Some(Stop::Timeout) => {
            return (
                Outcome::Timeout,
                format!("stopped after the {wall:?} wall-time limit"),
            );
        }
        None => {}
    }
    if meter.memory_limit_hit() {
        return (
            Outcome::MemoryLimit,
            "the plugin reached its memory limit".into(),
        );
    }
    match e.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => (
            Outcome::OutOfFuel,
            "the plugin used its whole CPU budget".into(),
        ),
        Some(Trap::Interrupt) => (
            Outcome::Timeout,
            format!("stopped after the {wall:?} wall-time limit"),
        ),
        Some(Trap::StackOverflow) => (
            Outcome::PluginTrap,
            "the plugin overflowed its stack".into(),
        ),
        Some(t) => (Outcome::PluginTrap, format!("the plugin trapped: {t}")),
        // Not a wasm trap: the host refused what the guest did (a result pointer
        // outside its memory, a full WASI handle table, …). The reason is wasmtime's
        // own text about the guest's behaviour (host capabilities fail with typed
        // guest errors, never with host details), kept for the plugin's author.
        None => (
            Outcome::PluginTrap,
            format!(
                "the plugin failed to run: {}",
                tenantry_core::error::clip_to(&format!("{e:#}"), 400)
            ),
        ),
    }
}

impl tenantry_world::bindings::tenantry::plugin::types::Host for HostState {}
