//! Rate limiting vocabulary: [`Policy`], [`RateKey`], [`Decision`], the
//! [`RateLimiter`] trait every backend implements, the GCRA arithmetic the in-process
//! backend uses, and the IETF `RateLimit` / `RateLimit-Policy` / `Retry-After` headers.
//!
//! GCRA (generic cell rate algorithm) keeps one number per key, the theoretical
//! arrival time (TAT). With burst = `limit` and emission interval `T = window / limit`,
//! a request of cost `c` at time `now` is admitted when
//! `max(TAT, now) + c*T - window <= now`, and then `TAT = max(TAT, now) + c*T`.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::clock::duration_nanos;
use crate::error::{LimitError, validate_part};

/// A rate limit: at most `limit` requests per `window`, all of which may arrive at
/// once (burst = `limit`); after that one request every `window / limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Policy {
    /// Requests admitted per window (and the burst size). Must be at least 1.
    pub limit: u64,
    /// The window. Must be at least 1 µs and at least `limit` µs long.
    pub window: Duration,
}

impl Policy {
    /// `limit` requests per `window`.
    pub const fn new(limit: u64, window: Duration) -> Self {
        Self { limit, window }
    }

    /// `limit` requests per second.
    pub const fn per_second(limit: u64) -> Self {
        Self::new(limit, Duration::from_secs(1))
    }

    /// `limit` requests per minute.
    pub const fn per_minute(limit: u64) -> Self {
        Self::new(limit, Duration::from_secs(60))
    }

    /// Checks that the policy can be enforced by every backend (the Redis backend
    /// works in microseconds, so the emission interval must be at least 1 µs).
    pub fn validate(&self) -> Result<(), LimitError> {
        if self.limit == 0 {
            return Err(LimitError::InvalidPolicy("limit must be at least 1"));
        }
        let micros = self.window.as_micros();
        if micros == 0 {
            return Err(LimitError::InvalidPolicy("window must be at least 1 µs"));
        }
        if micros < u128::from(self.limit) {
            return Err(LimitError::InvalidPolicy(
                "window / limit must be at least 1 µs",
            ));
        }
        Ok(())
    }

    /// The emission interval `window / limit` in nanoseconds (at least 1).
    pub(crate) fn interval_nanos(&self) -> u64 {
        (duration_nanos(self.window) / self.limit.max(1)).max(1)
    }

    /// Renders the `RateLimit-Policy` header value:
    /// `"<name>";q=<limit>;w=<window seconds, rounded up>`.
    pub fn header_value(&self, name: &str) -> String {
        format!(
            "{};q={};w={}",
            sf_string(name),
            self.limit,
            ceil_secs(self.window).max(1)
        )
    }
}

/// What a rate limit is counted against: an org, or one install within an org, in
/// a named scope (default `"default"`) so one org can carry several limits at once.
///
/// Every part must be 1..=128 bytes of `[A-Za-z0-9._-]`; backends reject other keys
/// with [`LimitError::InvalidKey`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RateKey {
    org: String,
    install: Option<String>,
    scope: String,
    /// `tenantry:{<org>}:rl:<scope>[:<install>]`, built once; unique because parts
    /// cannot contain `:`. Also the in-process map key.
    redis_key: String,
    /// FNV-1a of `redis_key`, computed once: picks the in-process shard.
    shard_hash: u64,
    /// Whether every part passed [`validate_part`], computed once.
    valid: bool,
}

impl RateKey {
    /// The org-wide key for `org`.
    pub fn org(org: &str) -> Self {
        Self::build(org, None, "default")
    }

    /// The key for one install of `org`.
    pub fn install(org: &str, install: &str) -> Self {
        Self::build(org, Some(install), "default")
    }

    /// The same key in another named scope (for example `"invoke"` or `"api"`), so
    /// several independent limits can apply to one org or install.
    pub fn scoped(self, scope: &str) -> Self {
        Self::build(&self.org, self.install.as_deref(), scope)
    }

    fn build(org: &str, install: Option<&str>, scope: &str) -> Self {
        let redis_key = match install {
            Some(i) => format!("tenantry:{{{org}}}:rl:{scope}:{i}"),
            None => format!("tenantry:{{{org}}}:rl:{scope}"),
        };
        let valid = validate_part(org).is_ok()
            && validate_part(scope).is_ok()
            && install.is_none_or(|i| validate_part(i).is_ok());
        let shard_hash = redis_key.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        });
        Self {
            org: org.to_owned(),
            install: install.map(str::to_owned),
            scope: scope.to_owned(),
            redis_key,
            shard_hash,
            valid,
        }
    }

    /// The org this key belongs to.
    pub fn org_id(&self) -> &str {
        &self.org
    }

    /// The install, for install-level keys.
    pub fn install_id(&self) -> Option<&str> {
        self.install.as_deref()
    }

    /// The scope name.
    pub fn scope(&self) -> &str {
        &self.scope
    }

    /// Checks every part of the key.
    pub fn validate(&self) -> Result<(), LimitError> {
        if self.valid {
            return Ok(());
        }
        validate_part(&self.org)?;
        validate_part(&self.scope)?;
        if let Some(i) = &self.install {
            validate_part(i)?;
        }
        Ok(())
    }

    /// A hash of the key, fixed at construction (shard selection).
    pub(crate) fn shard_hash(&self) -> u64 {
        self.shard_hash
    }

    /// `tenantry:{<org>}:rl:<scope>[:<install>]`: hash-tagged by org for Redis Cluster.
    pub fn redis_key(&self) -> &str {
        &self.redis_key
    }
}

/// The outcome of one [`RateLimiter::check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request (of the given cost) was admitted and counted.
    pub allowed: bool,
    /// The policy's limit (for headers).
    pub limit: u64,
    /// Requests (of cost 1) still admitted right now, after this decision.
    pub remaining: u64,
    /// Time until the bucket is full again (all `limit` requests available).
    pub reset_after: Duration,
    /// When refused: time until a request of the same cost would be admitted.
    /// `None` when allowed.
    pub retry_after: Option<Duration>,
}

impl Decision {
    /// The `RateLimit` header value: `"<name>";r=<remaining>;t=<reset seconds,
    /// rounded up>`.
    pub fn header_value(&self, name: &str) -> String {
        format!(
            "{};r={};t={}",
            sf_string(name),
            self.remaining,
            ceil_secs(self.reset_after)
        )
    }

    /// The `Retry-After` header value in whole seconds, rounded up and at least 1;
    /// `None` when the request was allowed.
    pub fn retry_after_header(&self) -> Option<String> {
        self.retry_after.map(|d| ceil_secs(d).max(1).to_string())
    }

    /// All headers for a response: `RateLimit-Policy`, `RateLimit` and, when
    /// refused, `Retry-After`.
    pub fn headers(&self, name: &str, policy: &Policy) -> Vec<(&'static str, String)> {
        let mut h = vec![
            ("RateLimit-Policy", policy.header_value(name)),
            ("RateLimit", self.header_value(name)),
        ];
        if let Some(r) = self.retry_after_header() {
            h.push(("Retry-After", r));
        }
        h
    }
}

/// Decides whether a request may proceed under a [`Policy`].
#[async_trait]
pub trait RateLimiter: Send + Sync {
    /// Counts a request of `cost` against `key` under `policy` and says whether it is
    /// admitted. `cost == 0` only reads the state. A `cost` above `policy.limit` can
    /// never be admitted and is an [`LimitError::InvalidArgument`].
    async fn check(
        &self,
        key: &RateKey,
        policy: &Policy,
        cost: u32,
    ) -> Result<Decision, LimitError>;
}

#[async_trait]
impl<T: RateLimiter + ?Sized> RateLimiter for Arc<T> {
    async fn check(
        &self,
        key: &RateKey,
        policy: &Policy,
        cost: u32,
    ) -> Result<Decision, LimitError> {
        (**self).check(key, policy, cost).await
    }
}

/// Validates the inputs shared by every backend.
pub(crate) fn validate_check(key: &RateKey, policy: &Policy, cost: u32) -> Result<(), LimitError> {
    key.validate()?;
    policy.validate()?;
    if u64::from(cost) > policy.limit {
        return Err(LimitError::InvalidArgument(
            "cost exceeds the policy limit and could never be admitted",
        ));
    }
    Ok(())
}

/// One GCRA step in nanoseconds. `tat` is the stored TAT (if any); returns the TAT
/// to store (`None` = leave as is) and the decision.
pub(crate) fn gcra(
    tat: Option<u64>,
    now: u64,
    policy: &Policy,
    cost: u32,
) -> (Option<u64>, Decision) {
    let interval = policy.interval_nanos();
    let burst = interval.saturating_mul(policy.limit);
    let base = tat.map_or(now, |t| t.max(now));
    let new_tat = base.saturating_add(interval.saturating_mul(u64::from(cost)));
    let allow_at = new_tat.saturating_sub(burst);
    let remaining = |tat_after: u64| burst.saturating_sub(tat_after - now) / interval;
    if allow_at <= now {
        let store = (cost > 0).then_some(new_tat);
        (
            store,
            Decision {
                allowed: true,
                limit: policy.limit,
                remaining: remaining(new_tat),
                reset_after: Duration::from_nanos(new_tat - now),
                retry_after: None,
            },
        )
    } else {
        (
            None,
            Decision {
                allowed: false,
                limit: policy.limit,
                remaining: remaining(base),
                reset_after: Duration::from_nanos(base - now),
                retry_after: Some(Duration::from_nanos(allow_at - now)),
            },
        )
    }
}

/// Whole seconds, rounded up.
fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// A structured-field string: quoted, with `\` and `"` escaped and non-printable
/// characters dropped.
fn sf_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            _ => {}
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_render_per_draft() {
        let p = Policy::per_minute(100);
        assert_eq!(p.header_value("default"), "\"default\";q=100;w=60");
        let d = Decision {
            allowed: false,
            limit: 100,
            remaining: 0,
            reset_after: Duration::from_millis(29_001),
            retry_after: Some(Duration::from_millis(1)),
        };
        assert_eq!(d.header_value("default"), "\"default\";r=0;t=30");
        assert_eq!(d.retry_after_header().as_deref(), Some("1"));
        let ok = Decision {
            allowed: true,
            retry_after: None,
            ..d
        };
        assert_eq!(ok.retry_after_header(), None);
        assert_eq!(ok.headers("x", &p).len(), 2);
        assert_eq!(d.headers("x", &p).len(), 3);
        assert_eq!(
            Policy::new(5, Duration::from_millis(1500)).header_value("a\"b"),
            "\"a\\\"b\";q=5;w=2"
        );
    }

    #[test]
    fn gcra_burst_then_one_per_interval() {
        let p = Policy::new(4, Duration::from_secs(4));
        let mut tat = None;
        for i in 0..4u64 {
            let (t, d) = gcra(tat, 0, &p, 1);
            assert!(d.allowed);
            assert_eq!(d.remaining, 3 - i);
            tat = t.or(tat);
        }
        let (t, d) = gcra(tat, 0, &p, 1);
        assert!(!d.allowed);
        assert!(t.is_none());
        assert_eq!(d.retry_after, Some(Duration::from_secs(1)));
        assert_eq!(d.reset_after, Duration::from_secs(4));
        let (_, d) = gcra(tat, 1_000_000_000, &p, 1);
        assert!(d.allowed);
        assert_eq!(d.remaining, 0);
    }

    #[test]
    fn keys_and_policies_validate() {
        assert!(RateKey::org("acme").validate().is_ok());
        assert!(RateKey::org("").validate().is_err());
        assert!(RateKey::org("a}b").validate().is_err());
        assert!(RateKey::install("acme", "i:1").validate().is_err());
        assert_eq!(
            RateKey::install("acme", "i1").scoped("api").redis_key(),
            "tenantry:{acme}:rl:api:i1"
        );
        assert!(Policy::new(0, Duration::from_secs(1)).validate().is_err());
        assert!(Policy::new(1, Duration::ZERO).validate().is_err());
        assert!(
            Policy::new(10, Duration::from_micros(5))
                .validate()
                .is_err()
        );
    }
}
