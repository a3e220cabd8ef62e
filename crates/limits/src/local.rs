//! The in-process GCRA rate limiter, [`LocalRateLimiter`].
//!
//! Hand-written GCRA rather than `governor`: governor 0.10's keyed limiter applies one
//! quota to every key (upstream issue #193), while each org and install here can have
//! its own policy. State is one TAT (nanoseconds on an injectable [`Clock`]) per key in
//! a sharded `Mutex<HashMap>`. Memory stays bounded by the number of keys active within
//! their window: a shard that grows past its sweep threshold drops every entry whose
//! TAT is already in the past (such a key is indistinguishable from a fresh one), and
//! [`LocalRateLimiter::sweep`] does the same for all shards on demand.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;

use crate::clock::{Clock, SystemClock, lock};
use crate::error::LimitError;
use crate::rate::{Decision, Policy, RateKey, RateLimiter, gcra, validate_check};

/// Smallest per-shard size at which a shard sweeps expired entries.
const MIN_SWEEP_AT: usize = 1024;

struct ShardMap {
    tats: HashMap<Box<str>, u64>,
    sweep_at: usize,
}

/// In-process GCRA limiter with per-key policies.
pub struct LocalRateLimiter {
    shards: Box<[Mutex<ShardMap>]>,
    clock: Arc<dyn Clock>,
}

impl LocalRateLimiter {
    /// A limiter on the system monotonic clock.
    pub fn new() -> Self {
        Self::with_clock(Arc::new(SystemClock::new()))
    }

    /// A limiter on the given clock (a [`crate::ManualClock`] in tests).
    pub fn with_clock(clock: Arc<dyn Clock>) -> Self {
        let cores = std::thread::available_parallelism().map_or(4, |n| n.get());
        let n = (cores * 4).next_power_of_two().max(16);
        let shards = (0..n)
            .map(|_| {
                Mutex::new(ShardMap {
                    tats: HashMap::new(),
                    sweep_at: MIN_SWEEP_AT,
                })
            })
            .collect();
        Self { shards, clock }
    }

    fn shard(&self, hash: u64) -> MutexGuard<'_, ShardMap> {
        // The shard count is a power of two; the high bits of the FNV hash are mixed
        // down so masking spreads keys evenly.
        let mixed = hash ^ (hash >> 32);
        let idx = usize::try_from(mixed & (self.shards.len() as u64 - 1)).unwrap_or(0);
        lock(&self.shards[idx])
    }

    /// The synchronous decision (the async trait method only wraps this).
    pub fn check_now(
        &self,
        key: &RateKey,
        policy: &Policy,
        cost: u32,
    ) -> Result<Decision, LimitError> {
        validate_check(key, policy, cost)?;
        let id = key.redis_key();
        let now = self.clock.now_nanos();
        let mut shard = self.shard(key.shard_hash());
        if let Some(slot) = shard.tats.get_mut(id) {
            let (store, decision) = gcra(Some(*slot), now, policy, cost);
            if let Some(new_tat) = store {
                *slot = new_tat;
            }
            return Ok(decision);
        }
        let (store, decision) = gcra(None, now, policy, cost);
        if let Some(new_tat) = store {
            if shard.tats.len() >= shard.sweep_at {
                shard.tats.retain(|_, t| *t > now);
                shard.sweep_at = (shard.tats.len() * 2).max(MIN_SWEEP_AT);
            }
            shard.tats.insert(id.into(), new_tat);
        }
        Ok(decision)
    }

    /// Drops every entry whose TAT is in the past; returns how many were dropped.
    pub fn sweep(&self) -> usize {
        let now = self.clock.now_nanos();
        let mut dropped = 0;
        for shard in &self.shards {
            let mut s = lock(shard);
            let before = s.tats.len();
            s.tats.retain(|_, t| *t > now);
            dropped += before - s.tats.len();
            s.sweep_at = (s.tats.len() * 2).max(MIN_SWEEP_AT);
        }
        dropped
    }

    /// Number of keys currently held (including not yet swept expired ones).
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).tats.len()).sum()
    }

    /// True when no key is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for LocalRateLimiter {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl RateLimiter for LocalRateLimiter {
    async fn check(
        &self,
        key: &RateKey,
        policy: &Policy,
        cost: u32,
    ) -> Result<Decision, LimitError> {
        self.check_now(key, policy, cost)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use std::time::Duration;

    #[test]
    fn expired_entries_are_swept_when_a_shard_grows() {
        let clock = ManualClock::new();
        let l = LocalRateLimiter::with_clock(Arc::new(clock.clone()));
        let p = Policy::new(1, Duration::from_secs(1));
        for i in 0..20_000 {
            let k = RateKey::org(&format!("o{i}"));
            assert!(l.check_now(&k, &p, 1).is_ok_and(|d| d.allowed));
        }
        assert_eq!(l.len(), 20_000);
        clock.advance(Duration::from_secs(2));
        // New keys trigger per-shard sweeps of the expired ones.
        for i in 0..20_000 {
            let k = RateKey::org(&format!("n{i}"));
            assert!(l.check_now(&k, &p, 1).is_ok_and(|d| d.allowed));
        }
        assert!(l.len() < 40_000, "len {}", l.len());
        clock.advance(Duration::from_secs(2));
        l.sweep();
        assert!(l.is_empty());
    }
}
