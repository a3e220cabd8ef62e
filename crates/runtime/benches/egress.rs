//! Outbound HTTPS through a plugin vs the same fetch made by the host directly.
//!
//! Run: `cargo bench -p tenantry-runtime --bench egress` (`SAMPLES` per side,
//! 2,000 by default; `THREADS=1` runs everything on one thread, default 2 worker
//! threads).
//!
//! A loopback HTTPS server (`tenantry_test_services::https`, test CA) serves
//! `GET /json` (17 bytes). Two sides, interleaved one sample each in the same run
//! (the machine is noisy; compare within a run):
//! - **direct**: a reqwest client built with the same TLS settings (`tenantry-tls`,
//!   HTTP/2 by ALPN, pooled connection) GETs it and reads the body;
//! - **plugin**: `Runtime::invoke` of the Rust `http-fetch` example's `get`: a fresh
//!   sandbox, the SDK's client over `wasi:http`, the host's egress checks, the
//!   shared pooled client, the body streamed into the guest, JSON out.
//!
//! A third line, for reference: the `echo` example (a fresh sandbox of the same
//! SDK, no HTTP).
//!
//! Both reuse one TLS connection across samples (the host's client pools them;
//! the direct client too), so neither pays a handshake per sample. Reported: each
//! side's median and p90, and the plugin's overhead over direct at the median
//! (target ≤ 25 %), and the absolute difference.

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};
use tenantry_core::manifest::Grants;
use tenantry_runtime::*;
use tenantry_test_services::https::{self, Cert, TestCa};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    // THREADS=1: everything (server, client, sandbox) on one thread, so the
    // difference is the work done, without the machine's cross-thread wake-ups.
    let threads: usize = std::env::var("THREADS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);
    let rt = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
    }
    .expect("tokio");
    let samples: usize = std::env::var("SAMPLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2_000);
    rt.block_on(async {
        let ca = TestCa::new();
        let certs = tenantry_tls::certificates_in_pem(ca.pem().as_bytes()).expect("CA");
        let server = https::serve(&ca, Cert::Valid, &[b"h2", b"http/1.1"], "t").await;
        let url = format!("{}/json", server.base());

        let mut config = RuntimeConfig::default();
        config.egress.allow_cidrs =
            vec!["127.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()];
        config.egress.ca_certs = certs.clone();
        let w = support::world(config);
        let plugin = w.load("http-fetch");
        let grants = Grants {
            egress: vec!["localhost".into()],
            ..Grants::default()
        };
        let input = serde_json::json!({"url": url}).to_string();

        let direct = reqwest::Client::builder()
            .tls_backend_preconfigured(tenantry_tls::client_config(&certs, &[b"h2", b"http/1.1"]))
            .build()
            .expect("client");

        let via_plugin = || async {
            let r = w
                .run(
                    &plugin,
                    support::install(),
                    "get",
                    &input,
                    &grants,
                    Limits::default(),
                )
                .await;
            assert_eq!(r.outcome, tenantry_core::Outcome::Ok, "{r:?}");
        };
        let echo = w.load("echo");
        let sandbox_only = || async {
            let r = w
                .run(&echo, support::install(), "echo", &input, &Grants::default(), Limits::default())
                .await;
            assert_eq!(r.outcome, tenantry_core::Outcome::Ok, "{r:?}");
        };
        let by_host = || async {
            let body = direct
                .get(&url)
                .send()
                .await
                .expect("get")
                .bytes()
                .await
                .expect("body");
            assert_eq!(body.len(), 17);
        };
        // Warm up: compile caches, open both pooled connections.
        for _ in 0..50 {
            via_plugin().await;
            by_host().await;
        }
        let (mut p, mut d, mut e) = (
            Vec::with_capacity(samples),
            Vec::with_capacity(samples),
            Vec::with_capacity(samples),
        );
        for _ in 0..samples {
            let t = Instant::now();
            sandbox_only().await;
            e.push(t.elapsed());
            let t = Instant::now();
            by_host().await;
            d.push(t.elapsed());
            let t = Instant::now();
            via_plugin().await;
            p.push(t.elapsed());
        }
        p.sort();
        d.sort();
        e.sort();
        let (pm, dm) = (percentile(&p, 0.5), percentile(&d, 0.5));
        let us = |x: Duration| x.as_secs_f64() * 1e6;
        println!(
            "direct (host reqwest, same TLS)   n={samples}  median {:>8.1} µs  p90 {:>8.1} µs",
            us(dm),
            us(percentile(&d, 0.9))
        );
        println!(
            "plugin (wasi:http via Runtime)    n={samples}  median {:>8.1} µs  p90 {:>8.1} µs",
            us(pm),
            us(percentile(&p, 0.9))
        );
        println!(
            "reference: the echo plugin, no HTTP   median {:>8.1} µs",
            us(percentile(&e, 0.5))
        );
        println!(
            "threads: {threads}; overhead at the median: {:+.1} % ({:+.1} µs); connections opened: {}",
            (us(pm) / us(dm) - 1.0) * 100.0,
            us(pm) - us(dm),
            server.connections()
        );
    });
}
