//! Stable error codes.
//!
//! Every error a user can see carries an [`ErrorCode`] (a stable `SCREAMING_SNAKE`
//! string that scripts can match on) and a message that says what to do; a refusal
//! that passes with time also says when to retry and which rate limit refused it.
//! Messages never include secret values. How an error travels (HTTP statuses and
//! headers) is the API's business (`tenantry-api`), not the domain's.

use std::time::Duration;

/// A stable, user-visible error code. The string form is part of the public API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The request is malformed (bad JSON, wrong types, bad UTF-8).
    InvalidRequest,
    /// The plugin manifest does not validate.
    InvalidManifest,
    /// An install's config does not match the manifest's config schema.
    InvalidConfig,
    /// An action's input is not valid.
    InvalidInput,
    /// Grants asked for more than the manifest requests, or a bad grant.
    InvalidGrant,
    /// A semver version or requirement does not parse.
    InvalidVersion,
    /// A version is not higher than the highest published one.
    VersionNotIncreasing,
    /// Signature verification failed.
    InvalidSignature,
    /// The signing key is unknown, not yet valid, expired or revoked.
    KeyNotValid,
    /// An artifact's digest does not match (tampered or corrupted).
    ArtifactTampered,
    /// A published artifact is not a component this host can run (malformed,
    /// imports outside the plugin world, missing exports, memory beyond every tier).
    InvalidArtifact,
    /// An installed version cannot be loaded by this server (its artifact stopped
    /// validating, e.g. after the host's limits changed).
    PluginNotRunnable,
    /// A size ceiling was exceeded (artifact, body, value).
    TooLarge,
    /// A plugin dependency is not installed in this org.
    DependencyMissing,
    /// The install is needed by another install.
    DependencyInUse,
    /// The change would make installs depend on each other in a cycle.
    DependencyCycle,
    /// A name is already taken.
    Conflict,
    /// No API key was presented, or it is not valid.
    Unauthenticated,
    /// The principal lacks the permission.
    PermissionDenied,
    /// The resource does not exist (or belongs to another org: same answer).
    NotFound,
    /// The install is disabled.
    InstallDisabled,
    /// The org is suspended by the platform operator: its keys are refused until it
    /// is resumed.
    OrgSuspended,
    /// Refused by the operator's pilot policy (org cap, plugin list, connector
    /// list); `details.policy` names which.
    PolicyDenied,
    /// Too many requests in the window.
    RateLimited,
    /// A billing quota (daily, monthly, plan count) is exhausted.
    QuotaExceeded,
    /// Something failed on our side. The message carries no internals.
    Internal,
    /// A dependency of the server (database, cache) is unavailable.
    Unavailable,
}

impl ErrorCode {
    /// The code's stable string.
    pub fn as_str(self) -> &'static str {
        use ErrorCode::*;
        match self {
            InvalidRequest => "INVALID_REQUEST",
            InvalidManifest => "INVALID_MANIFEST",
            InvalidConfig => "INVALID_CONFIG",
            InvalidInput => "INVALID_INPUT",
            InvalidGrant => "INVALID_GRANT",
            InvalidVersion => "INVALID_VERSION",
            VersionNotIncreasing => "VERSION_NOT_INCREASING",
            InvalidSignature => "INVALID_SIGNATURE",
            KeyNotValid => "KEY_NOT_VALID",
            ArtifactTampered => "ARTIFACT_TAMPERED",
            InvalidArtifact => "INVALID_ARTIFACT",
            PluginNotRunnable => "PLUGIN_NOT_RUNNABLE",
            TooLarge => "TOO_LARGE",
            DependencyMissing => "DEPENDENCY_MISSING",
            DependencyInUse => "DEPENDENCY_IN_USE",
            DependencyCycle => "DEPENDENCY_CYCLE",
            Conflict => "CONFLICT",
            Unauthenticated => "UNAUTHENTICATED",
            PermissionDenied => "PERMISSION_DENIED",
            NotFound => "NOT_FOUND",
            InstallDisabled => "INSTALL_DISABLED",
            OrgSuspended => "ORG_SUSPENDED",
            PolicyDenied => "POLICY_DENIED",
            RateLimited => "RATE_LIMITED",
            QuotaExceeded => "QUOTA_EXCEEDED",
            Internal => "INTERNAL",
            Unavailable => "UNAVAILABLE",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A domain error: a stable code plus a message for humans.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code}: {message}")]
pub struct Error {
    pub code: ErrorCode,
    pub message: String,
    /// Machine-readable facts for the client (which quota, when it resets).
    pub details: Option<serde_json::Value>,
    /// When a retry may succeed, for a refusal that passes with time (a rate limit,
    /// a quota window, an unavailable dependency).
    pub retry_after: Option<Duration>,
    /// The rate limit that refused the request, if one did (boxed: errors stay small).
    pub rate_limit: Option<Box<RateLimitState>>,
}

/// Where one rate limit stands for a request counted against it (or refused by it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitState {
    /// Which limit: `org`, or `install` for an install's own.
    pub name: &'static str,
    /// Requests admitted per window.
    pub limit: u64,
    /// The window.
    pub window: Duration,
    /// Requests still admitted right now.
    pub remaining: u64,
    /// Time until all `limit` requests are available again.
    pub reset_after: Duration,
}

impl Error {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            details: None,
            retry_after: None,
            rate_limit: None,
        }
    }
    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = Some(details);
        self
    }
    pub fn with_retry_after(mut self, after: Duration) -> Self {
        self.retry_after = Some(after);
        self
    }
    pub fn with_rate_limit(mut self, state: RateLimitState) -> Self {
        self.rate_limit = Some(Box::new(state));
        self
    }
    pub fn not_found(what: &str) -> Self {
        Self::new(ErrorCode::NotFound, format!("{what} not found"))
    }
    pub fn denied(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::PermissionDenied, message)
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, message)
    }
    /// An internal failure. The detail is for logs; users see a generic message.
    pub fn internal() -> Self {
        Self::new(
            ErrorCode::Internal,
            "internal error; retry, and report the request id if it persists",
        )
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Shortens a user-supplied string before it is echoed in an error message.
pub fn clip(s: &str) -> String {
    clip_to(s, 64)
}

/// Shortens a string to at most `max` characters (plus `…` when cut).
pub fn clip_to(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(max).collect();
        out.push('…');
        out
    }
}
