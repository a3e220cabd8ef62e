//! Typed errors shared by every limiter, lease and quota backend in this crate.

use std::time::Duration;

use thiserror::Error;

/// Everything that can go wrong when asking a limiter for a decision.
#[derive(Debug, Error)]
pub enum LimitError {
    /// The backing store (Redis) could not be reached in time: connection refused,
    /// dropped, or the call exceeded its timeout. Rate limits and leases fall back to
    /// the in-process limiter on this error; billing quotas fail closed on it.
    #[error("limit backend unavailable: {0}")]
    Unavailable(String),

    /// The backing store answered with an error that is not about reachability
    /// (for example a script error).
    #[error("limit backend error: {0}")]
    Backend(String),

    /// The backing store answered with a reply of an unexpected shape.
    #[error("unexpected reply from limit backend: {0}")]
    Protocol(String),

    /// A configuration value (such as a Redis URL) that cannot be used.
    #[error("invalid configuration: {0}")]
    Config(String),

    /// A policy that cannot be enforced (zero limit, zero window, ...).
    #[error("invalid policy: {0}")]
    InvalidPolicy(&'static str),

    /// A key part (org, install, scope, quota name) is empty, too long, or holds
    /// characters outside `[A-Za-z0-9._-]`.
    #[error("invalid key part {part:?}: {reason}")]
    InvalidKey {
        /// The offending key part.
        part: String,
        /// Why it was rejected.
        reason: &'static str,
    },

    /// An argument that cannot be honoured, such as a cost larger than the policy's
    /// burst (it could never be admitted).
    #[error("invalid argument: {0}")]
    InvalidArgument(&'static str),
}

impl LimitError {
    /// True when the error means the backend could not be reached (the case the
    /// fallback wrappers fall back on).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, LimitError::Unavailable(_))
    }
}

impl From<redis::RedisError> for LimitError {
    fn from(e: redis::RedisError) -> Self {
        if e.is_io_error()
            || e.is_timeout()
            || e.is_connection_refusal()
            || e.is_connection_dropped()
            || e.is_unrecoverable_error()
        {
            LimitError::Unavailable(e.to_string())
        } else {
            LimitError::Backend(e.to_string())
        }
    }
}

/// Checks that a ttl is at least 1 ms; `message` (which names whose ttl) otherwise.
pub(crate) fn validate_min_ttl(ttl: Duration, message: &'static str) -> Result<(), LimitError> {
    if ttl < Duration::from_millis(1) {
        return Err(LimitError::InvalidArgument(message));
    }
    Ok(())
}

/// Checks one part of a key: 1..=128 bytes of `[A-Za-z0-9._-]`. Keeping key parts to
/// this alphabet means they can never collide through a separator (`:`) nor break a
/// Redis Cluster hash tag (`{org}`).
pub(crate) fn validate_part(part: &str) -> Result<(), LimitError> {
    let bad = |reason| {
        Err(LimitError::InvalidKey {
            part: part.chars().take(64).collect(),
            reason,
        })
    };
    if part.is_empty() {
        return bad("empty");
    }
    if part.len() > 128 {
        return bad("longer than 128 bytes");
    }
    if !part
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return bad("only ASCII letters, digits, '-', '_' and '.' are allowed");
    }
    Ok(())
}
