//! Typed ids on the wire: a UUID in its canonical hyphenated form (schema `string`,
//! format `uuid`).
//!
//! Like the domain's ids, they accept only the 36-character hyphenated form, so a
//! request naming an id another way (`{…}`, no hyphens, a URN) is refused at the
//! edge exactly as before.

use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

/// Why a text is not an id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidId(&'static str);

impl fmt::Display for InvalidId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid {} id", self.0)
    }
}

impl std::error::Error for InvalidId {}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// Wraps a UUID (the domain's id, at the edge).
            pub fn from_uuid(u: Uuid) -> Self {
                Self(u)
            }
            pub fn as_uuid(&self) -> &Uuid {
                &self.0
            }
        }

        impl From<Uuid> for $name {
            fn from(u: Uuid) -> Self {
                Self(u)
            }
        }

        impl From<$name> for Uuid {
            fn from(id: $name) -> Uuid {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0.hyphenated(), f)
            }
        }

        impl FromStr for $name {
            type Err = InvalidId;
            fn from_str(s: &str) -> Result<Self, InvalidId> {
                parse_canonical(s).map(Self).ok_or(InvalidId($what))
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                parse_canonical(&s)
                    .map(Self)
                    .ok_or_else(|| serde::de::Error::custom(concat!("invalid ", $what, " id")))
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                        utoipa::openapi::KnownFormat::Uuid,
                    )))
                    .into()
            }
        }
        impl utoipa::ToSchema for $name {}
    };
}

/// Accepts exactly the 36-character hyphenated UUID form (either case).
fn parse_canonical(s: &str) -> Option<Uuid> {
    if s.len() != 36 {
        return None;
    }
    Uuid::try_parse(s).ok()
}

id_type!(
    /// A tenant (organisation).
    OrgId, "org");
id_type!(
    /// A person in an org.
    UserId, "user");
id_type!(
    /// A non-human principal acting on behalf of a user.
    AgentId, "agent");
id_type!(
    /// An API key record (not the secret key itself).
    ApiKeyId, "api key");
id_type!(
    /// An org's instance of a plugin version.
    InstallId, "install");
id_type!(
    /// A registry publisher.
    PublisherId, "publisher");
id_type!(
    /// One invocation of a plugin action.
    InvocationId, "invocation");
id_type!(
    /// An HTTP request, carried into logs and audit entries.
    RequestId, "request");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_canonical_form_parses() {
        let id = "0190a0a0-a0a0-7a0a-8a0a-0a0a0a0a0a0a";
        let parsed: OrgId = serde_json::from_str(&format!("\"{id}\"")).unwrap();
        assert_eq!(parsed.to_string(), id);
        assert_eq!(serde_json::to_string(&parsed).unwrap(), format!("\"{id}\""));
        for bad in [
            "0190a0a0a0a07a0a8a0a0a0a0a0a0a0a",
            "{0190a0a0-a0a0-7a0a-8a0a-0a0a0a0a0a0a}",
            "urn:uuid:0190a0a0-a0a0-7a0a-8a0a-0a0a0a0a0a0a",
            "../x",
        ] {
            let e = serde_json::from_str::<UserId>(&format!("\"{bad}\"")).unwrap_err();
            assert!(e.to_string().contains("invalid user id"), "{bad}: {e}");
            assert!(bad.parse::<UserId>().is_err());
        }
    }
}
