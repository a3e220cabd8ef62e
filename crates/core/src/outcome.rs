//! Invocation outcome codes: the same strings in API responses, usage events and
//! audit entries.

use serde::{Deserialize, Serialize};

/// How one invocation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Outcome {
    Ok,
    InvalidInput,
    PermissionDenied,
    EgressDenied,
    OutOfFuel,
    Timeout,
    MemoryLimit,
    MaxHostCalls,
    OutputTooLarge,
    PluginTrap,
    PluginError,
    RateLimited,
    QuotaExceeded,
    NotFound,
    Internal,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        use Outcome::*;
        match self {
            Ok => "OK",
            InvalidInput => "INVALID_INPUT",
            PermissionDenied => "PERMISSION_DENIED",
            EgressDenied => "EGRESS_DENIED",
            OutOfFuel => "OUT_OF_FUEL",
            Timeout => "TIMEOUT",
            MemoryLimit => "MEMORY_LIMIT",
            MaxHostCalls => "MAX_HOST_CALLS",
            OutputTooLarge => "OUTPUT_TOO_LARGE",
            PluginTrap => "PLUGIN_TRAP",
            PluginError => "PLUGIN_ERROR",
            RateLimited => "RATE_LIMITED",
            QuotaExceeded => "QUOTA_EXCEEDED",
            NotFound => "NOT_FOUND",
            Internal => "INTERNAL",
        }
    }

    /// Every outcome, in declaration order.
    pub const ALL: [Outcome; 15] = [
        Outcome::Ok,
        Outcome::InvalidInput,
        Outcome::PermissionDenied,
        Outcome::EgressDenied,
        Outcome::OutOfFuel,
        Outcome::Timeout,
        Outcome::MemoryLimit,
        Outcome::MaxHostCalls,
        Outcome::OutputTooLarge,
        Outcome::PluginTrap,
        Outcome::PluginError,
        Outcome::RateLimited,
        Outcome::QuotaExceeded,
        Outcome::NotFound,
        Outcome::Internal,
    ];

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.as_str() == s)
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
