//! Install secrets: write-only.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use zeroize::Zeroizing;

/// Text that must not linger or be logged: a secret's value on its way in, a new API
/// key on its way out. Zeroed when dropped; `Debug` shows nothing of it.
#[derive(Clone, Default)]
pub struct SecretText(Zeroizing<String>);

impl SecretText {
    /// The text. Call only where the value is needed.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Moves the text out (the buffer moves, nothing is copied), for a zeroizing
    /// type of the domain's.
    pub fn into_inner(mut self) -> String {
        std::mem::take(&mut *self.0)
    }
}

impl From<String> for SecretText {
    fn from(s: String) -> Self {
        Self(Zeroizing::new(s))
    }
}

impl std::fmt::Debug for SecretText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretText([redacted])")
    }
}

impl Serialize for SecretText {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for SecretText {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Self::from)
    }
}

/// The secret's value. Deserialised straight into a zeroizing type; never echoed.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetSecret {
    #[schema(value_type = String, min_length = 1, max_length = 16384)]
    pub value: SecretText,
}

/// What may be shown about a secret: its name and times.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SecretMeta {
    pub name: String,
    pub key_version: u32,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_round_trips_and_never_shows_in_debug() {
        let s: SetSecret = serde_json::from_str(r#"{"value": "hunter2"}"#).unwrap();
        assert_eq!(s.value.expose(), "hunter2");
        assert!(!format!("{s:?}").contains("hunter2"));
        assert_eq!(serde_json::to_string(&s).unwrap(), r#"{"value":"hunter2"}"#);
        assert_eq!(s.value.into_inner(), "hunter2");
        assert!(serde_json::from_str::<SetSecret>(r#"{"value": "x", "y": 1}"#).is_err());
    }
}
