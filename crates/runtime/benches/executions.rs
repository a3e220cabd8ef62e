//! Code execution in process: a fresh engine instance per script.
//!
//! Run: `cargo bench -p tenantry-runtime --bench executions` (`SAMPLES` per case,
//! 2,000 by default), or `scripts/bench-executions`, which also runs the same
//! scripts in Node.js with `isolated-vm` and `quickjs-emscripten` for comparison.
//!
//! One sample is one complete execution through `Runtime::invoke`, as the server
//! runs it: a fresh instance of `engines/javascript/engine.wasm` (SpiderMonkey),
//! the script compiled and run, its value serialised, the instance dropped. Two
//! scripts, interleaved in rounds of one run:
//! - `return 1 + 1`;
//! - three `await callTool(...)` calls to the Rust `echo` example plugin, each a
//!   nested invocation in a fresh sandbox of its own (through the tests' in-memory
//!   tool backend, as `crates/runtime/tests` use).
//!
//! Targets (issue 21): p50 ≤ 1 ms and ≤ 2 ms.

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};
use tenantry_core::InstallId;
use tenantry_core::manifest::Grants;
use tenantry_runtime::*;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio");
    let samples: usize = std::env::var("SAMPLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2_000);
    rt.block_on(async {
        let w = support::world(RuntimeConfig::default());
        let bytes = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../engines/javascript/engine.wasm"
        ))
        .expect("engines/javascript/engine.wasm");
        let t = Instant::now();
        let engine = w.rt.load("engine", &bytes).expect("load the engine");
        println!("compiling the engine ({} bytes): {:.2?}", bytes.len(), t.elapsed());
        let caller = support::install();
        let echo = InstallRef {
            org_id: caller.org_id,
            install_id: InstallId::new(),
        };
        let loaded = w.load("echo");
        w.tools
            .installs
            .lock()
            .expect("installs")
            .insert("@b/echo".into(), (echo, loaded, Grants::default()));
        let grants = Grants {
            tools: vec!["@b/echo".into()],
            ..Grants::default()
        };
        let cases = [
            ("return 1 + 1", "return 1 + 1"),
            (
                "3 tool calls (Rust echo)",
                "let n = 0;\
                 for (let i = 0; i < 3; i++) n += (await callTool('@b/echo.echo', {i})).echo.i;\
                 return n",
            ),
        ];
        let inputs: Vec<String> = cases
            .iter()
            .map(|(_, code)| {
                serde_json::json!({"code": code, "input": null, "max_log_lines": 100,
                    "max_log_bytes": 16384, "max_output_bytes": 102400})
                .to_string()
            })
            .collect();
        let limits = Limits {
            max_host_calls: 100,
            ..Limits::default()
        };
        let rounds = 10;
        let mut times: Vec<Vec<Duration>> = vec![Vec::with_capacity(samples); cases.len()];
        for round in 0..=rounds {
            for (i, input) in inputs.iter().enumerate() {
                // Round 0 warms up and is not recorded.
                let n = if round == 0 { 50 } else { samples / rounds };
                for _ in 0..n {
                    let t = Instant::now();
                    let r = w.run(&engine, caller, "run", input, &grants, limits).await;
                    let d = t.elapsed();
                    let out = support::out(&r);
                    assert_eq!(out["ok"], true, "{out}");
                    if round > 0 {
                        times[i].push(d);
                    }
                }
            }
        }
        for ((name, _), (d, target)) in cases.iter().zip(times.iter_mut().zip([1.0, 2.0])) {
            d.sort();
            let p50 = percentile(d, 0.5).as_secs_f64() * 1e3;
            println!(
                "{name:<28} n={:<5} p50 {p50:>6.3} ms   p90 {:>6.3} ms   p99 {:>6.3} ms   target p50 ≤ {target} ms: {}",
                d.len(),
                percentile(d, 0.9).as_secs_f64() * 1e3,
                percentile(d, 0.99).as_secs_f64() * 1e3,
                if p50 <= target { "met" } else { "NOT met" }
            );
        }
    });
}
