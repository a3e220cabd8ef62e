//! Redis-only behaviour: several nodes sharing one limit, ttls on every key written,
//! and failure handling (rate limits and leases fail open to local, quotas fail
//! closed), including recovery after a real Redis restarts.

mod common;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{redis_conn, redis_url, unique_org};
use tenantry_limits::{
    ConcurrencyLimiter, FallbackConcurrencyLimiter, FallbackOptions, FallbackRateLimiter,
    LimitError, LocalConcurrencyLimiter, LocalRateLimiter, Policy, QuotaCounter, QuotaKey, RateKey,
    RateLimiter, RedisConcurrencyLimiter, RedisConn, RedisOptions, RedisQuotaCounter,
    RedisRateLimiter,
};

const CLOSED: &str = "redis://127.0.0.1:1";

#[tokio::test]
async fn two_nodes_never_admit_more_than_the_limit_together() {
    let org = unique_org();
    // Separate connections, as two server processes would have.
    let node_a = Arc::new(RedisRateLimiter::new(redis_conn().await));
    let node_b = Arc::new(RedisRateLimiter::new(redis_conn().await));
    let key = RateKey::org(&org);
    let policy = Policy::new(20, Duration::from_secs(60));
    let mut tasks = Vec::new();
    for node in [node_a.clone(), node_b.clone()] {
        for _ in 0..25 {
            let (node, key) = (node.clone(), key.clone());
            tasks.push(tokio::spawn(async move {
                node.check(&key, &policy, 1).await.unwrap().allowed
            }));
        }
    }
    let mut admitted = 0;
    for t in tasks {
        admitted += u32::from(t.await.unwrap());
    }
    assert_eq!(admitted, 20, "50 requests on two nodes, limit 20");
    assert!(!node_a.check(&key, &policy, 1).await.unwrap().allowed);
    assert!(!node_b.check(&key, &policy, 1).await.unwrap().allowed);

    // Leases too: two nodes, limit 3 in total.
    let ca = RedisConcurrencyLimiter::new(redis_conn().await);
    let cb = RedisConcurrencyLimiter::new(redis_conn().await);
    let ttl = Duration::from_secs(30);
    let mut held = 0;
    for _ in 0..4 {
        held += u32::from(ca.acquire(&org, 3, ttl).await.unwrap().is_some());
        held += u32::from(cb.acquire(&org, 3, ttl).await.unwrap().is_some());
    }
    assert_eq!(held, 3);
    assert_eq!(ca.in_use(&org).await.unwrap(), 3);
    node_a.conn().purge_org(&org).await.unwrap();
}

#[tokio::test]
async fn every_key_written_has_a_ttl() {
    let org = unique_org();
    let conn = redis_conn().await;
    let rate = RedisRateLimiter::new(conn.clone());
    let conc = RedisConcurrencyLimiter::new(conn.clone());
    let quota = RedisQuotaCounter::new(conn.clone());
    let key = RateKey::install(&org, "i1");
    rate.check(&key, &Policy::per_minute(10), 1).await.unwrap();
    let lease = conc
        .acquire(&org, 2, Duration::from_secs(30))
        .await
        .unwrap()
        .unwrap();
    let q = QuotaKey::from_parts(&org, "executions", "2026-11-22");
    let seeded = QuotaKey::from_parts(&org, "executions", "2026-11");
    quota
        .reserve(&q, 10, 1, Duration::from_secs(120))
        .await
        .unwrap();
    quota.refund(&q, 1).await.unwrap();
    quota
        .seed(&seeded, 5, Duration::from_secs(120))
        .await
        .unwrap();

    let client = redis::Client::open(redis_url()).unwrap();
    let mut raw = client.get_multiplexed_async_connection().await.unwrap();
    let mut keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("tenantry:{{{org}}}:*"))
        .query_async(&mut raw)
        .await
        .unwrap();
    keys.sort();
    assert_eq!(
        keys,
        vec![
            format!("tenantry:{{{org}}}:conc"),
            format!("tenantry:{{{org}}}:q:executions:2026-11"),
            format!("tenantry:{{{org}}}:q:executions:2026-11-22"),
            format!("tenantry:{{{org}}}:rl:default:i1"),
        ]
    );
    for k in &keys {
        let pttl: i64 = redis::cmd("PTTL")
            .arg(k)
            .query_async(&mut raw)
            .await
            .unwrap();
        assert!(pttl > 0, "{k} has no ttl ({pttl})");
    }
    let rl_ttl: i64 = redis::cmd("PTTL")
        .arg(key.redis_key())
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!(
        rl_ttl <= 6_001,
        "rate key lives only until its bucket is full: {rl_ttl}"
    );
    conc.release(lease).await.unwrap();
    assert_eq!(
        conn.purge_org(&org).await.unwrap(),
        3,
        "releasing the last lease empties the set"
    );
}

#[tokio::test]
async fn closed_port_connect_is_unavailable() {
    let e = RedisConn::connect(CLOSED, RedisOptions::default())
        .await
        .unwrap_err();
    assert!(e.is_unavailable(), "{e:?}");
    let e = RedisConn::connect("not a url", RedisOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(e, LimitError::Config(_)), "{e:?}");
}

#[tokio::test]
async fn rate_limits_fail_open_to_local_when_redis_is_down() {
    let conn = RedisConn::connect_lazy(CLOSED, RedisOptions::default()).unwrap();
    let limiter = FallbackRateLimiter::new(RedisRateLimiter::new(conn), LocalRateLimiter::new());
    assert!(!limiter.degraded());
    let key = RateKey::org("acme");
    let policy = Policy::new(3, Duration::from_secs(60));
    let started = Instant::now();
    for _ in 0..3 {
        assert!(limiter.check(&key, &policy, 1).await.unwrap().allowed);
    }
    let d = limiter.check(&key, &policy, 1).await.unwrap();
    assert!(!d.allowed, "the local limiter still enforces the policy");
    assert_eq!(d.retry_after_header().as_deref(), Some("20"));
    assert!(limiter.degraded());
    assert_eq!(limiter.fallback_count(), 4);
    // A refused connection falls back at once; the bound is loose on purpose (a
    // loaded machine must not fail it) and only catches a limiter that hangs.
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "degraded decisions hung: {:?}",
        started.elapsed()
    );
    // Invalid input is still an error, not a fallback.
    assert!(limiter.check(&RateKey::org(""), &policy, 1).await.is_err());
    assert_eq!(limiter.fallback_count(), 4);
}

#[tokio::test]
async fn leases_fail_open_to_local_when_redis_is_down() {
    let conn = RedisConn::connect_lazy(CLOSED, RedisOptions::default()).unwrap();
    let conc = FallbackConcurrencyLimiter::new(
        RedisConcurrencyLimiter::new(conn),
        LocalConcurrencyLimiter::new(),
    );
    let ttl = Duration::from_secs(30);
    let lease = conc
        .acquire("acme", 1, ttl)
        .await
        .unwrap()
        .expect("local lease");
    assert!(lease.is_local());
    assert!(conc.acquire("acme", 1, ttl).await.unwrap().is_none());
    assert_eq!(conc.in_use("acme").await.unwrap(), 1);
    conc.release(lease).await.unwrap();
    assert!(conc.acquire("acme", 1, ttl).await.unwrap().is_some());
    assert!(conc.degraded());
    assert!(conc.fallback_count() >= 4);
}

#[tokio::test]
async fn quotas_fail_closed_when_redis_is_down() {
    let conn = RedisConn::connect_lazy(CLOSED, RedisOptions::default()).unwrap();
    let quota = RedisQuotaCounter::new(conn);
    let key = QuotaKey::from_parts("acme", "executions", "2026-11-22");
    let ttl = Duration::from_secs(60);
    let e = quota.reserve(&key, 10, 1, ttl).await.unwrap_err();
    assert!(matches!(e, LimitError::Unavailable(_)), "{e:?}");
    assert!(quota.used(&key).await.unwrap_err().is_unavailable());
    assert!(quota.refund(&key, 1).await.unwrap_err().is_unavailable());
    assert!(quota.seed(&key, 1, ttl).await.unwrap_err().is_unavailable());
}

/// A throwaway `redis-server` on a fixed port, killed on drop.
struct Server {
    child: Child,
}

impl Server {
    fn start(port: u16) -> Self {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed for the recovery test");
        Self { child }
    }

    fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn wait_until_up(url: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if RedisConn::connect(url, RedisOptions::default())
            .await
            .is_ok()
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "throwaway redis-server at {url} did not start"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn fallback_degrades_when_redis_dies_and_recovers_when_it_returns() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("redis://127.0.0.1:{port}");
    let server = Server::start(port);
    wait_until_up(&url).await;

    let options = FallbackOptions {
        timeout: Duration::from_millis(100),
        probe_interval: Duration::from_millis(50),
    };
    let conn = RedisConn::connect(&url, RedisOptions::default())
        .await
        .unwrap();
    let limiter = FallbackRateLimiter::with_options(
        RedisRateLimiter::new(conn),
        LocalRateLimiter::new(),
        options,
    );
    let key = RateKey::org("acme");
    let policy = Policy::new(1000, Duration::from_secs(60));
    let d = limiter.check(&key, &policy, 1).await.unwrap();
    assert_eq!(d.remaining, 999);
    assert!(!limiter.degraded());
    assert_eq!(limiter.fallback_count(), 0);

    server.stop();
    let d = limiter.check(&key, &policy, 1).await.unwrap();
    assert!(d.allowed);
    assert_eq!(d.remaining, 999, "decided by the fresh local limiter");
    assert!(limiter.degraded());
    let count_while_down = limiter.fallback_count();
    assert!(count_while_down >= 1);

    let _server = Server::start(port);
    wait_until_up(&url).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = None;
    while limiter.degraded() {
        assert!(
            Instant::now() < deadline,
            "no automatic recovery after Redis came back (last {last:?})"
        );
        last = Some(limiter.check(&key, &policy, 1).await.unwrap());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Healthy again: decisions come from the restarted (empty) Redis, none locally.
    let before = limiter.fallback_count();
    let d = limiter.check(&key, &policy, 1).await.unwrap();
    assert!(d.allowed);
    assert!(!limiter.degraded());
    assert_eq!(limiter.fallback_count(), before);
}
