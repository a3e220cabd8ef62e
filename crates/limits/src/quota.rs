//! Billing quota counters over calendar windows in UTC (executions per day and per
//! month, tool calls per day): window ids and reset times, [`QuotaKey`], the
//! [`QuotaCounter`] trait, and the in-process backend [`LocalQuotaCounter`].
//!
//! Quotas carry money, so they fail closed: there is no fallback backend, and a Redis
//! counter that cannot be reached answers [`LimitError::Unavailable`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

use crate::clock::{Clock, SystemClock, after, lock};
use crate::error::{LimitError, validate_min_ttl, validate_part};

/// A calendar window in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Window {
    /// One UTC day; id `YYYY-MM-DD`.
    Day,
    /// One UTC calendar month; id `YYYY-MM`.
    Month,
}

/// The id of the window that holds `now`: `2026-11-22` for [`Window::Day`],
/// `2026-11` for [`Window::Month`]. `now` may carry any offset; the window is UTC.
pub fn window_id(window: Window, now: OffsetDateTime) -> String {
    let d = now.to_offset(UtcOffset::UTC).date();
    match window {
        Window::Day => format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day()),
        Window::Month => format!("{:04}-{:02}", d.year(), u8::from(d.month())),
    }
}

/// The start of the next window after the one holding `now`: midnight UTC of the
/// next day, or of the first day of the next month. Saturates at the largest
/// representable date.
pub fn window_reset(window: Window, now: OffsetDateTime) -> OffsetDateTime {
    let d = now.to_offset(UtcOffset::UTC).date();
    let next = match window {
        Window::Day => d.next_day(),
        Window::Month => {
            let (y, m) = match d.month() {
                Month::December => (d.year().checked_add(1), Month::January),
                m => (Some(d.year()), m.next()),
            };
            y.and_then(|y| Date::from_calendar_date(y, m, 1).ok())
        }
    };
    match next {
        Some(date) => PrimitiveDateTime::new(date, Time::MIDNIGHT).assume_utc(),
        None => PrimitiveDateTime::MAX.assume_utc(),
    }
}

/// A ttl for a quota counter: until the window resets, plus one day of grace so the
/// last window's count stays readable for reconciliation.
pub fn quota_ttl(window: Window, now: OffsetDateTime) -> Duration {
    let left = window_reset(window, now) - now;
    Duration::try_from(left).unwrap_or(Duration::ZERO) + Duration::from_secs(86_400)
}

/// The billing quotas of the product brief, with their names and windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BillingQuota {
    /// `executions` per UTC day.
    ExecutionsPerDay,
    /// `executions` per UTC month.
    ExecutionsPerMonth,
    /// `tool-calls` per UTC day.
    ToolCallsPerDay,
}

impl BillingQuota {
    /// The counter's name.
    pub fn name(self) -> &'static str {
        match self {
            BillingQuota::ExecutionsPerDay | BillingQuota::ExecutionsPerMonth => "executions",
            BillingQuota::ToolCallsPerDay => "tool-calls",
        }
    }

    /// The quota's name as users see it (the tier field that sets its limit).
    pub fn quota_name(self) -> &'static str {
        match self {
            BillingQuota::ExecutionsPerDay => "executions_per_day",
            BillingQuota::ExecutionsPerMonth => "executions_per_month",
            BillingQuota::ToolCallsPerDay => "tool_calls_per_day",
        }
    }

    /// The counter's window.
    pub fn window(self) -> Window {
        match self {
            BillingQuota::ExecutionsPerDay | BillingQuota::ToolCallsPerDay => Window::Day,
            BillingQuota::ExecutionsPerMonth => Window::Month,
        }
    }

    /// The key for `org` in the window holding `now`.
    pub fn key(self, org: &str, now: OffsetDateTime) -> QuotaKey {
        QuotaKey::new(org, self.name(), self.window(), now)
    }
}

/// One counter: an org's quota in one window.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct QuotaKey {
    /// The org.
    pub org: String,
    /// The quota's name, e.g. `executions`.
    pub quota_name: String,
    /// The window id, e.g. `2026-11-22` or `2026-11`.
    pub window_id: String,
}

impl QuotaKey {
    /// The key for `org`'s quota `quota_name` in the `window` holding `now`.
    pub fn new(org: &str, quota_name: &str, window: Window, now: OffsetDateTime) -> Self {
        Self::from_parts(org, quota_name, &window_id(window, now))
    }

    /// A key from its parts.
    pub fn from_parts(org: &str, quota_name: &str, window_id: &str) -> Self {
        Self {
            org: org.to_owned(),
            quota_name: quota_name.to_owned(),
            window_id: window_id.to_owned(),
        }
    }

    /// Checks every part (1..=128 bytes of `[A-Za-z0-9._-]`).
    pub fn validate(&self) -> Result<(), LimitError> {
        validate_part(&self.org)?;
        validate_part(&self.quota_name)?;
        validate_part(&self.window_id)
    }

    /// `tenantry:{<org>}:q:<name>:<window_id>`.
    pub fn redis_key(&self) -> String {
        format!(
            "tenantry:{{{}}}:q:{}:{}",
            self.org, self.quota_name, self.window_id
        )
    }
}

/// The outcome of [`QuotaCounter::reserve`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaDecision {
    /// Counted; `used` is the count after this reservation.
    Admitted {
        /// Count after the reservation.
        used: u64,
    },
    /// Not counted: `used + n` would exceed `limit`.
    Exceeded {
        /// Count (unchanged).
        used: u64,
        /// The limit that was asked for.
        limit: u64,
    },
}

impl QuotaDecision {
    /// True for [`QuotaDecision::Admitted`].
    pub fn is_admitted(&self) -> bool {
        matches!(self, QuotaDecision::Admitted { .. })
    }

    /// The count after the decision.
    pub fn used(&self) -> u64 {
        match *self {
            QuotaDecision::Admitted { used } | QuotaDecision::Exceeded { used, .. } => used,
        }
    }
}

/// Atomic usage counters for billing quotas.
#[async_trait]
pub trait QuotaCounter: Send + Sync {
    /// Atomically adds `n` if `used + n <= limit`. The counter lives for `ttl` (see
    /// [`quota_ttl`]).
    async fn reserve(
        &self,
        key: &QuotaKey,
        limit: u64,
        n: u64,
        ttl: Duration,
    ) -> Result<QuotaDecision, LimitError>;

    /// Gives back `n` (for work that was reserved but never ran); never below zero.
    /// Refunding a counter that does not exist does nothing.
    async fn refund(&self, key: &QuotaKey, n: u64) -> Result<(), LimitError>;

    /// The current count (0 when the counter does not exist).
    async fn used(&self, key: &QuotaKey) -> Result<u64, LimitError>;

    /// Sets the count to `used` (living for `ttl`) only if the counter does not exist
    /// yet: restores a count from durable usage records after a restart without
    /// overwriting live counts.
    async fn seed(&self, key: &QuotaKey, used: u64, ttl: Duration) -> Result<(), LimitError>;
}

#[async_trait]
impl<T: QuotaCounter + ?Sized> QuotaCounter for Arc<T> {
    async fn reserve(
        &self,
        key: &QuotaKey,
        limit: u64,
        n: u64,
        ttl: Duration,
    ) -> Result<QuotaDecision, LimitError> {
        (**self).reserve(key, limit, n, ttl).await
    }
    async fn refund(&self, key: &QuotaKey, n: u64) -> Result<(), LimitError> {
        (**self).refund(key, n).await
    }
    async fn used(&self, key: &QuotaKey) -> Result<u64, LimitError> {
        (**self).used(key).await
    }
    async fn seed(&self, key: &QuotaKey, used: u64, ttl: Duration) -> Result<(), LimitError> {
        (**self).seed(key, used, ttl).await
    }
}

pub(crate) fn validate_ttl(ttl: Duration) -> Result<(), LimitError> {
    validate_min_ttl(ttl, "quota ttl must be at least 1 ms")
}

struct Counter {
    used: u64,
    expires_at: u64,
}

/// In-process quota counters (one process only: for tests and single-node setups).
pub struct LocalQuotaCounter {
    counters: Mutex<HashMap<String, Counter>>,
    clock: Arc<dyn Clock>,
}

impl LocalQuotaCounter {
    /// Counters on the system monotonic clock (ttl expiry only).
    pub fn new() -> Self {
        Self::with_clock(Arc::new(SystemClock::new()))
    }

    /// Counters whose ttl runs on the given clock.
    pub fn with_clock(clock: Arc<dyn Clock>) -> Self {
        Self {
            counters: Mutex::new(HashMap::new()),
            clock,
        }
    }

    /// Runs `f` on the live counter for `key` (expired counters count as absent).
    fn with<R>(
        &self,
        key: &QuotaKey,
        f: impl FnOnce(&mut HashMap<String, Counter>, String, u64) -> R,
    ) -> Result<R, LimitError> {
        key.validate()?;
        let now = self.clock.now_nanos();
        let mut map = lock(&self.counters);
        let id = key.redis_key();
        if map.get(&id).is_some_and(|c| c.expires_at <= now) {
            map.remove(&id);
        }
        Ok(f(&mut map, id, now))
    }

    /// Drops expired counters; returns how many were dropped.
    pub fn sweep(&self) -> usize {
        let now = self.clock.now_nanos();
        let mut map = lock(&self.counters);
        let before = map.len();
        map.retain(|_, c| c.expires_at > now);
        before - map.len()
    }
}

impl Default for LocalQuotaCounter {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl QuotaCounter for LocalQuotaCounter {
    async fn reserve(
        &self,
        key: &QuotaKey,
        limit: u64,
        n: u64,
        ttl: Duration,
    ) -> Result<QuotaDecision, LimitError> {
        validate_ttl(ttl)?;
        self.with(key, |map, id, now| {
            let used = map.get(&id).map_or(0, |c| c.used);
            match used.checked_add(n) {
                Some(total) if total <= limit => {
                    map.insert(
                        id,
                        Counter {
                            used: total,
                            expires_at: after(now, ttl),
                        },
                    );
                    QuotaDecision::Admitted { used: total }
                }
                _ => QuotaDecision::Exceeded { used, limit },
            }
        })
    }

    async fn refund(&self, key: &QuotaKey, n: u64) -> Result<(), LimitError> {
        self.with(key, |map, id, _| {
            if let Some(c) = map.get_mut(&id) {
                c.used = c.used.saturating_sub(n);
            }
        })
    }

    async fn used(&self, key: &QuotaKey) -> Result<u64, LimitError> {
        self.with(key, |map, id, _| map.get(&id).map_or(0, |c| c.used))
    }

    async fn seed(&self, key: &QuotaKey, used: u64, ttl: Duration) -> Result<(), LimitError> {
        validate_ttl(ttl)?;
        self.with(key, |map, id, now| {
            map.entry(id).or_insert(Counter {
                used,
                expires_at: after(now, ttl),
            });
        })
    }
}
