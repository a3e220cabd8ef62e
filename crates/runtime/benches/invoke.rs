//! Fresh-instance invocation cost, in process.
//!
//! Run: `cargo bench -p tenantry-runtime --bench invoke` (`SAMPLES` per plugin,
//! 30,000 by default).
//!
//! One sample is one complete invocation through `Runtime::invoke`, the server's
//! own path: new `Store` + limiter + fuel + epoch deadline + instantiate from the
//! pre-linked component + `invoke` + drop, timed on its own. Three plugins are
//! measured in interleaved rounds of the same run (the machine is noisy; compare
//! within a run):
//! - `examples/plugins-wat/echo.wat`, the trivial plugin: a hand-written component
//!   that returns its input (no imports, no guest runtime). The target (≤ 10 µs
//!   median) applies to it.
//! - the example Rust `echo` plugin (~100 KB component built with the SDK: parses
//!   and re-serialises JSON, one `config` host call);
//! - the Rust `attacks` plugin's no-op action (the SDK's fixed cost, no host call).

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};
use tenantry_core::manifest::Grants;
use tenantry_runtime::*;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn report(name: &str, d: &[Duration]) -> Duration {
    let median = percentile(d, 0.5);
    println!(
        "{name:<40} n={:<6} median {:>7.2} µs   p90 {:>7.2} µs   p99 {:>7.2} µs",
        d.len(),
        median.as_secs_f64() * 1e6,
        percentile(d, 0.9).as_secs_f64() * 1e6,
        percentile(d, 0.99).as_secs_f64() * 1e6
    );
    median
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio");
    let samples: usize = std::env::var("SAMPLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30_000);
    rt.block_on(async {
        let w = support::world(RuntimeConfig::default());
        let wat = wat::parse_file(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../examples/plugins-wat/echo.wat"
        ))
        .expect("examples/plugins-wat/echo.wat");
        let cases: Vec<(&str, Arc<LoadedPlugin>, &str)> = vec![
            (
                "trivial plugin (WAT echo)",
                w.rt.load("wat-echo", &wat).expect("load"),
                "echo",
            ),
            ("Rust SDK echo (JSON + config call)", w.load("echo"), "echo"),
            ("Rust SDK no-op (attacks.ok)", w.load("attacks"), "ok"),
        ];
        let (install, grants, limits) = (support::install(), Grants::default(), Limits::default());
        let input = r#"{"message":"hello","n":42}"#;
        let rounds = 10;
        let mut times: Vec<Vec<Duration>> = vec![Vec::with_capacity(samples); cases.len()];
        for round in 0..=rounds {
            for (i, (_, plugin, action)) in cases.iter().enumerate() {
                // Round 0 warms up (caches, pool slots) and is not recorded.
                let n = if round == 0 { 2_000 } else { samples / rounds };
                for _ in 0..n {
                    let t = Instant::now();
                    let r = w.run(plugin, install, action, input, &grants, limits).await;
                    let d = t.elapsed();
                    assert_eq!(r.outcome, tenantry_core::Outcome::Ok, "{:?}", r.error);
                    if round > 0 {
                        times[i].push(d);
                    }
                }
            }
        }
        let mut medians = Vec::new();
        for ((name, _, _), d) in cases.iter().zip(&mut times) {
            d.sort();
            medians.push(report(name, d));
        }
        let n = 20_000;
        let t = Instant::now();
        for _ in 0..n {
            std::hint::black_box(wasmtime_wasi::WasiCtx::builder().build());
        }
        println!(
            "  of which WasiCtx::builder().build()    {:>7.2} µs",
            t.elapsed().as_secs_f64() * 1e6 / n as f64
        );
        println!(
            "target ≤ 10 µs median for the trivial plugin: {}",
            if medians[0] <= Duration::from_micros(10) {
                "met"
            } else {
                "NOT met"
            }
        );
    });
}
