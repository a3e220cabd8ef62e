//! Test harness shared by the integration tests: one [`Harness`] per backend (local
//! on a `ManualClock`, or Redis with real time), unique org ids per test, and the
//! Redis URL / "not reachable" failure.

#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tenantry_limits::{
    ConcurrencyLimiter, LocalConcurrencyLimiter, LocalQuotaCounter, LocalRateLimiter, ManualClock,
    QuotaCounter, RateLimiter, RedisConcurrencyLimiter, RedisConn, RedisOptions, RedisQuotaCounter,
    RedisRateLimiter,
};

/// The test Redis ([`tenantry_test_services::redis_url`]).
pub fn redis_url() -> String {
    tenantry_test_services::redis_url()
}

/// Connects to the test Redis or fails the test with one line.
pub async fn redis_conn() -> RedisConn {
    let url = redis_url();
    match RedisConn::connect(&url, RedisOptions::default()).await {
        Ok(c) => c,
        Err(_) => {
            panic!("Redis not reachable at {url}: start Redis or set TENANTRY_TEST_REDIS_URL")
        }
    }
}

/// A fresh org id, unique per call (so tests run in parallel on one Redis).
pub fn unique_org() -> String {
    format!("t-{}", uuid::Uuid::new_v4().simple())
}

/// One backend under test.
pub struct Harness {
    pub name: &'static str,
    pub rate: Box<dyn RateLimiter>,
    pub conc: Box<dyn ConcurrencyLimiter>,
    pub quota: Box<dyn QuotaCounter>,
    clock: Option<ManualClock>,
    redis: Option<RedisConn>,
    orgs: Mutex<Vec<String>>,
    /// When this harness was made (a scenario's start).
    started: std::time::Instant,
}

impl Harness {
    /// In-process backends sharing one manual clock.
    pub fn local() -> Self {
        let clock = ManualClock::new();
        let c: Arc<ManualClock> = Arc::new(clock.clone());
        Self {
            name: "local",
            rate: Box::new(LocalRateLimiter::with_clock(c.clone())),
            conc: Box::new(LocalConcurrencyLimiter::with_clock(c.clone())),
            quota: Box::new(LocalQuotaCounter::with_clock(c)),
            clock: Some(clock),
            redis: None,
            orgs: Mutex::new(Vec::new()),
            started: std::time::Instant::now(),
        }
    }

    /// Redis backends on the test Redis.
    pub async fn redis() -> Self {
        let conn = redis_conn().await;
        Self {
            name: "redis",
            rate: Box::new(RedisRateLimiter::new(conn.clone())),
            conc: Box::new(RedisConcurrencyLimiter::new(conn.clone())),
            quota: Box::new(RedisQuotaCounter::new(conn.clone())),
            clock: None,
            redis: Some(conn),
            orgs: Mutex::new(Vec::new()),
            started: std::time::Instant::now(),
        }
    }

    /// A unique org, deleted from Redis by [`Harness::cleanup`].
    pub fn org(&self) -> String {
        let org = unique_org();
        self.orgs.lock().unwrap().push(org.clone());
        org
    }

    /// Lets `d` pass: moves the manual clock, or sleeps for real on Redis.
    pub async fn advance(&self, d: Duration) {
        match &self.clock {
            Some(c) => c.advance(d),
            None => tokio::time::sleep(d).await,
        }
    }

    /// How far a duration measured on this backend may fall short of the ideal value:
    /// none on the manual clock; on Redis, the real time that has passed since the
    /// scenario began (every decision's reference point is later than that), at
    /// least 60 ms. So a loaded machine widens the window instead of failing the
    /// test, and an idle one still checks it closely.
    pub fn slack(&self) -> Duration {
        if self.clock.is_some() {
            Duration::ZERO
        } else {
            self.started.elapsed().max(Duration::from_millis(60))
        }
    }

    /// Asserts `actual` is in `[expected - slack, expected]`.
    pub fn assert_about(&self, what: &str, actual: Duration, expected: Duration) {
        let low = expected.saturating_sub(self.slack());
        assert!(
            actual <= expected && actual >= low,
            "{}: {what} = {actual:?}, expected {expected:?} (slack {:?})",
            self.name,
            self.slack()
        );
    }

    /// Deletes the keys of every org handed out.
    pub async fn cleanup(&self) {
        if let Some(conn) = &self.redis {
            let orgs = std::mem::take(&mut *self.orgs.lock().unwrap());
            for org in orgs {
                conn.purge_org(&org).await.unwrap();
            }
        }
    }
}
