//! Fresh-instance invocation cost, in process.
//!
//! Run: `cargo bench -p tenantry-runtime --bench invoke`
//!
//! Each sample is one complete invocation of the example `echo` plugin (a Rust
//! component, ~100 KB): new `Store` + limiter + fuel + instantiate from the
//! pre-linked component + `invoke("echo", "{}")` (the guest parses and serialises
//! JSON) + drop. Samples are timed one by one; the report gives median, p90 and p99,
//! and the same numbers with the pooling allocator replaced by on-demand allocation,
//! measured in the same run (ratios matter on a noisy machine).

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};
use tenantry_core::manifest::Grants;
use tenantry_runtime::*;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn measure(w: &support::World, samples: usize) -> Vec<Duration> {
    let echo = w.load("echo");
    let install = support::install();
    let grants = Grants::default();
    let limits = Limits::default();
    for _ in 0..2_000 {
        w.run(&echo, install, "echo", "{}", &grants, limits).await;
    }
    let mut out = Vec::with_capacity(samples);
    for _ in 0..samples {
        let t = Instant::now();
        let r = w.run(&echo, install, "echo", "{}", &grants, limits).await;
        out.push(t.elapsed());
        assert_eq!(r.outcome, tenantry_core::Outcome::Ok);
    }
    out.sort();
    out
}

fn report(name: &str, d: &[Duration]) -> Duration {
    let median = percentile(d, 0.5);
    println!(
        "{name:<34} n={:<6} median {:>8.2} µs   p90 {:>8.2} µs   p99 {:>8.2} µs",
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
    let samples = std::env::var("SAMPLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000);
    rt.block_on(async {
        let pooled = support::world(RuntimeConfig::default());
        let d = measure(&pooled, samples).await;
        let m = report("fresh instance + invoke (pooling)", &d);
        // Where the time goes: pieces measured alone.
        let n = 20_000;
        let t = Instant::now();
        for _ in 0..n {
            std::hint::black_box(wasmtime_wasi::WasiCtx::builder().build());
        }
        println!(
            "  WasiCtx::builder().build()        {:>8.2} µs",
            t.elapsed().as_secs_f64() * 1e6 / n as f64
        );
        let attacks = pooled.load("attacks");
        let (install, grants, limits) = (support::install(), Grants::default(), Limits::default());
        let mut v = Vec::new();
        for _ in 0..n {
            let t = Instant::now();
            pooled
                .run(&attacks, install, "ok", "{}", &grants, limits)
                .await;
            v.push(t.elapsed());
        }
        v.sort();
        report("  attacks.ok (no host call)", &v);
        let target = Duration::from_micros(10);
        println!(
            "target ≤ 10 µs median: {}",
            if m <= target { "met" } else { "NOT met" }
        );
    });
}
