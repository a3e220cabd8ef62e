//! Installs of an org and agent bindings.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::registry::{Grants, Permissions};
use crate::{AgentId, InstallId};

/// An org's instance of a plugin version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = InstallRecord)]
pub struct Install {
    pub id: InstallId,
    pub plugin: String,
    pub version: String,
    /// The version before the last upgrade, for rollback.
    pub previous_version: Option<String>,
    pub artifact_sha256: String,
    #[schema(value_type = Object)]
    pub config: Value,
    pub grants: Grants,
    pub enabled: bool,
    /// Optional per-install rate limit (requests per minute), at most the tier's.
    pub rate_limit_per_minute: Option<u32>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// An install with what its manifest requested next to what was granted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct InstallView {
    #[serde(flatten)]
    pub install: Install,
    pub requested: Permissions,
    /// Secret names the manifest declares (values are never shown).
    pub secret_names: Vec<String>,
}

/// What to install.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InstallRequest {
    pub plugin: String,
    /// Exact version or semver requirement; latest if omitted.
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default = "empty_object")]
    #[schema(value_type = Object)]
    pub config: Value,
    #[serde(default)]
    pub grants: Grants,
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn empty_object() -> Value {
    json!({})
}
fn yes() -> bool {
    true
}

/// Changes to an install's configuration. Absent fields stay as they are.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InstallPatch {
    #[schema(value_type = Option<Object>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grants: Option<Grants>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// The install's own invocation rate limit per minute (the tier's applies when it
    /// is lower); `null` removes it.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<u32>)]
    pub rate_limit_per_minute: Option<Option<u32>>,
}

/// Tells a field given as `null` (`Some(None)`) from one left out (`None`).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<u32>>, D::Error> {
    Option::<u32>::deserialize(d).map(Some)
}

// Upgrades or rolls back an install.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeVersion {
    /// Target version or requirement; omitted = roll back to the previous version.
    pub version: Option<String>,
}

// An agent ↔ install binding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = BindingRecord)]
pub struct Binding {
    pub agent_id: AgentId,
    pub install_id: InstallId,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_patch_tells_null_from_absent_both_ways() {
        let absent: InstallPatch = serde_json::from_str("{}").unwrap();
        assert_eq!(absent.rate_limit_per_minute, None);
        let null: InstallPatch =
            serde_json::from_str(r#"{"rate_limit_per_minute": null}"#).unwrap();
        assert_eq!(null.rate_limit_per_minute, Some(None));
        assert_eq!(serde_json::to_string(&absent).unwrap(), "{}");
        assert_eq!(
            serde_json::to_string(&null).unwrap(),
            r#"{"rate_limit_per_minute":null}"#
        );
    }
}
