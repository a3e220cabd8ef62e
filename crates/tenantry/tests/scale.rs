//! Memory at scale (a measurement, not a pass/fail test of the default suite).
//!
//! Run: `cargo test --release -p tenantry --test scale -- --ignored --nocapture`
//!
//! Registers 1,000 orgs × 10 installs through the HTTP API, lets the server idle, and
//! reads its resident memory; then runs 50 concurrent invocations and reports the
//! resident memory they add per invocation beyond the guest's own linear memory.

mod common;

use common::*;
use serde_json::json;
use std::time::Duration;

const ORGS: usize = 1_000;
const INSTALLS: usize = 10;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement; run explicitly (see the module docs)"]
async fn resident_memory_with_1000_orgs_and_10000_installs() {
    let s = Server::start();
    let p = publisher(&s, "scale").await;
    for i in 0..INSTALLS {
        publish_as_scale(&s, &p, "echo", &format!("p{i}")).await;
    }
    let rss_empty = s.rss_bytes();
    let started = std::time::Instant::now();
    let op = s.operator_key.clone();
    let mut owners = Vec::new();
    for chunk in (0..ORGS).collect::<Vec<_>>().chunks(8) {
        let futs = chunk.iter().map(|n| {
            let (s, op) = (&s, op.clone());
            async move {
                let org = json!({"name": format!("org{n}"), "tier": "enterprise"});
                let id = id_of(&s.create("/v1/orgs", &op, org).await);
                let (_, key) = provision_user(s, &id, "owner", "owner", "k").await;
                let mut first = String::new();
                for i in 0..INSTALLS {
                    let body =
                        json!({"plugin": format!("@scale/p{i}"), "config": {"greeting": "x"}});
                    let inst = s.install(&key, body).await;
                    if i == 0 {
                        first = inst;
                    }
                }
                (key, first)
            }
        });
        owners.extend(futures::future::join_all(futs).await);
    }
    let setup = started.elapsed();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss_idle = s.rss_bytes();
    println!("setup of {ORGS} orgs × {INSTALLS} installs over HTTP: {setup:?}");
    println!(
        "resident memory: {:.1} MiB before the orgs, {:.1} MiB with them, idle (target ≤ 256 MiB)",
        mib(rss_empty),
        mib(rss_idle)
    );

    // 50 concurrent invocations of a CPU-bound loop (each runs until its fuel or wall
    // time ends), sampled while they run.
    publish_as_scale(&s, &p, "attacks", "attacks").await;
    let mut targets = Vec::new();
    for (key, _) in owners.iter().take(50) {
        let i = s.install(key, json!({"plugin": "@scale/attacks"})).await;
        targets.push((key.clone(), i));
    }
    // Warm the compile cache first.
    s.ok(
        "POST",
        &invoke_path(&targets[0].1),
        Some(&targets[0].0),
        Some(json!({"action": "ok"})),
        200,
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_before = s.rss_bytes();
    let calls = targets.iter().map(|(key, id)| {
        let s = &s;
        async move {
            s.ok(
                "POST",
                &invoke_path(id),
                Some(key),
                Some(json!({"action": "loop"})),
                200,
            )
            .await
        }
    });
    let sampler = async {
        let mut peak = 0;
        for _ in 0..40 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            peak = peak.max(s.rss_bytes());
        }
        peak
    };
    let (results, rss_peak) = tokio::join!(futures::future::join_all(calls), sampler);
    let linear: u64 = results
        .iter()
        .map(|r| r["stats"]["peak_memory_bytes"].as_u64().unwrap_or(0))
        .max()
        .unwrap_or(0);
    let per = rss_peak.saturating_sub(rss_before) as f64 / results.len() as f64;
    println!(
        "50 concurrent invocations: +{:.2} MiB resident per invocation at peak; guest linear memory {:.2} MiB each; beyond it: {:.2} MiB (target ≤ 1 MiB)",
        mib(per as u64),
        mib(linear),
        mib((per as u64).saturating_sub(linear))
    );
    assert!(
        results
            .iter()
            .all(|r| r["outcome"] == "OUT_OF_FUEL" || r["outcome"] == "TIMEOUT")
    );
}

/// Publishes the example plugin `example` as `@scale/<name>` (publisher `scale`).
async fn publish_as_scale(s: &Server, p: &Publisher, example: &str, name: &str) {
    let (mut m, wasm) = example_plugin(example);
    m["name"] = json!(format!("@scale/{name}"));
    m["publisher"] = json!("scale");
    s.publish(p, &m, &wasm).await;
}

fn mib(b: u64) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}
