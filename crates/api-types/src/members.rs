//! Users, agents and API keys of an org.

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{AgentId, ApiKeyId, Permission, PrincipalKind, Role, SecretText, UserId};

// A user (no doc comment: it would become the schema's description, which has
// always been empty).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = UserRecord)]
pub struct User {
    pub id: UserId,
    pub name: String,
    pub role: Role,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

// An agent (no doc comment, as for `User`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = AgentRecord)]
pub struct Agent {
    pub id: AgentId,
    pub name: String,
    pub on_behalf_of: UserId,
    pub grants: BTreeSet<Permission>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// An API key of a user or agent (never the key itself).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = ApiKeyRecord)]
pub struct ApiKey {
    pub id: ApiKeyId,
    pub name: String,
    pub principal_kind: PrincipalKind,
    pub principal_id: Uuid,
    /// First characters of the key, for recognising it in listings.
    pub prefix: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
}

/// An operator key (never its hash).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OperatorKey {
    pub id: ApiKeyId,
    pub name: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
}

/// A new operator key: shown once.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CreatedOperatorKey {
    #[serde(flatten)]
    pub record: OperatorKey,
    /// The key itself. It is not stored and cannot be shown again.
    #[schema(value_type = String)]
    pub key: SecretText,
}

/// A new operator key (`POST /v1/operator/keys`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOperatorKey {
    #[schema(
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$",
        min_length = 1,
        max_length = 128
    )]
    pub name: String,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
}

/// A new key: shown once.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CreatedKey {
    #[serde(flatten)]
    pub record: ApiKey,
    /// The key itself. It is not stored and cannot be shown again.
    #[schema(value_type = String)]
    pub key: SecretText,
}

/// Whose key to create.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum KeyOwner {
    /// The calling user.
    #[serde(rename = "self")]
    Caller,
    User(UserId),
    Agent(AgentId),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddUser {
    #[schema(
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$",
        min_length = 1,
        max_length = 128
    )]
    pub name: String,
    pub role: Role,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetRole {
    pub role: Role,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAgent {
    #[schema(
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$",
        min_length = 1,
        max_length = 128
    )]
    pub name: String,
    /// The user the agent acts for; the caller if omitted.
    pub on_behalf_of: Option<UserId>,
    /// Permissions, each held by that user's role and by the caller.
    pub grants: BTreeSet<Permission>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    /// Whose key: `{"kind": "self"}`, `{"kind": "user", "id": …}` or `{"kind": "agent", "id": …}`.
    pub owner: KeyOwner,
    #[schema(
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$",
        min_length = 1,
        max_length = 128
    )]
    pub name: String,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
}
