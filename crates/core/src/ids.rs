//! Typed identifiers.
//!
//! Every id is a UUID (v7 for new rows, so they sort by creation time and never leak
//! a global sequence). Parsing accepts only the canonical hyphenated form, so an id
//! can be used to derive a file name (`tenants/<org-id>.db`) without any risk of path
//! traversal: a string like `../x` never becomes an id.

use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

use crate::error::{Error, ErrorCode};

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh, time-ordered id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }
            /// The nil UUID (never a new id: those are v7).
            pub const fn nil() -> Self {
                Self(Uuid::nil())
            }
            /// Wraps an already-validated UUID (e.g. read back from storage).
            pub fn from_uuid(u: Uuid) -> Self {
                Self(u)
            }
            pub fn as_uuid(&self) -> &Uuid {
                &self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0.hyphenated(), f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0.hyphenated())
            }
        }

        impl FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self, Error> {
                parse_canonical(s).map(Self).ok_or_else(|| {
                    Error::new(
                        ErrorCode::NotFound,
                        format!("no {} with id '{}' (ids are UUIDs)", $what, crate::error::clip(s)),
                    )
                })
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
    };
}

/// Accepts exactly the 36-character lowercase-or-uppercase hyphenated UUID form.
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
    fn ids_reject_path_traversal_and_non_canonical_forms() {
        for bad in [
            "../../etc/passwd",
            "..",
            "",
            "0190a0a0a0a07a0a8a0a0a0a0a0a0a0a",
            "{0190a0a0-a0a0-7a0a-8a0a-0a0a0a0a0a0a}",
            "0190a0a0-a0a0-7a0a-8a0a-0a0a0a0a0a0a/..",
        ] {
            assert!(OrgId::from_str(bad).is_err(), "{bad:?} parsed");
        }
        let id = OrgId::new();
        assert_eq!(OrgId::from_str(&id.to_string()).unwrap(), id);
    }
}
