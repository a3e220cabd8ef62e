//! The enumerations the API shows: roles, permissions, principal kinds, invocation
//! outcomes and error codes. Their strings are part of the public API; the server's
//! edge maps the domain's enums onto these with exhaustive matches, so a new domain
//! variant cannot reach the wire without being added here.

use serde::{Deserialize, Serialize};

/// A person's role in an org.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Owner,
    Admin,
    Member,
    Viewer,
}

/// One thing a principal may do inside its org.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    /// See installs, config, bindings, secret names, usage.
    ReadOrg,
    /// Read the audit trail.
    ReadAudit,
    /// Check the audit trail's hash chain (counts and hashes, no content).
    VerifyAudit,
    /// Invoke plugin actions.
    Invoke,
    /// Install, configure, enable/disable, upgrade, uninstall; bind agents.
    ManageInstalls,
    /// Set and delete secrets (owners only).
    ManageSecrets,
    /// Add users and change roles.
    ManageMembers,
    /// Create and delete agents.
    ManageAgents,
    /// Create and revoke API keys for others.
    ManageKeys,
    /// Write the org's review of a plugin.
    Review,
}

/// Who holds a credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PrincipalKind {
    Operator,
    User,
    Agent,
}

/// How one invocation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
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

/// A stable, user-visible error code. The string form is part of the public API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
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
    /// The code's stable string (as serialised).
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_code_strings_are_their_serialised_form() {
        for c in [
            ErrorCode::InvalidRequest,
            ErrorCode::VersionNotIncreasing,
            ErrorCode::DependencyInUse,
            ErrorCode::Unavailable,
        ] {
            assert_eq!(
                serde_json::to_value(c).unwrap(),
                serde_json::Value::from(c.as_str())
            );
        }
    }
}
