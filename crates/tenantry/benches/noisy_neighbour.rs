//! Noisy neighbour: org A hammers at and beyond its limits with a CPU-heavy plugin
//! (an infinite loop, stopped by its CPU budget) while org B runs a steady load of a
//! small plugin. Reports B's latency alone and beside A, measured in one run (the two
//! alternate in rounds), and the p99 ratio (target ≤ 1.5).
//!
//! Run: `cargo bench -p tenantry --bench noisy_neighbour`
//! Env: `B_RPS` (default 50), `B_REQUESTS` per side (default 1200), `ROUNDS` of
//! solo + beside-A segments (default 6), `A_CLIENTS` (default 8), `A_RPS` attempts
//! per second across A's clients (default 200), `A_WALL_MS` A's wall time, which
//! sets its CPU budget per loop (default 5000, the free tier's).

#[path = "../tests/common/mod.rs"]
mod common;

use common::*;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// B's latencies in one phase (ms): end to end as the client sees them, the
/// server's part (`Server-Timing`), and the sandbox's own part as the server
/// reports it (`stats.duration_us`).
#[derive(Default)]
struct Phase {
    total: Vec<f64>,
    guest: Vec<f64>,
    server: Vec<f64>,
}

/// B's steady load: one echo every 1/rps seconds, each timed.
async fn steady(s: &Server, key: &str, install: &str, rps: u64, n: u64) -> Phase {
    let path = invoke_path(install);
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / rps));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut lat = Vec::with_capacity(n as usize);
    let mut guest = Vec::with_capacity(n as usize);
    let mut server = Vec::with_capacity(n as usize);
    for i in 0..n {
        tick.tick().await;
        let t = Instant::now();
        let (st, h, v) = s
            .call_with_headers(
                "POST",
                &path,
                Some(key),
                Some(json!({"action": "echo", "input": {"i": i}})),
            )
            .await;
        assert_eq!(
            (st, v["outcome"].as_str()),
            (200, Some("OK")),
            "B refused: {v}"
        );
        lat.push(t.elapsed().as_secs_f64() * 1e3);
        guest.push(v["stats"]["duration_us"].as_f64().unwrap_or(0.0) / 1e3);
        server.push(
            h.get("server-timing")
                .and_then(|t| t.strip_prefix("app;dur="))
                .and_then(|d| d.parse().ok())
                .unwrap_or(0.0),
        );
    }
    Phase {
        total: lat,
        guest,
        server,
    }
}

impl Phase {
    fn extend(&mut self, other: Phase) {
        self.total.extend(other.total);
        self.guest.extend(other.guest);
        self.server.extend(other.server);
    }
}

fn line(name: &str, l: &[f64]) -> String {
    format!(
        "{name:<24} p50 {:>7.2} ms   p95 {:>7.2} ms   p99 {:>7.2} ms   max {:>7.2} ms",
        pct(l, 50.0),
        pct(l, 95.0),
        pct(l, 99.0),
        l[l.len() - 1]
    )
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let b_rps = env("B_RPS", 50);
    let b_n = env("B_REQUESTS", 1200);
    let a_clients = env("A_CLIENTS", 8);
    let a_rps = env("A_RPS", 200);
    let rounds = env("ROUNDS", 6).max(1);
    // The server logs as in production (`info`), not at the tests' `debug`.
    let launch = Launch {
        env: vec![("RUST_LOG".into(), "info".into())],
        ..Launch::default()
    };
    let s = Arc::new(Server::start_with(launch, None));
    publish_examples(&s).await;
    let a = org(&s, "noisy").await;
    let b = org(&s, "steady").await;
    let a_loop = s
        .install(&a.admin, json!({"plugin": "@examples/attacks"}))
        .await;
    let b_echo = s.install(&b.admin, echo_install()).await;
    // A on the free tier's shape: one execution at a time (each loop burns its whole
    // CPU budget, up to the free tier's 5 s), 10 starts per second.
    s.set_limits(
        &a.id,
        json!({"concurrent_executions": 1, "invocations_per_minute": 600, "max_wall_time_ms": env("A_WALL_MS", 5000),
                "executions_per_day": 10000000, "executions_per_month": 10000000}),
    )
    .await;
    s.set_limits(
        &b.id,
        json!({"executions_per_day": 10000000, "executions_per_month": 10000000,
                "invocations_per_minute": 60000, "concurrent_executions": 100}),
    )
    .await;
    // Warm up both plugins (compile once per digest).
    steady(&s, &b.member, &b_echo, b_rps, 50).await;

    // Solo and beside-A segments alternate, so drift in the machine's own noise (a
    // shared VM) lands on both sides of the ratio alike.
    let mut solo = Phase::default();
    let mut beside = Phase::default();
    let counts: Arc<[AtomicU64; 3]> = Arc::new(Default::default()); // ran, 429, other
    let mut a_secs = 0.0;
    let per_round = (b_n / rounds).max(1);
    // A's clients are another tenant's: their own runtime and HTTP client, so the
    // load generator does not queue B's requests behind A's on the same workers.
    let a_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("A's runtime");
    tenantry_tls::install_crypto_provider();
    let a_http = reqwest::Client::new();
    for _ in 0..rounds {
        solo.extend(steady(&s, &b.member, &b_echo, b_rps, per_round).await);

        let stop = Arc::new(AtomicBool::new(false));
        let mut hammers = Vec::new();
        for c in 0..a_clients {
            let (http, stop, counts) = (a_http.clone(), stop.clone(), counts.clone());
            let (key, url) = (
                a.member.clone(),
                format!("{}/v1/installs/{a_loop}/invoke", s.url),
            );
            let period = Duration::from_micros(1_000_000 * a_clients / a_rps.max(1));
            hammers.push(a_rt.spawn(async move {
                tokio::time::sleep(period * c as u32 / a_clients as u32).await;
                let mut tick = tokio::time::interval(period);
                while !stop.load(Ordering::Relaxed) {
                    tick.tick().await;
                    let sent = send_invoke(&http, &url, &key, "loop").await;
                    let i = match sent.map(|r| r.status().as_u16()) {
                        Ok(200) => 0,
                        Ok(429) => 1,
                        _ => 2,
                    };
                    counts[i].fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let t = Instant::now();
        beside.extend(steady(&s, &b.member, &b_echo, b_rps, per_round).await);
        a_secs += t.elapsed().as_secs_f64();
        // A's running loop ends at its CPU budget; wait for it before B is alone again.
        stop.store(true, Ordering::Relaxed);
        for h in hammers {
            let _ = h.await;
        }
    }
    a_rt.shutdown_background();
    let [ran, limited, other] = [0, 1, 2].map(|i| counts[i].load(Ordering::Relaxed));
    let secs = a_secs;
    for p in [&mut solo, &mut beside] {
        p.total.sort_by(f64::total_cmp);
        p.guest.sort_by(f64::total_cmp);
        p.server.sort_by(f64::total_cmp);
    }

    println!(
        "noisy neighbour: B = {b_rps} echo/s × {} per side in {rounds} alternating solo/beside-A rounds; A = {a_clients} clients, {a_rps} loop attempts/s",
        per_round * rounds
    );
    println!(
        "A beside B: {ran} loops ran to their CPU budget, {limited} refused with 429, {other} other ({:.0} attempts/s)",
        (ran + limited + other) as f64 / secs
    );
    println!("{}", line("B solo", &solo.total));
    println!("{}", line("B beside A", &beside.total));
    println!("{}", line("  server part, solo", &solo.server));
    println!("{}", line("  server part, beside A", &beside.server));
    println!("{}", line("  sandbox part, solo", &solo.guest));
    println!("{}", line("  sandbox part, beside A", &beside.guest));
    println!(
        "p99 ratio beside/solo = {:.2} (target <= 1.5); p50 ratio = {:.2}",
        pct(&beside.total, 99.0) / pct(&solo.total, 99.0),
        pct(&beside.total, 50.0) / pct(&solo.total, 50.0)
    );
}
