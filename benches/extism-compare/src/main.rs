//! Tenantry vs Extism: a fresh sandbox per invocation of a trivial echo plugin.
//!
//! Run: `scripts/bench-compare` (or `cargo run --release --locked` here).
//! `SAMPLES` (default 20000) invocations per side, interleaved in `ROUNDS` (4)
//! blocks so both sides see the same machine noise; every invocation is timed on
//! its own and the report gives median, p90 and p99 and the Extism/Tenantry ratios.
//!
//! - Tenantry, through `tenantry_runtime::Runtime::invoke` (fresh `Store` +
//!   limiter + fuel + epoch deadline + instantiate from the `InstancePre` +
//!   `invoke` + drop: the server's own code path, with the free tier's limits),
//!   for two plugins:
//!   - like for like, an echo written in WAT as a component
//!     (`examples/plugins-wat/echo.wat`: returns its input);
//!   - the example Rust `echo` component (~100 KB, built with the SDK: parses the
//!     JSON input, makes one `config` host call, serialises JSON).
//! - Extism 1.30: an echo written in WAT against Extism's ABI (`src/echo.wat`),
//!   compiled once into a `CompiledPlugin`; each invocation is
//!   `Plugin::new_from_compiled` (new store, kernel + plugin instances) +
//!   `call("echo", input)` + drop. That is Extism's cheapest per-call equivalent
//!   of a fresh instance; compiling is excluded on both sides. Fuel is on (the same
//!   budget as Tenantry's) so both sides meter CPU.

#[path = "../../../crates/runtime/tests/support/mod.rs"]
mod support;

use extism::{CompiledPlugin, Plugin, PluginBuilder};
use std::time::{Duration, Instant};
use tenantry_core::Outcome;
use tenantry_core::manifest::Grants;
use tenantry_runtime::{Limits, RuntimeConfig};

const INPUT: &str = r#"{"message":"hello","n":42}"#;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

struct Summary {
    median: Duration,
    p99: Duration,
}

fn report(name: &str, d: &mut [Duration]) -> Summary {
    d.sort();
    let s = Summary {
        median: percentile(d, 0.5),
        p99: percentile(d, 0.99),
    };
    println!(
        "{name:<44} n={:<6} median {:>8.2} µs   p90 {:>8.2} µs   p99 {:>8.2} µs",
        d.len(),
        us(s.median),
        us(percentile(d, 0.9)),
        us(s.p99)
    );
    s
}

fn extism_compiled(wasm: &[u8], pooling: bool) -> CompiledPlugin {
    let mut b = PluginBuilder::new(wasm)
        .with_wasi(false)
        .with_cache_disabled()
        .with_fuel_limit(Limits::default().fuel);
    if pooling {
        let mut pool = wasmtime43::PoolingAllocationConfig::new();
        pool.total_memories(64)
            .total_tables(64)
            .total_core_instances(64)
            .max_memory_size(64 << 20);
        let mut c = wasmtime43::Config::new();
        c.allocation_strategy(wasmtime43::InstanceAllocationStrategy::Pooling(pool));
        b = b.with_wasmtime_config(c);
    }
    CompiledPlugin::new(b).expect("compile the Extism plugin")
}

fn extism_once(compiled: &CompiledPlugin) -> Vec<u8> {
    let mut p = Plugin::new_from_compiled(compiled).expect("new Extism plugin");
    p.call::<&str, Vec<u8>>("echo", INPUT).expect("Extism call")
}

fn main() {
    let samples = env_usize("SAMPLES", 20_000);
    let rounds = env_usize("ROUNDS", 4).max(1);
    let per_round = (samples / rounds).max(1);
    let warmup = env_usize("WARMUP", 2_000);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio");

    // Tenantry.
    let w = support::world(RuntimeConfig::default());
    let echo = w.load("echo");
    let wat_echo =
        w.rt.load(
            "wat-echo",
            &wat::parse_str(include_str!("../../../examples/plugins-wat/echo.wat"))
                .expect("echo.wat component"),
        )
        .expect("load the WAT echo");
    let install = support::install();
    let (grants, limits) = (Grants::default(), Limits::default());
    let (w, grants) = (&w, &grants);
    let tenantry_once = |plugin| async move {
        let r = w.run(plugin, install, "echo", INPUT, grants, limits).await;
        assert_eq!(r.outcome, Outcome::Ok, "{r:?}");
        r
    };
    let r = rt.block_on(tenantry_once(&echo));
    let v: serde_json::Value =
        serde_json::from_str(r.output.as_deref().unwrap_or("")).expect("json");
    assert_eq!(
        v["echo"],
        serde_json::from_str::<serde_json::Value>(INPUT).expect("json")
    );
    let r = rt.block_on(tenantry_once(&wat_echo));
    assert_eq!(r.output.as_deref(), Some(INPUT));

    // Extism.
    let wasm = wat::parse_str(include_str!("echo.wat")).expect("echo.wat");
    let compiled = extism_compiled(&wasm, false);
    let pooled = extism_compiled(&wasm, true);
    assert_eq!(extism_once(&compiled), INPUT.as_bytes());
    assert_eq!(extism_once(&pooled), INPUT.as_bytes());

    for _ in 0..warmup {
        rt.block_on(tenantry_once(&wat_echo));
        rt.block_on(tenantry_once(&echo));
        extism_once(&compiled);
        extism_once(&pooled);
    }

    let (mut tw, mut t, mut e, mut ep) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        rt.block_on(async {
            for (plugin, times) in [(&wat_echo, &mut tw), (&echo, &mut t)] {
                for _ in 0..per_round {
                    let s = Instant::now();
                    std::hint::black_box(tenantry_once(plugin).await);
                    times.push(s.elapsed());
                }
            }
        });
        for _ in 0..per_round {
            let s = Instant::now();
            std::hint::black_box(extism_once(&compiled));
            e.push(s.elapsed());
        }
        for _ in 0..per_round {
            let s = Instant::now();
            std::hint::black_box(extism_once(&pooled));
            ep.push(s.elapsed());
        }
    }
    // Extism's one-call API, `Plugin::new(wasm, [], false)`, compiles every time.
    let naive_n = env_usize("NAIVE_SAMPLES", 200);
    let mut naive = Vec::with_capacity(naive_n);
    for _ in 0..naive_n {
        let s = Instant::now();
        let mut p = Plugin::new(&wasm, [], false).expect("Plugin::new");
        std::hint::black_box(p.call::<&str, Vec<u8>>("echo", INPUT).expect("call"));
        drop(p);
        naive.push(s.elapsed());
    }

    println!(
        "input: {INPUT} ({} bytes); {rounds} interleaved rounds",
        INPUT.len()
    );
    let ts = report("tenantry: WAT echo, fresh instance + invoke", &mut tw);
    let rs = report("tenantry: Rust SDK echo, same", &mut t);
    let es = report("extism: WAT echo, new_from_compiled + call", &mut e);
    let eps = report("extism: same, pooling allocator", &mut ep);
    report("extism: Plugin::new(wasm) + call (compiles)", &mut naive);
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
    for (name, x) in [("WAT echo", &ts), ("Rust SDK echo", &rs)] {
        println!(
            "extism / tenantry {name:<14} median {:>5.2}x  p99 {:>5.2}x   (pooled extism: median {:>5.2}x  p99 {:>5.2}x)",
            ratio(es.median, x.median),
            ratio(es.p99, x.p99),
            ratio(eps.median, x.median),
            ratio(eps.p99, x.p99),
        );
    }
    println!(
        "targets (WAT echo, like for like): tenantry median <= 10 µs: {}; >= 10x faster than extism (median): {}",
        if ts.median <= Duration::from_micros(10) {
            "met"
        } else {
            "NOT met"
        },
        if ratio(es.median, ts.median) >= 10.0 {
            "met"
        } else {
            "NOT met"
        },
    );
}
