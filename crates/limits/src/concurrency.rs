//! Concurrency leases: at most `limit` executions in flight per org. A [`Lease`] is
//! held while work runs and given back with [`ConcurrencyLimiter::release`]; a lease
//! that is never released (its holder crashed) expires after its ttl. This file holds
//! the trait, the lease type and the in-process backend, [`LocalConcurrencyLimiter`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

use crate::clock::{Clock, SystemClock, after, lock};
use crate::error::{LimitError, validate_min_ttl, validate_part};

/// Which backend issued a lease (so a fallback wrapper releases it where it lives).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LeaseOrigin {
    Local,
    Redis,
}

/// One slot of an org's concurrency limit, held until released or expired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    org: String,
    id: String,
    ttl: Duration,
    pub(crate) origin: LeaseOrigin,
}

impl Lease {
    pub(crate) fn new(org: &str, ttl: Duration, origin: LeaseOrigin) -> Self {
        Self {
            org: org.to_owned(),
            id: uuid::Uuid::new_v4().simple().to_string(),
            ttl,
            origin,
        }
    }

    /// The org the lease counts against.
    pub fn org(&self) -> &str {
        &self.org
    }

    /// The lease's random id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// How long the lease lives if never released.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// True when the lease was issued by the in-process limiter (for example by a
    /// fallback wrapper while Redis was down).
    pub fn is_local(&self) -> bool {
        self.origin == LeaseOrigin::Local
    }
}

/// Limits how many leases an org holds at once.
#[async_trait]
pub trait ConcurrencyLimiter: Send + Sync {
    /// Takes a lease for `org` if fewer than `limit` unexpired leases are held;
    /// `Ok(None)` when the limit is reached. The lease expires after `ttl`.
    async fn acquire(
        &self,
        org: &str,
        limit: u32,
        ttl: Duration,
    ) -> Result<Option<Lease>, LimitError>;

    /// Gives a lease back. Releasing an expired or unknown lease is not an error.
    async fn release(&self, lease: Lease) -> Result<(), LimitError>;

    /// How many unexpired leases `org` holds.
    async fn in_use(&self, org: &str) -> Result<u32, LimitError>;
}

#[async_trait]
impl<T: ConcurrencyLimiter + ?Sized> ConcurrencyLimiter for Arc<T> {
    async fn acquire(
        &self,
        org: &str,
        limit: u32,
        ttl: Duration,
    ) -> Result<Option<Lease>, LimitError> {
        (**self).acquire(org, limit, ttl).await
    }
    async fn release(&self, lease: Lease) -> Result<(), LimitError> {
        (**self).release(lease).await
    }
    async fn in_use(&self, org: &str) -> Result<u32, LimitError> {
        (**self).in_use(org).await
    }
}

pub(crate) fn validate_acquire(org: &str, ttl: Duration) -> Result<(), LimitError> {
    validate_part(org)?;
    validate_min_ttl(ttl, "lease ttl must be at least 1 ms")
}

/// In-process leases: per org, the live lease ids and their expiry times.
pub struct LocalConcurrencyLimiter {
    orgs: Mutex<HashMap<String, HashMap<String, u64>>>,
    clock: Arc<dyn Clock>,
}

impl LocalConcurrencyLimiter {
    /// Leases on the system monotonic clock.
    pub fn new() -> Self {
        Self::with_clock(Arc::new(SystemClock::new()))
    }

    /// Leases on the given clock.
    pub fn with_clock(clock: Arc<dyn Clock>) -> Self {
        Self {
            orgs: Mutex::new(HashMap::new()),
            clock,
        }
    }

    /// Synchronous [`ConcurrencyLimiter::acquire`].
    pub fn acquire_now(
        &self,
        org: &str,
        limit: u32,
        ttl: Duration,
    ) -> Result<Option<Lease>, LimitError> {
        validate_acquire(org, ttl)?;
        let now = self.clock.now_nanos();
        let mut orgs = lock(&self.orgs);
        let leases = orgs.entry(org.to_owned()).or_default();
        leases.retain(|_, exp| *exp > now);
        if leases.len() >= limit as usize {
            if leases.is_empty() {
                orgs.remove(org);
            }
            return Ok(None);
        }
        let lease = Lease::new(org, ttl, LeaseOrigin::Local);
        leases.insert(lease.id.clone(), after(now, ttl));
        Ok(Some(lease))
    }

    /// Synchronous [`ConcurrencyLimiter::release`].
    pub fn release_now(&self, lease: &Lease) {
        let mut orgs = lock(&self.orgs);
        if let Some(leases) = orgs.get_mut(&lease.org) {
            leases.remove(&lease.id);
            if leases.is_empty() {
                orgs.remove(&lease.org);
            }
        }
    }

    /// Synchronous [`ConcurrencyLimiter::in_use`].
    pub fn in_use_now(&self, org: &str) -> u32 {
        let now = self.clock.now_nanos();
        let orgs = lock(&self.orgs);
        orgs.get(org).map_or(0, |l| {
            u32::try_from(l.values().filter(|e| **e > now).count()).unwrap_or(u32::MAX)
        })
    }

    /// Drops expired leases and empty orgs; returns how many leases were dropped.
    pub fn sweep(&self) -> usize {
        let now = self.clock.now_nanos();
        let mut orgs = lock(&self.orgs);
        let mut dropped = 0;
        orgs.retain(|_, leases| {
            let before = leases.len();
            leases.retain(|_, exp| *exp > now);
            dropped += before - leases.len();
            !leases.is_empty()
        });
        dropped
    }
}

impl Default for LocalConcurrencyLimiter {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl ConcurrencyLimiter for LocalConcurrencyLimiter {
    async fn acquire(
        &self,
        org: &str,
        limit: u32,
        ttl: Duration,
    ) -> Result<Option<Lease>, LimitError> {
        self.acquire_now(org, limit, ttl)
    }

    async fn release(&self, lease: Lease) -> Result<(), LimitError> {
        self.release_now(&lease);
        Ok(())
    }

    async fn in_use(&self, org: &str) -> Result<u32, LimitError> {
        validate_part(org)?;
        Ok(self.in_use_now(org))
    }
}
