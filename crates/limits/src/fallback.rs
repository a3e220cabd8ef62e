//! Fail-open wrappers: [`FallbackRateLimiter`] and [`FallbackConcurrencyLimiter`]
//! ask Redis first (under a short timeout) and decide with the in-process limiter
//! when Redis errors or is slow. Billing quotas have no such wrapper: they fail closed.
//!
//! While degraded, only one request per probe interval tries Redis (the others go
//! straight to the local limiter, so a dead Redis does not add its timeout to every
//! request); the first probe that succeeds ends the degraded state. Entering and
//! leaving the degraded state each log once (`warn!` / `info!`), not once per request.
//! While degraded each node enforces limits on its own, so a fleet of N nodes admits
//! up to N times the limit: that is the price of failing open.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;

use crate::clock::{Clock, SystemClock, after};
use crate::concurrency::{ConcurrencyLimiter, Lease, LocalConcurrencyLimiter, validate_acquire};
use crate::error::{LimitError, validate_part};
use crate::local::LocalRateLimiter;
use crate::rate::{Decision, Policy, RateKey, RateLimiter, validate_check};
use crate::redis_backend::{RedisConcurrencyLimiter, RedisRateLimiter};

/// Timing of a fallback wrapper.
#[derive(Debug, Clone, Copy)]
pub struct FallbackOptions {
    /// Longest wait for Redis before deciding locally. Default 75 ms.
    pub timeout: Duration,
    /// While degraded, how often one request probes Redis. Default 250 ms.
    pub probe_interval: Duration,
}

impl Default for FallbackOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_millis(75),
            probe_interval: Duration::from_millis(250),
        }
    }
}

/// Degraded-state bookkeeping shared by the wrappers.
struct Health {
    what: &'static str,
    degraded: AtomicBool,
    fallbacks: AtomicU64,
    next_probe: AtomicU64,
    clock: SystemClock,
    options: FallbackOptions,
}

impl Health {
    fn new(what: &'static str, options: FallbackOptions) -> Self {
        Self {
            what,
            degraded: AtomicBool::new(false),
            fallbacks: AtomicU64::new(0),
            next_probe: AtomicU64::new(0),
            clock: SystemClock::new(),
            options,
        }
    }

    /// Whether this request should ask Redis.
    fn try_primary(&self) -> bool {
        if !self.degraded.load(Ordering::Acquire) {
            return true;
        }
        let now = self.clock.now_nanos();
        let due = self.next_probe.load(Ordering::Acquire);
        now >= due
            && self
                .next_probe
                .compare_exchange(
                    due,
                    after(now, self.options.probe_interval),
                    Ordering::AcqRel,
                    Ordering::Acquire,
                )
                .is_ok()
    }

    fn succeeded(&self) {
        if self.degraded.swap(false, Ordering::AcqRel) {
            tracing::info!(
                limiter = self.what,
                fallbacks = self.fallbacks.load(Ordering::Relaxed),
                "Redis answers again; shared limits restored"
            );
        }
    }

    /// Counts one local decision; `error` is set when Redis was asked and failed.
    fn fell_back(&self, error: Option<&LimitError>) {
        self.fallbacks.fetch_add(1, Ordering::Relaxed);
        if let Some(e) = error {
            let next = after(self.clock.now_nanos(), self.options.probe_interval);
            self.next_probe.store(next, Ordering::Release);
            if !self.degraded.swap(true, Ordering::AcqRel) {
                tracing::warn!(
                    limiter = self.what,
                    error = %e,
                    "Redis unavailable; deciding with the in-process limiter (fail open)"
                );
            }
        }
    }

    /// Runs `primary` under the timeout, or returns the reason to fall back.
    async fn ask<T>(
        &self,
        primary: impl Future<Output = Result<T, LimitError>>,
    ) -> Result<T, Option<LimitError>> {
        if !self.try_primary() {
            return Err(None);
        }
        match tokio::time::timeout(self.options.timeout, primary).await {
            Ok(Ok(v)) => {
                self.succeeded();
                Ok(v)
            }
            Ok(Err(e)) => Err(Some(e)),
            Err(_) => Err(Some(LimitError::Unavailable(format!(
                "no answer within {:?}",
                self.options.timeout
            )))),
        }
    }

    /// Asks `primary` (see [`Health::ask`]); when it cannot answer, counts one local
    /// decision and returns what `local` decides.
    async fn decide<T>(
        &self,
        primary: impl Future<Output = Result<T, LimitError>>,
        local: impl FnOnce() -> Result<T, LimitError>,
    ) -> Result<T, LimitError> {
        match self.ask(primary).await {
            Ok(v) => Ok(v),
            Err(e) => {
                self.fell_back(e.as_ref());
                local()
            }
        }
    }

    /// True while Redis is considered down.
    fn degraded(&self) -> bool {
        self.degraded.load(Ordering::Acquire)
    }

    /// How many decisions were made locally.
    fn fallback_count(&self) -> u64 {
        self.fallbacks.load(Ordering::Relaxed)
    }
}

/// Rate limiting on Redis that falls back to an in-process GCRA when Redis fails.
pub struct FallbackRateLimiter<P = RedisRateLimiter> {
    primary: P,
    local: LocalRateLimiter,
    health: Health,
}

impl<P: RateLimiter> FallbackRateLimiter<P> {
    /// Wraps `primary` with `local` as the fallback, with default timing.
    pub fn new(primary: P, local: LocalRateLimiter) -> Self {
        Self::with_options(primary, local, FallbackOptions::default())
    }

    /// Wraps `primary` with `local` as the fallback.
    pub fn with_options(primary: P, local: LocalRateLimiter, options: FallbackOptions) -> Self {
        Self {
            primary,
            local,
            health: Health::new("rate", options),
        }
    }

    /// True while Redis is considered down (decisions are local).
    pub fn degraded(&self) -> bool {
        self.health.degraded()
    }

    /// How many decisions were made locally because Redis failed or was degraded.
    pub fn fallback_count(&self) -> u64 {
        self.health.fallback_count()
    }

    /// The in-process fallback limiter.
    pub fn local(&self) -> &LocalRateLimiter {
        &self.local
    }
}

#[async_trait]
impl<P: RateLimiter> RateLimiter for FallbackRateLimiter<P> {
    async fn check(
        &self,
        key: &RateKey,
        policy: &Policy,
        cost: u32,
    ) -> Result<Decision, LimitError> {
        validate_check(key, policy, cost)?;
        let primary = self.primary.check(key, policy, cost);
        self.health
            .decide(primary, || self.local.check_now(key, policy, cost))
            .await
    }
}

/// Concurrency leases on Redis that fall back to in-process leases when Redis fails.
/// Leases remember where they were issued and are released there; releasing a Redis
/// lease while Redis is down is logged and left to expire by its ttl.
pub struct FallbackConcurrencyLimiter<P = RedisConcurrencyLimiter> {
    primary: P,
    local: LocalConcurrencyLimiter,
    health: Health,
}

impl<P: ConcurrencyLimiter> FallbackConcurrencyLimiter<P> {
    /// Wraps `primary` with `local` as the fallback, with default timing.
    pub fn new(primary: P, local: LocalConcurrencyLimiter) -> Self {
        Self::with_options(primary, local, FallbackOptions::default())
    }

    /// Wraps `primary` with `local` as the fallback.
    pub fn with_options(
        primary: P,
        local: LocalConcurrencyLimiter,
        options: FallbackOptions,
    ) -> Self {
        Self {
            primary,
            local,
            health: Health::new("concurrency", options),
        }
    }

    /// True while Redis is considered down.
    pub fn degraded(&self) -> bool {
        self.health.degraded()
    }

    /// How many operations were served locally.
    pub fn fallback_count(&self) -> u64 {
        self.health.fallback_count()
    }
}

#[async_trait]
impl<P: ConcurrencyLimiter> ConcurrencyLimiter for FallbackConcurrencyLimiter<P> {
    async fn acquire(
        &self,
        org: &str,
        limit: u32,
        ttl: Duration,
    ) -> Result<Option<Lease>, LimitError> {
        validate_acquire(org, ttl)?;
        let primary = self.primary.acquire(org, limit, ttl);
        self.health
            .decide(primary, || self.local.acquire_now(org, limit, ttl))
            .await
    }

    async fn release(&self, lease: Lease) -> Result<(), LimitError> {
        if lease.is_local() {
            self.local.release_now(&lease);
            return Ok(());
        }
        let ttl = lease.ttl();
        // Fail open: a release Redis did not take frees itself there after its ttl.
        self.health
            .decide(self.primary.release(lease), || {
                tracing::debug!(?ttl, "lease release not delivered to Redis; it will expire");
                Ok(())
            })
            .await
    }

    async fn in_use(&self, org: &str) -> Result<u32, LimitError> {
        validate_part(org)?;
        let primary = self.primary.in_use(org);
        self.health
            .decide(primary, || Ok(self.local.in_use_now(org)))
            .await
    }
}
