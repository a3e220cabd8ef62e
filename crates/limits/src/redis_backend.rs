//! The Redis backends: [`RedisRateLimiter`] (GCRA in one Lua script),
//! [`RedisConcurrencyLimiter`] (a sorted set of leases per org) and
//! [`RedisQuotaCounter`] (atomic counters per org, quota and window), all sharing one
//! [`RedisConn`].
//!
//! Every script reads the clock with Redis `TIME`, so nodes with skewed clocks agree;
//! every key is hash-tagged by org (`tenantry:{<org>}:...`) so an org's keys share a
//! Redis Cluster slot; every key written gets a `PEXPIRE`/`PX` so nothing outlives its
//! use. Scripts are sent with `EVALSHA` (loaded once per server by `redis::Script`).

use std::fmt;
use std::future::Future;
use std::sync::LazyLock;
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{RedisResult, Script};

use crate::concurrency::{ConcurrencyLimiter, Lease, LeaseOrigin, validate_acquire};
use crate::error::{LimitError, validate_part};
use crate::quota::{QuotaCounter, QuotaDecision, QuotaKey, validate_ttl};
use crate::rate::{Decision, Policy, RateKey, RateLimiter, validate_check};

/// GCRA in microseconds on Redis `TIME`. Mirrors `rate::gcra`.
const GCRA_LUA: &str = r#"
-- KEYS[1]: TAT key. ARGV[1]: window (us), ARGV[2]: limit, ARGV[3]: cost.
-- Returns {allowed, remaining, reset_after_us, retry_after_us}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local window = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local interval = window / limit
local tat = tonumber(redis.call('GET', KEYS[1]) or '')
if tat == nil or tat < now then tat = now end
local new_tat = tat + interval * cost
local allow_at = new_tat - window
if allow_at <= now then
  local reset = new_tat - now
  if cost > 0 then
    redis.call('SET', KEYS[1], string.format('%.3f', new_tat), 'PX', math.ceil(reset / 1000) + 1)
  end
  return {1, math.max(0, math.floor((window - reset) / interval + 1e-6)), math.ceil(reset), 0}
end
local reset = tat - now
return {0, math.max(0, math.floor((window - reset) / interval + 1e-6)), math.ceil(reset), math.ceil(allow_at - now)}
"#;

/// Lease acquisition: drop expired leases, admit if fewer than the limit remain.
const ACQUIRE_LUA: &str = r#"
-- KEYS[1]: lease zset (score = expiry ms). ARGV[1]: limit, ARGV[2]: ttl ms, ARGV[3]: lease id.
-- Returns {acquired, held}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local held = redis.call('ZCARD', KEYS[1])
if held >= tonumber(ARGV[1]) then return {0, held} end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIRE', KEYS[1], math.max(1, tonumber(last[2]) - now))
return {1, held + 1}
"#;

/// Live (unexpired) leases.
const IN_USE_LUA: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf')
"#;

/// Quota reservation: count only if `used + n <= limit`.
const RESERVE_LUA: &str = r#"
-- KEYS[1]: counter. ARGV[1]: limit, ARGV[2]: n, ARGV[3]: ttl ms. Returns {admitted, used}.
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local n = tonumber(ARGV[2])
if used + n > tonumber(ARGV[1]) then return {0, used} end
used = redis.call('INCRBY', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {1, used}
"#;

/// Quota refund: subtract, never below zero, keep the ttl; absent counters stay absent.
const REFUND_LUA: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local left = redis.call('DECRBY', KEYS[1], ARGV[1])
if left < 0 then redis.call('SET', KEYS[1], 0, 'KEEPTTL'); left = 0 end
return left
"#;

static GCRA: LazyLock<Script> = LazyLock::new(|| Script::new(GCRA_LUA));
static ACQUIRE: LazyLock<Script> = LazyLock::new(|| Script::new(ACQUIRE_LUA));
static IN_USE: LazyLock<Script> = LazyLock::new(|| Script::new(IN_USE_LUA));
static RESERVE: LazyLock<Script> = LazyLock::new(|| Script::new(RESERVE_LUA));
static REFUND: LazyLock<Script> = LazyLock::new(|| Script::new(REFUND_LUA));

/// Timeouts and trust for a [`RedisConn`].
#[derive(Debug, Clone)]
pub struct RedisOptions {
    /// Longest wait for one operation's answer before it fails as
    /// [`LimitError::Unavailable`]. Default 500 ms.
    pub op_timeout: Duration,
    /// Longest wait for one connection attempt. Default 500 ms.
    pub connect_timeout: Duration,
    /// For `rediss://`: PEM CA certificates to trust *instead of* the bundled web
    /// PKI roots (a private CA). `None`: the bundled roots.
    pub ca_pem: Option<Vec<u8>>,
}

impl Default for RedisOptions {
    fn default() -> Self {
        Self {
            op_timeout: Duration::from_millis(500),
            connect_timeout: Duration::from_millis(500),
            ca_pem: None,
        }
    }
}

/// A shared, self-reconnecting connection to Redis (cheap to clone). After the server
/// goes away, the next operations fail as [`LimitError::Unavailable`] and the
/// connection is re-established in the background once the server answers again.
#[derive(Clone)]
pub struct RedisConn {
    manager: ConnectionManager,
    op_timeout: Duration,
    url: String,
}

impl fmt::Debug for RedisConn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConn")
            .field("url", &self.url)
            .field("op_timeout", &self.op_timeout)
            .finish_non_exhaustive()
    }
}

impl RedisConn {
    /// Connects and checks the server answers `PING`.
    pub async fn connect(url: &str, options: RedisOptions) -> Result<Self, LimitError> {
        let conn = Self::connect_lazy(url, options)?;
        conn.ping().await?;
        Ok(conn)
    }

    /// Prepares a connection without contacting the server (it connects on first
    /// use). Fails only on a malformed URL. Must be called within a Tokio runtime.
    pub fn connect_lazy(url: &str, options: RedisOptions) -> Result<Self, LimitError> {
        let client = match &options.ca_pem {
            Some(pem) if url.starts_with("rediss://") => redis::Client::build_with_tls(
                url,
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(pem.clone()),
                },
            ),
            _ => redis::Client::open(url),
        }
        .map_err(|e| LimitError::Config(format!("redis url {url:?}: {e}")))?;
        let config = ConnectionManagerConfig::new()
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(10))
            .set_max_delay(Duration::from_millis(100))
            .set_connection_timeout(Some(options.connect_timeout))
            .set_response_timeout(Some(options.op_timeout));
        let manager = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| LimitError::Config(format!("redis connection manager: {e}")))?;
        Ok(Self {
            manager,
            op_timeout: options.op_timeout,
            url: url.to_owned(),
        })
    }

    /// The URL this connection was made for.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Round trip to the server.
    pub async fn ping(&self) -> Result<(), LimitError> {
        let pong: String = self.query(&redis::cmd("PING")).await?;
        if pong == "PONG" {
            Ok(())
        } else {
            Err(LimitError::Protocol(format!("PING answered {pong:?}")))
        }
    }

    /// Deletes every key of `org` (`tenantry:{<org>}:*`): for tests and for
    /// offboarding an org. Returns how many keys were deleted.
    pub async fn purge_org(&self, org: &str) -> Result<u64, LimitError> {
        validate_part(org)?;
        let pattern = format!("tenantry:{{{org}}}:*");
        let mut cursor: u64 = 0;
        let mut deleted = 0;
        loop {
            let mut scan = redis::cmd("SCAN");
            scan.arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000);
            let (next, keys): (u64, Vec<String>) = self.query(&scan).await?;
            if !keys.is_empty() {
                let n: u64 = self.query(redis::cmd("DEL").arg(keys)).await?;
                deleted += n;
            }
            if next == 0 {
                return Ok(deleted);
            }
            cursor = next;
        }
    }

    /// Runs one operation under the operation timeout.
    async fn run<T>(&self, f: impl Future<Output = RedisResult<T>>) -> Result<T, LimitError> {
        match tokio::time::timeout(self.op_timeout, f).await {
            Ok(r) => r.map_err(LimitError::from),
            Err(_) => Err(LimitError::Unavailable(format!(
                "no answer from {} within {:?}",
                self.url, self.op_timeout
            ))),
        }
    }

    /// Sends one command under the operation timeout.
    async fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, LimitError> {
        let mut c = self.manager.clone();
        self.run(cmd.query_async(&mut c)).await
    }

    async fn script<T: redis::FromRedisValue>(
        &self,
        script: &Script,
        key: &str,
        args: &[String],
    ) -> Result<T, LimitError> {
        let mut inv = script.key(key);
        for a in args {
            inv.arg(a);
        }
        let mut c = self.manager.clone();
        self.run(async move { inv.invoke_async(&mut c).await })
            .await
    }
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn clamp_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Reads `N` integers from a script's reply.
fn ints<const N: usize>(reply: Vec<i64>, what: &str) -> Result<[i64; N], LimitError> {
    <[i64; N]>::try_from(reply)
        .map_err(|r| LimitError::Protocol(format!("{what} returned {r:?}, expected {N} integers")))
}

/// GCRA rate limiter shared by every node that uses the same Redis.
#[derive(Debug, Clone)]
pub struct RedisRateLimiter {
    conn: RedisConn,
}

impl RedisRateLimiter {
    /// A limiter on `conn`.
    pub fn new(conn: RedisConn) -> Self {
        Self { conn }
    }

    /// The underlying connection.
    pub fn conn(&self) -> &RedisConn {
        &self.conn
    }
}

#[async_trait]
impl RateLimiter for RedisRateLimiter {
    async fn check(
        &self,
        key: &RateKey,
        policy: &Policy,
        cost: u32,
    ) -> Result<Decision, LimitError> {
        validate_check(key, policy, cost)?;
        let window_us = u64::try_from(policy.window.as_micros()).unwrap_or(u64::MAX);
        let reply: Vec<i64> = self
            .conn
            .script(
                &GCRA,
                key.redis_key(),
                &[
                    window_us.to_string(),
                    policy.limit.to_string(),
                    cost.to_string(),
                ],
            )
            .await?;
        let [allowed, remaining, reset_us, retry_us] = ints::<4>(reply, "rate limit script")?;
        Ok(Decision {
            allowed: allowed == 1,
            limit: policy.limit,
            remaining: to_u64(remaining).min(policy.limit),
            reset_after: Duration::from_micros(to_u64(reset_us)),
            retry_after: (allowed != 1).then(|| Duration::from_micros(to_u64(retry_us))),
        })
    }
}

/// Leases in a sorted set per org, `tenantry:{<org>}:conc`, member = lease id,
/// score = expiry (ms, Redis `TIME`). Leases of a crashed node free themselves after
/// their ttl.
#[derive(Debug, Clone)]
pub struct RedisConcurrencyLimiter {
    conn: RedisConn,
}

impl RedisConcurrencyLimiter {
    /// Leases on `conn`.
    pub fn new(conn: RedisConn) -> Self {
        Self { conn }
    }

    /// `tenantry:{<org>}:conc`.
    pub fn redis_key(org: &str) -> String {
        format!("tenantry:{{{org}}}:conc")
    }
}

#[async_trait]
impl ConcurrencyLimiter for RedisConcurrencyLimiter {
    async fn acquire(
        &self,
        org: &str,
        limit: u32,
        ttl: Duration,
    ) -> Result<Option<Lease>, LimitError> {
        validate_acquire(org, ttl)?;
        let lease = Lease::new(org, ttl, LeaseOrigin::Redis);
        let reply: Vec<i64> = self
            .conn
            .script(
                &ACQUIRE,
                &Self::redis_key(org),
                &[limit.to_string(), ttl_ms(ttl), lease.id().to_owned()],
            )
            .await?;
        let [acquired, _held] = ints::<2>(reply, "lease script")?;
        Ok((acquired == 1).then_some(lease))
    }

    async fn release(&self, lease: Lease) -> Result<(), LimitError> {
        validate_part(lease.org())?;
        let key = Self::redis_key(lease.org());
        let mut zrem = redis::cmd("ZREM");
        zrem.arg(key).arg(lease.id());
        let _removed: i64 = self.conn.query(&zrem).await?;
        Ok(())
    }

    async fn in_use(&self, org: &str) -> Result<u32, LimitError> {
        validate_part(org)?;
        let n: i64 = self
            .conn
            .script(&IN_USE, &Self::redis_key(org), &[])
            .await?;
        Ok(u32::try_from(n).unwrap_or(0))
    }
}

/// Billing quota counters, `tenantry:{<org>}:q:<name>:<window_id>`. No fallback:
/// when Redis cannot be reached every call fails with [`LimitError::Unavailable`].
#[derive(Debug, Clone)]
pub struct RedisQuotaCounter {
    conn: RedisConn,
}

impl RedisQuotaCounter {
    /// Counters on `conn`.
    pub fn new(conn: RedisConn) -> Self {
        Self { conn }
    }
}

fn ttl_ms(ttl: Duration) -> String {
    u64::try_from(ttl.as_millis())
        .unwrap_or(u64::MAX)
        .to_string()
}

#[async_trait]
impl QuotaCounter for RedisQuotaCounter {
    async fn reserve(
        &self,
        key: &QuotaKey,
        limit: u64,
        n: u64,
        ttl: Duration,
    ) -> Result<QuotaDecision, LimitError> {
        key.validate()?;
        validate_ttl(ttl)?;
        let reply: Vec<i64> = self
            .conn
            .script(
                &RESERVE,
                &key.redis_key(),
                &[
                    clamp_i64(limit).to_string(),
                    clamp_i64(n).to_string(),
                    ttl_ms(ttl),
                ],
            )
            .await?;
        let [admitted, used] = ints::<2>(reply, "quota script")?;
        let used = to_u64(used);
        Ok(if admitted == 1 {
            QuotaDecision::Admitted { used }
        } else {
            QuotaDecision::Exceeded { used, limit }
        })
    }

    async fn refund(&self, key: &QuotaKey, n: u64) -> Result<(), LimitError> {
        key.validate()?;
        let _left: i64 = self
            .conn
            .script(&REFUND, &key.redis_key(), &[clamp_i64(n).to_string()])
            .await?;
        Ok(())
    }

    async fn used(&self, key: &QuotaKey) -> Result<u64, LimitError> {
        key.validate()?;
        let v: Option<i64> = self
            .conn
            .query(redis::cmd("GET").arg(key.redis_key()))
            .await?;
        Ok(v.map_or(0, to_u64))
    }

    async fn seed(&self, key: &QuotaKey, used: u64, ttl: Duration) -> Result<(), LimitError> {
        key.validate()?;
        validate_ttl(ttl)?;
        let mut set = redis::cmd("SET");
        set.arg(key.redis_key())
            .arg(clamp_i64(used))
            .arg("NX")
            .arg("PX")
            .arg(ttl_ms(ttl));
        let _set: Option<String> = self.conn.query(&set).await?;
        Ok(())
    }
}
