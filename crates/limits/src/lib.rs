//! Tenantry limits: per-org rate limiting (GCRA), concurrency leases and billing
//! quota counters, each behind a trait with an in-process and a Redis backend.
//!
//! - [`RateLimiter`]: [`LocalRateLimiter`], [`RedisRateLimiter`], and
//!   [`FallbackRateLimiter`] (Redis, failing open to local).
//! - [`ConcurrencyLimiter`]: [`LocalConcurrencyLimiter`], [`RedisConcurrencyLimiter`],
//!   and [`FallbackConcurrencyLimiter`] (failing open to local).
//! - [`QuotaCounter`]: [`LocalQuotaCounter`] and [`RedisQuotaCounter`]; quotas fail
//!   closed ([`LimitError::Unavailable`]) and have no fallback.
//!
//! Redis keys are `tenantry:{<org>}:...`, hash-tagged by org for Redis Cluster.

mod clock;
mod concurrency;
mod error;
mod fallback;
mod local;
mod quota;
mod rate;
mod redis_backend;

pub use clock::{Clock, ManualClock, SystemClock};
pub use concurrency::{ConcurrencyLimiter, Lease, LocalConcurrencyLimiter};
pub use error::LimitError;
pub use fallback::{FallbackConcurrencyLimiter, FallbackOptions, FallbackRateLimiter};
pub use local::LocalRateLimiter;
pub use quota::{
    BillingQuota, LocalQuotaCounter, QuotaCounter, QuotaDecision, QuotaKey, Window, quota_ttl,
    window_id, window_reset,
};
pub use rate::{Decision, Policy, RateKey, RateLimiter};
pub use redis_backend::{
    RedisConcurrencyLimiter, RedisConn, RedisOptions, RedisQuotaCounter, RedisRateLimiter,
};
