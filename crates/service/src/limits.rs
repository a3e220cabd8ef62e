//! Per-org guards on the invoke path, and an org's effective limits.
//!
//! Before an invocation starts: the org's rate limit, the install's own (lower) rate
//! limit, the billing quotas (executions per UTC day and month) and a concurrency
//! lease. Quotas are reserved up front and refunded if the invocation never ran
//! (bad input, a plugin that cannot load), so a failed-before-start request does not
//! eat the budget. Tool calls reserve the daily tool-call quota one by one.
//!
//! Backends come from `tenantry-limits`: in-process by default; with Redis, rate
//! limits and leases are shared by every node and fall back to local when Redis is
//! down (fail open), while billing quotas refuse with `UNAVAILABLE` (fail closed).
//! After a restart (or a Redis flush) a quota counter is seeded from the org's
//! durable usage events before its first use.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tenantry_core::{Error, ErrorCode, InstallId, RateLimitState, Result, TenantScope, Tier};
use tenantry_limits::{
    BillingQuota, ConcurrencyLimiter, Decision, FallbackConcurrencyLimiter, FallbackRateLimiter,
    Lease, LimitError, LocalConcurrencyLimiter, LocalQuotaCounter, LocalRateLimiter, Policy,
    QuotaCounter, QuotaDecision, QuotaKey, RateKey, RateLimiter, RedisConcurrencyLimiter,
    RedisConn, RedisOptions, RedisQuotaCounter, RedisRateLimiter, quota_ttl, window_reset,
};
use tenantry_store::RunKind;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::Service;

/// How many seeded counters a process remembers before starting over.
const MAX_SEEDED: usize = 100_000;

/// How many refused keys a process remembers before dropping those that reopened.
const MAX_REFUSED: usize = 100_000;

/// The clock quotas use for their calendar windows (injectable for tests).
pub type NowFn = Arc<dyn Fn() -> OffsetDateTime + Send + Sync>;

/// The limiter backends of one server.
#[derive(Clone)]
pub struct Limiters {
    rate: Arc<dyn RateLimiter>,
    concurrency: Arc<dyn ConcurrencyLimiter>,
    /// The Redis-backed limiters with their local fallbacks, for [`Limiters::status`].
    shared: Option<(Arc<FallbackRateLimiter>, Arc<FallbackConcurrencyLimiter>)>,
    /// The Redis connection, for readiness pings.
    redis: Option<RedisConn>,
    quotas: Arc<dyn QuotaCounter>,
    now: NowFn,
    /// Quota counters already seeded from durable usage by this process.
    seeded: Arc<Mutex<HashSet<String>>>,
    refused: Arc<RecentRefusals>,
    /// `local` or `redis`, for `/v1/limits` and logs.
    pub backend: &'static str,
}

impl Limiters {
    /// In-process limiters: no setup, one node.
    pub fn local() -> Self {
        Self {
            rate: Arc::new(LocalRateLimiter::new()),
            concurrency: Arc::new(LocalConcurrencyLimiter::new()),
            shared: None,
            redis: None,
            quotas: Arc::new(LocalQuotaCounter::new()),
            now: Arc::new(OffsetDateTime::now_utc),
            seeded: Arc::default(),
            refused: Arc::default(),
            backend: "local",
        }
    }

    /// Limiters shared through Redis. Connects lazily: a server starts (degraded)
    /// while Redis is down and recovers when it returns. `ca_pem`: the CA
    /// certificates a `rediss://` server's certificate must chain to, instead of
    /// the bundled web PKI roots.
    pub fn redis(url: &str, ca_pem: Option<Vec<u8>>) -> std::result::Result<Self, LimitError> {
        let options = RedisOptions {
            ca_pem,
            ..RedisOptions::default()
        };
        let conn = RedisConn::connect_lazy(url, options)?;
        let rate = Arc::new(FallbackRateLimiter::new(
            RedisRateLimiter::new(conn.clone()),
            LocalRateLimiter::new(),
        ));
        let concurrency = Arc::new(FallbackConcurrencyLimiter::new(
            RedisConcurrencyLimiter::new(conn.clone()),
            LocalConcurrencyLimiter::new(),
        ));
        Ok(Self {
            rate: rate.clone(),
            concurrency: concurrency.clone(),
            shared: Some((rate, concurrency)),
            redis: Some(conn.clone()),
            quotas: Arc::new(RedisQuotaCounter::new(conn)),
            now: Arc::new(OffsetDateTime::now_utc),
            seeded: Arc::default(),
            refused: Arc::default(),
            backend: "redis",
        })
    }

    /// Replaces the quota clock.
    pub fn with_now(mut self, now: NowFn) -> Self {
        self.now = now;
        self
    }

    pub fn now(&self) -> OffsetDateTime {
        (self.now)()
    }

    /// Asks Redis to answer, when the limiters use it (`None`: in-process).
    pub async fn ping(&self) -> Option<std::result::Result<(), LimitError>> {
        Some(self.redis.as_ref()?.ping().await)
    }

    /// Which backend decides, and whether it is degraded to local decisions.
    pub fn status(&self) -> LimiterStatus {
        let (degraded, fallback_decisions) = match &self.shared {
            Some((r, c)) => (
                r.degraded() || c.degraded(),
                r.fallback_count() + c.fallback_count(),
            ),
            None => (false, 0),
        };
        LimiterStatus {
            backend: self.backend.into(),
            degraded,
            fallback_decisions,
        }
    }

    /// Forgets which counters were seeded, so each is seeded again (only if absent)
    /// on its next use: after a quota store outage the store may have lost them.
    fn forget_seeded(&self) {
        if let Ok(mut s) = self.seeded.lock() {
            s.clear();
        }
    }
}

/// The limiter backend's state, for `/v1/limits` and monitoring.
#[derive(Debug, Clone)]
pub struct LimiterStatus {
    /// `local` (this node decides alone) or `redis` (shared by every node).
    pub backend: String,
    /// Redis is unreachable: rate limits and concurrency are decided by this node
    /// alone, and billing quotas refuse metered work until it returns.
    pub degraded: bool,
    /// Rate-limit and concurrency decisions this node made locally because Redis failed.
    pub fallback_decisions: u64,
}

/// What an admitted invocation holds until it finishes.
pub(crate) struct Admission {
    lease: Option<Lease>,
    reserved: Vec<QuotaKey>,
    /// The rate limits it was counted against (the API shows them in headers).
    pub(crate) rate_limits: Vec<RateLimitState>,
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

fn limiter_failed(e: LimitError) -> Error {
    tracing::error!(error = %e, "limiter failed");
    Error::internal()
}

fn quota_unavailable(e: LimitError) -> Error {
    tracing::warn!(error = %e, "billing quota store unreachable; refusing metered work");
    Error::new(
        ErrorCode::Unavailable,
        "usage metering is unavailable, so metered work is refused rather than run unrecorded; retry shortly",
    )
    .with_retry_after(Duration::from_secs(5))
}

/// Refuses a standing quota (not a window: plugins installed, agents, artifact size)
/// that `used + adding` would exceed. The message says what to do instead.
pub(crate) fn check_standing(
    quota: &'static str,
    used: u64,
    adding: u64,
    limit: u64,
    what_to_do: &str,
) -> Result<()> {
    if used.saturating_add(adding) <= limit {
        return Ok(());
    }
    Err(Error::new(
        ErrorCode::QuotaExceeded,
        format!("the org's {quota} quota is {limit} (in use: {used}); {what_to_do}"),
    )
    .with_details(serde_json::json!({"quota": quota, "limit": limit, "used": used})))
}

/// `RATE_LIMITED` for one refused limit, with where that limit stands and when to
/// retry.
fn rate_refused(name: &'static str, policy: &Policy, d: &Decision) -> Error {
    let limit = policy.limit;
    let retry = d.retry_after_header().unwrap_or_else(|| "1".into());
    Error::new(
        ErrorCode::RateLimited,
        format!("the {name} rate limit ({limit} invocations per minute) is reached; retry after {retry} s"),
    )
    .with_details(serde_json::json!({"limit": name, "per_minute": limit, "retry_after_s": retry}))
    .with_rate_limit(rate_state(name, policy, d))
    .with_retry_after(d.retry_after.unwrap_or(Duration::from_secs(1)))
}

/// Where the limit `name` stands after decision `d` under `policy`.
fn rate_state(name: &'static str, policy: &Policy, d: &Decision) -> RateLimitState {
    RateLimitState {
        name,
        limit: policy.limit,
        window: policy.window,
        remaining: d.remaining,
        reset_after: d.reset_after,
    }
}

/// Presented keys (by hash) whose org's rate limit refused them moments ago, with
/// when the limit next admits a request. A repeat from such a key before then is
/// refused at once, before authentication and storage: the limiter would refuse it
/// too (a refused request does not move a GCRA limit), and a tenant hammering far
/// beyond its rate then costs the node almost nothing. Only a key that
/// authenticated can be in here. An entry is kept until the limit reopens but at
/// most `memory` (1 s): the limiter's state can change under it (a limit raised, a
/// Redis that returns empty after an outage), and the next check after that asks
/// the limiter again. Refusals decided by the local fallback are not remembered.
struct RecentRefusals {
    memory: Duration,
    keys: Mutex<HashMap<[u8; 32], Refusal>>,
}

struct Refusal {
    policy: Policy,
    forget: Instant,
    reopens: Instant,
    full: Instant,
}

impl Default for RecentRefusals {
    fn default() -> Self {
        Self::new(Duration::from_secs(1))
    }
}

impl RecentRefusals {
    fn new(memory: Duration) -> Self {
        Self {
            memory,
            keys: Mutex::default(),
        }
    }

    fn note(&self, key: [u8; 32], policy: Policy, d: &Decision) {
        let now = Instant::now();
        let Some(retry) = d.retry_after else { return };
        if let Ok(mut m) = self.keys.lock() {
            if m.len() >= MAX_REFUSED {
                m.retain(|_, r| r.forget > now);
            }
            m.insert(
                key,
                Refusal {
                    policy,
                    forget: now + retry.min(self.memory),
                    reopens: now + retry,
                    full: now + d.reset_after,
                },
            );
        }
    }

    fn refuse_again(&self, key: &[u8; 32]) -> Option<Error> {
        let now = Instant::now();
        let mut m = self.keys.lock().ok()?;
        let r = m.get(key)?;
        if r.forget <= now {
            m.remove(key);
            return None;
        }
        let d = Decision {
            allowed: false,
            limit: r.policy.limit,
            remaining: 0,
            reset_after: r.full.saturating_duration_since(now),
            retry_after: Some(r.reopens.saturating_duration_since(now)),
        };
        Some(rate_refused("org", &r.policy, &d))
    }
}

/// Counts one request against a per-minute rate limit. Admitted: its state is added
/// to `seen`; refused: `RATE_LIMITED` with that limit's state and when to retry,
/// and the presented key `refused_key` (if given) is remembered (see
/// [`RecentRefusals`]).
async fn check_rate(
    svc: &Service,
    key: RateKey,
    limit: u64,
    name: &'static str,
    seen: &mut Vec<RateLimitState>,
    refused_key: Option<&[u8; 32]>,
) -> Result<()> {
    // Tiers and overrides are validated when they are set; clamping here keeps a
    // value from an older configuration from ever failing a request.
    let policy =
        Policy::per_minute(limit.clamp(1, tenantry_core::tier::MAX_INVOCATIONS_PER_MINUTE));
    let d = svc
        .limiters
        .rate
        .check(&key, &policy, 1)
        .await
        .map_err(limiter_failed)?;
    if d.allowed {
        seen.push(rate_state(name, &policy, &d));
        return Ok(());
    }
    if let Some(k) = refused_key
        && !svc.limiters.status().degraded
    {
        svc.limiters.refused.note(*k, policy, &d);
    }
    Err(rate_refused(name, &policy, &d))
}

impl Service {
    /// Seeds a quota's counter from the org's durable usage records the first time
    /// this process uses it (and again after a quota-store outage), only if the
    /// counter does not exist: after a restart of a single node, or a Redis that lost
    /// its data, the count resumes instead of restarting at zero. Execution quotas
    /// count runs requested through the API; the tool-call quota counts runs whose
    /// record names a caller.
    async fn seed_once(
        &self,
        scope: &TenantScope,
        quota: BillingQuota,
        key: &QuotaKey,
        now: OffsetDateTime,
    ) -> Result<()> {
        let first = self
            .limiters
            .seeded
            .lock()
            .map(|mut s| {
                // Old windows' keys are never used again; forgetting them all only
                // costs one (harmless, if-absent) re-seed per live counter.
                if s.len() >= MAX_SEEDED {
                    s.clear();
                }
                s.insert(key.redis_key())
            })
            .unwrap_or(false);
        if !first {
            return Ok(());
        }
        let start = match quota.window() {
            tenantry_limits::Window::Day => now.replace_time(time::Time::MIDNIGHT),
            tenantry_limits::Window::Month => now
                .replace_day(1)
                .unwrap_or(now)
                .replace_time(time::Time::MIDNIGHT),
        };
        let reset = window_reset(quota.window(), now);
        let used = {
            let mut tx = self.read(&scope.system_for_same_org()).await?;
            let kind = match quota {
                BillingQuota::ToolCallsPerDay => RunKind::ToolCall,
                BillingQuota::ExecutionsPerDay | BillingQuota::ExecutionsPerMonth => {
                    RunKind::Requested
                }
            };
            tx.count_usage(kind, start, reset).await?
        };
        if let Err(e) = self
            .limiters
            .quotas
            .seed(key, used, quota_ttl(quota.window(), now))
            .await
        {
            self.limiters.forget_seeded();
            return Err(quota_unavailable(e));
        }
        Ok(())
    }

    /// Reserves one unit of a billing quota.
    async fn reserve_quota(
        &self,
        scope: &TenantScope,
        quota: BillingQuota,
        limit: u64,
    ) -> Result<QuotaKey> {
        let now = self.limiters.now();
        let org = scope.org_id().to_string();
        let key = quota.key(&org, now);
        let ttl = quota_ttl(quota.window(), now);
        let reset = window_reset(quota.window(), now);
        self.seed_once(scope, quota, &key, now).await?;
        let decision = match self.limiters.quotas.reserve(&key, limit, 1, ttl).await {
            Ok(d) => d,
            Err(e) => {
                self.limiters.forget_seeded();
                return Err(quota_unavailable(e));
            }
        };
        match decision {
            QuotaDecision::Admitted { .. } => Ok(key),
            QuotaDecision::Exceeded { used, limit } => {
                let secs = (reset - now).whole_seconds().max(1);
                Err(Error::new(
                    ErrorCode::QuotaExceeded,
                    format!(
                        "the {} quota ({limit}) is used up; it resets at {} (UTC)",
                        quota.quota_name(),
                        rfc3339(reset)
                    ),
                )
                .with_details(serde_json::json!({
                    "quota": quota.quota_name(), "limit": limit, "used": used, "resets_at": rfc3339(reset),
                }))
                .with_retry_after(Duration::from_secs(secs.unsigned_abs())))
            }
        }
    }

    pub(crate) async fn refund(&self, keys: &[QuotaKey]) {
        for k in keys {
            if let Err(e) = self.limiters.quotas.refund(k, 1).await {
                tracing::warn!(error = %e, quota = %k.redis_key(), "quota refund failed");
            }
        }
    }

    /// Counts an invocation attempt against the org's rate limit, or refuses it with
    /// `RATE_LIMITED`. Runs before anything else is read for the request, so a
    /// tenant hammering beyond its limit costs the node as little as possible; a
    /// refusal is remembered for the presented key (see [`Service::refused_again`]).
    pub(crate) async fn check_org_rate(
        &self,
        scope: &TenantScope,
        tier: &Tier,
        presented_key: Option<&[u8; 32]>,
    ) -> Result<Vec<RateLimitState>> {
        let org = scope.org_id().to_string();
        let mut seen = Vec::new();
        check_rate(
            self,
            RateKey::org(&org),
            tier.invocations_per_minute,
            "org",
            &mut seen,
            presented_key,
        )
        .await
        .inspect_err(|e| self.metrics.admission(Err(e.code), false))?;
        Ok(seen)
    }

    /// The org rate refusal to repeat for a presented key (by hash) whose org was
    /// refused less than one emission interval ago, or `None` (then authenticate and
    /// check as usual).
    pub(crate) fn refused_again(&self, presented_key: &[u8; 32]) -> Option<Error> {
        self.limiters.refused.refuse_again(presented_key)
    }

    /// Admits an invocation of `install` (whose org passed [`Service::check_org_rate`])
    /// or refuses it with `RATE_LIMITED`, `QUOTA_EXCEEDED` or `UNAVAILABLE`.
    pub(crate) async fn admit(
        &self,
        scope: &TenantScope,
        install: InstallId,
        install_limit: Option<u32>,
        tier: &Tier,
        rate_limits: Vec<RateLimitState>,
    ) -> Result<Admission> {
        let admitted = self
            .reserve_admission(scope, install, install_limit, tier, rate_limits)
            .await;
        self.metrics.admission(
            admitted.as_ref().map(|_| ()).map_err(|e| e.code),
            self.limiters.status().degraded,
        );
        admitted
    }

    /// [`Service::admit`] without its metrics.
    async fn reserve_admission(
        &self,
        scope: &TenantScope,
        install: InstallId,
        install_limit: Option<u32>,
        tier: &Tier,
        mut rate_limits: Vec<RateLimitState>,
    ) -> Result<Admission> {
        let org = scope.org_id().to_string();
        if let Some(l) = install_limit {
            let limit = u64::from(l).min(tier.invocations_per_minute);
            check_rate(
                self,
                RateKey::install(&org, &install.to_string()),
                limit,
                "install",
                &mut rate_limits,
                None,
            )
            .await?;
        }
        let mut reserved = Vec::new();
        for (quota, limit) in [
            (BillingQuota::ExecutionsPerDay, tier.executions_per_day),
            (BillingQuota::ExecutionsPerMonth, tier.executions_per_month),
        ] {
            match self.reserve_quota(scope, quota, limit).await {
                Ok(k) => reserved.push(k),
                Err(e) => {
                    self.refund(&reserved).await;
                    return Err(e);
                }
            }
        }
        let ttl = tier.max_wall_time() + Duration::from_secs(30);
        let lease = match self
            .limiters
            .concurrency
            .acquire(&org, tier.concurrent_executions, ttl)
            .await
        {
            Ok(Some(l)) => l,
            Ok(None) => {
                self.refund(&reserved).await;
                return Err(Error::new(
                    ErrorCode::RateLimited,
                    format!(
                        "the org already runs {} concurrent executions, its limit; retry when one finishes",
                        tier.concurrent_executions
                    ),
                )
                .with_details(serde_json::json!({"limit": "concurrent_executions", "max": tier.concurrent_executions}))
                .with_retry_after(Duration::from_secs(1)));
            }
            Err(e) => {
                self.refund(&reserved).await;
                return Err(limiter_failed(e));
            }
        };
        Ok(Admission {
            lease: Some(lease),
            reserved,
            rate_limits,
        })
    }

    /// Ends an admitted invocation: frees its lease, and refunds its quotas if the
    /// sandbox never started.
    pub(crate) async fn release(&self, mut a: Admission, ran: bool) {
        if let Some(lease) = a.lease.take()
            && let Err(e) = self.limiters.concurrency.release(lease).await
        {
            tracing::warn!(error = %e, "lease release failed; it expires on its own");
        }
        if !ran {
            self.refund(&a.reserved).await;
        }
    }

    /// Reserves one tool call of the org's daily tool-call quota.
    pub(crate) async fn reserve_tool_call(
        &self,
        scope: &TenantScope,
        tier: &Tier,
    ) -> Result<QuotaKey> {
        self.reserve_quota(
            scope,
            BillingQuota::ToolCallsPerDay,
            tier.tool_calls_per_day,
        )
        .await
    }

    /// Current counts of the org's quotas: (name, used, limit, resets at).
    pub async fn quota_usage(
        &self,
        scope: &TenantScope,
        tier: &Tier,
    ) -> Result<Vec<(&'static str, u64, u64, OffsetDateTime)>> {
        let now = self.limiters.now();
        let org = scope.org_id().to_string();
        let mut out = Vec::new();
        for (q, limit) in [
            (BillingQuota::ExecutionsPerDay, tier.executions_per_day),
            (BillingQuota::ExecutionsPerMonth, tier.executions_per_month),
            (BillingQuota::ToolCallsPerDay, tier.tool_calls_per_day),
        ] {
            let key = q.key(&org, now);
            self.seed_once(scope, q, &key, now).await?;
            let used = self
                .limiters
                .quotas
                .used(&key)
                .await
                .map_err(quota_unavailable)?;
            out.push((q.quota_name(), used, limit, window_reset(q.window(), now)));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The headers the API renders for `e`, by the limiter's own renderers of the
    /// rate-limit header draft (`tenantry_api::error` renders the same values).
    fn headers(e: &Error) -> HashMap<&'static str, String> {
        let mut h = HashMap::new();
        if let Some(r) = &e.rate_limit {
            let d = Decision {
                allowed: false,
                limit: r.limit,
                remaining: r.remaining,
                reset_after: r.reset_after,
                retry_after: e.retry_after,
            };
            h.insert(
                "RateLimit-Policy",
                Policy::new(r.limit, r.window).header_value(r.name),
            );
            h.insert("RateLimit", d.header_value(r.name));
        }
        if let Some(retry) = e.retry_after {
            let d = Decision {
                allowed: false,
                limit: 0,
                remaining: 0,
                reset_after: Duration::ZERO,
                retry_after: Some(retry),
            };
            h.insert("Retry-After", d.retry_after_header().unwrap_or_default());
        }
        h
    }

    fn refused(retry: Duration) -> Decision {
        Decision {
            allowed: false,
            limit: 600,
            remaining: 0,
            reset_after: retry * 2,
            retry_after: Some(retry),
        }
    }

    #[test]
    fn a_refused_key_is_refused_again_until_its_limit_reopens_and_no_longer() {
        let r = RecentRefusals::default();
        let (key, other) = ([1u8; 32], [2u8; 32]);
        r.note(
            key,
            Policy::per_minute(600),
            &refused(Duration::from_millis(80)),
        );
        let e = r.refuse_again(&key).expect("refused again");
        assert_eq!(e.code, ErrorCode::RateLimited);
        let headers = headers(&e);
        assert_eq!(headers["Retry-After"], "1");
        assert_eq!(headers["RateLimit-Policy"], "\"org\";q=600;w=60");
        assert!(headers["RateLimit"].starts_with("\"org\";r=0;t="));
        assert!(
            r.refuse_again(&other).is_none(),
            "another key is not affected"
        );
        std::thread::sleep(Duration::from_millis(100));
        assert!(r.refuse_again(&key).is_none(), "reopened: check as usual");
    }

    #[test]
    fn a_long_refusal_is_remembered_only_briefly_then_the_limiter_is_asked_again() {
        let r = RecentRefusals::new(Duration::from_millis(50));
        r.note(
            [1u8; 32],
            Policy::per_minute(4),
            &refused(Duration::from_secs(15)),
        );
        let e = r.refuse_again(&[1u8; 32]).expect("refused again");
        let headers = headers(&e);
        assert_eq!(
            headers["Retry-After"], "15",
            "the real wait, not the memory"
        );
        std::thread::sleep(Duration::from_millis(80));
        assert!(r.refuse_again(&[1u8; 32]).is_none());
    }

    #[test]
    fn an_admitted_decision_is_not_remembered() {
        let r = RecentRefusals::default();
        let mut d = refused(Duration::from_millis(80));
        d.retry_after = None;
        r.note([1u8; 32], Policy::per_minute(600), &d);
        assert!(r.refuse_again(&[1u8; 32]).is_none());
    }
}
