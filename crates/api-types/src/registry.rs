//! The registry: publishers and their keys, published versions, search, plugin
//! details with their manifest, reviews.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use time::OffsetDateTime;

use crate::PublisherId;

// A publisher (no doc comment: it would become the schema's description, which has
// always been empty; likewise below where a type has none).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = PublisherRecord)]
pub struct Publisher {
    pub id: PublisherId,
    pub name: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

// A publisher's signing key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = PublisherKeyRecord)]
pub struct PublisherKey {
    pub key_id: String,
    pub publisher_id: PublisherId,
    /// Text form `ed25519:<base64>`.
    pub public_key: String,
    #[serde(with = "time::serde::rfc3339")]
    pub not_before: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub not_after: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

// A publisher with its keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PublisherView {
    #[serde(flatten)]
    pub publisher: Publisher,
    pub keys: Vec<PublisherKey>,
}

// Registers a publisher with its first key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterPublisher {
    #[schema(pattern = r"^[a-z0-9][a-z0-9_-]*$", min_length = 1, max_length = 64)]
    pub name: String,
    #[serde(flatten)]
    pub key: NewPublisherKey,
}

/// A publisher key to register.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NewPublisherKey {
    /// `ed25519:<base64>`, as printed by `tenantry plugin keygen`.
    pub public_key: String,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub not_before: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub not_after: Option<OffsetDateTime>,
}

/// One immutable published version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = VersionRecord)]
pub struct Version {
    pub plugin: String,
    pub version: String,
    pub publisher: String,
    /// The manifest exactly as signed (its sha256 is `manifest_sha256`).
    pub manifest_json: String,
    pub manifest_sha256: String,
    pub artifact_sha256: String,
    pub artifact_size: u64,
    pub key_id: String,
    pub signature: String,
    /// The `created` time inside the signed statement.
    #[serde(with = "time::serde::rfc3339")]
    pub signed_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub published_at: OffsetDateTime,
}

/// A plugin as listed and searched.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PluginSummary {
    pub name: String,
    pub publisher: String,
    pub description: String,
    pub latest_version: String,
    pub capabilities: Vec<String>,
    pub rating_average: Option<f64>,
    pub rating_count: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// A plugin with its versions and latest manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PluginDetail {
    #[serde(flatten)]
    pub summary: PluginSummary,
    pub versions: Vec<VersionInfo>,
    pub manifest: Manifest,
}

// One version of a plugin, as listed with its details.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VersionInfo {
    pub version: String,
    pub artifact_sha256: String,
    pub artifact_size: u64,
    pub key_id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub published_at: OffsetDateTime,
}

/// A review as shown to everyone: never the reviewing org.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReviewView {
    pub rating: u8,
    pub body: String,
    /// Whether the caller's org wrote it.
    pub mine: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

// Writes or replaces the caller's org's review.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutReview {
    #[schema(minimum = 1, maximum = 5)]
    pub rating: u8,
    #[serde(default)]
    #[schema(max_length = 4096)]
    pub body: String,
}

// Publishes a signed version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishRequest {
    /// The manifest JSON text exactly as signed.
    pub manifest: String,
    /// The component, base64.
    pub artifact_base64: String,
    pub signature: DetachedSignature,
}

/// A detached signature as sent with a publish request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DetachedSignature {
    pub key_id: String,
    /// The `created` field of the signed statement.
    #[serde(with = "time::serde::rfc3339")]
    pub created: OffsetDateTime,
    /// Base64 ed25519 signature over the canonical statement.
    pub signature: String,
}

/// A plugin manifest (`tenantry.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// `@scope/name`, lowercase.
    pub name: String,
    /// Semantic version of this release.
    pub version: String,
    pub description: String,
    /// The publisher's registered name; must be the signer.
    pub publisher: String,
    /// Free-form tags used by search.
    #[serde(default)]
    pub capabilities: Vec<String>,
    pub actions: Vec<ActionSpec>,
    /// JSON Schema of the install config. Properties with `"secret": true` are
    /// secrets: they are set with the secrets API, never in config.
    #[serde(default = "empty_object_schema")]
    #[schema(value_type = Object)]
    pub config_schema: Value,
    #[serde(default)]
    pub permissions: Permissions,
    /// Other plugins this one needs installed in the same org: name → semver requirement.
    #[serde(default)]
    pub dependencies: BTreeMap<String, String>,
    /// Markdown documentation.
    #[serde(default)]
    pub docs: String,
}

/// One exported action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionSpec {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// JSON Schema of the action's input.
    #[serde(default = "empty_object_schema")]
    #[schema(value_type = Object)]
    pub input_schema: Value,
}

/// What a plugin asks to be allowed to do. An install's [`Grants`] are a subset.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Permissions {
    /// Hosts for outbound HTTP: exact (`api.example.com`) or suffix (`*.example.com`).
    #[serde(default)]
    pub egress: Vec<String>,
    /// Access to the install's own key-value store.
    #[serde(default)]
    pub kv: bool,
    /// Names of secrets the plugin reads (each a secret field of the config schema).
    #[serde(default)]
    pub secrets: Vec<String>,
    /// Actions of other plugins it calls: `@scope/name` (any action) or `@scope/name#action`.
    #[serde(default)]
    pub tools: Vec<String>,
}

/// What an org allowed one install to do. Always ⊆ the manifest's [`Permissions`].
pub type Grants = Permissions;

fn empty_object_schema() -> Value {
    serde_json::json!({"type": "object"})
}
