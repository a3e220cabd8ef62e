//! Limiter benchmark (plain `Instant` loops, no harness): in-process GCRA with 1 and
//! 10k keys, the degraded fallback path, Redis GCRA round trips (sequential and 32 in
//! flight) and Redis quota reservations. Needs Redis: `TENANTRY_TEST_REDIS_URL`, else
//! the local one, else a throwaway one (`tenantry_test_services::redis_url`). Run: `cargo bench -p tenantry-limits --bench limiter`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tenantry_limits::{
    Clock, FallbackRateLimiter, LimitError, LocalRateLimiter, ManualClock, Policy, QuotaCounter,
    QuotaKey, RateKey, RateLimiter, RedisConn, RedisOptions, RedisQuotaCounter, RedisRateLimiter,
    SystemClock,
};

/// Fails the run on any error (a benchmark of error paths would be meaningless).
fn ok<T>(r: Result<T, LimitError>) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("benchmark operation failed: {e}"),
    }
}

/// Median of per-batch ns/op.
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn bench_sync(batches: usize, per_batch: usize, mut op: impl FnMut(usize)) -> f64 {
    let mut i = 0;
    for _ in 0..per_batch {
        op(i);
        i += 1;
    }
    let mut samples = Vec::with_capacity(batches);
    for _ in 0..batches {
        let t = Instant::now();
        for _ in 0..per_batch {
            op(i);
            i += 1;
        }
        samples.push(t.elapsed().as_nanos() as f64 / per_batch as f64);
    }
    median(samples)
}

async fn bench_async<F, Fut>(batches: usize, per_batch: usize, mut op: F) -> f64
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut i = 0;
    for _ in 0..per_batch {
        op(i).await;
        i += 1;
    }
    let mut samples = Vec::with_capacity(batches);
    for _ in 0..batches {
        let t = Instant::now();
        for _ in 0..per_batch {
            op(i).await;
            i += 1;
        }
        samples.push(t.elapsed().as_nanos() as f64 / per_batch as f64);
    }
    median(samples)
}

#[tokio::main]
async fn main() {
    let url = tenantry_test_services::redis_url();
    let Ok(conn) = RedisConn::connect(&url, RedisOptions::default()).await else {
        eprintln!("Redis not reachable at {url}: start Redis or set TENANTRY_TEST_REDIS_URL");
        std::process::exit(1);
    };
    let org = format!("bench-{}", std::process::id());
    // Never refuses during the run (1 ms emission interval, ~11 days of burst), so
    // every op takes the admit path.
    let policy = Policy::new(1_000_000_000, Duration::from_secs(1_000_000));

    let local = LocalRateLimiter::new();
    let one = RateKey::org(&org);
    let local_1 = bench_sync(31, 200_000, |_| {
        black_box(ok(local.check_now(&one, &policy, 1)));
    });
    let mc = LocalRateLimiter::with_clock(Arc::new(ManualClock::new()));
    let manual = bench_sync(31, 200_000, |_| {
        black_box(ok(mc.check_now(&one, &policy, 1)));
    });
    let sc = SystemClock::new();
    let clock_read = bench_sync(31, 200_000, |_| {
        black_box(sc.now_nanos());
    });
    let keys: Vec<RateKey> = (0..10_000)
        .map(|i| RateKey::install(&org, &format!("i{i}")))
        .collect();
    let local_10k = bench_sync(31, 200_000, |i| {
        black_box(ok(local.check_now(&keys[i % keys.len()], &policy, 1)));
    });

    let dead = RedisConn::connect_lazy("redis://127.0.0.1:1", RedisOptions::default())
        .unwrap_or_else(|e| panic!("lazy connection: {e}"));
    let fallback = FallbackRateLimiter::new(RedisRateLimiter::new(dead), LocalRateLimiter::new());
    let _ = fallback.check(&one, &policy, 1).await;
    let degraded = bench_async(31, 100_000, |_| {
        let f = &fallback;
        let k = &one;
        async move {
            black_box(ok(f.check(k, &policy, 1).await));
        }
    })
    .await;

    let redis = RedisRateLimiter::new(conn.clone());
    let redis_seq = bench_async(21, 1_000, |_| {
        let r = &redis;
        let k = &one;
        async move {
            black_box(ok(r.check(k, &policy, 1).await));
        }
    })
    .await;

    let shared = Arc::new(RedisRateLimiter::new(conn.clone()));
    let in_flight = 32;
    let total = 20_000;
    let t = Instant::now();
    let mut tasks = Vec::new();
    for key in keys.iter().take(in_flight) {
        let (r, k) = (shared.clone(), key.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..total / in_flight {
                black_box(ok(r.check(&k, &policy, 1).await));
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    let redis_par_ops = total as f64 / t.elapsed().as_secs_f64();

    let quota = RedisQuotaCounter::new(conn.clone());
    let qkey = QuotaKey::from_parts(&org, "executions", "2026-11-22");
    let quota_seq = bench_async(21, 1_000, |_| {
        let q = &quota;
        let k = &qkey;
        async move {
            black_box(ok(q.reserve(k, u64::MAX, 1, Duration::from_secs(60)).await));
        }
    })
    .await;

    let ping_seq = bench_async(21, 1_000, |_| {
        let c = &conn;
        async move {
            ok(c.ping().await);
        }
    })
    .await;

    let _ = conn.purge_org(&org).await;

    println!("tenantry-limits benchmark (median over batches)");
    println!("  local check, 1 key              {local_1:>10.1} ns/op");
    println!("  local check, 1 key, manual clock{manual:>10.1} ns/op");
    println!("  SystemClock read                {clock_read:>10.1} ns/op");
    println!("  local check, 10k keys           {local_10k:>10.1} ns/op");
    println!("  fallback check while degraded   {degraded:>10.1} ns/op");
    println!(
        "  redis PING round trip           {:>10.1} us/op  ({:.0} ops/s)",
        ping_seq / 1e3,
        1e9 / ping_seq
    );
    println!(
        "  redis check, sequential         {:>10.1} us/op  ({:.0} ops/s)",
        redis_seq / 1e3,
        1e9 / redis_seq
    );
    println!("  redis check, {in_flight} in flight        {redis_par_ops:>10.0} ops/s");
    println!(
        "  redis quota reserve, sequential {:>10.1} us/op  ({:.0} ops/s)",
        quota_seq / 1e3,
        1e9 / quota_seq
    );
    println!("ratios");
    println!(
        "  10k keys / 1 key                {:>10.2}x",
        local_10k / local_1
    );
    println!(
        "  redis check / local check       {:>10.0}x",
        redis_seq / local_1
    );
    println!(
        "  redis check / PING              {:>10.2}x",
        redis_seq / ping_seq
    );
    println!(
        "  32 in flight / sequential       {:>10.2}x",
        redis_par_ops * redis_seq / 1e9
    );
}
