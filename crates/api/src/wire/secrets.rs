//! Secrets (write-only: only their names and times go out).

use tenantry_api_types as w;
use tenantry_crypto::SecretValue;
use tenantry_store::SecretMeta;

use super::{ToDomain, ToWire};

impl ToWire for SecretMeta {
    type Wire = w::SecretMeta;
    fn to_wire(self) -> w::SecretMeta {
        let SecretMeta {
            name,
            key_version,
            created_at,
            updated_at,
        } = self;
        w::SecretMeta {
            name,
            key_version,
            created_at,
            updated_at,
        }
    }
}

impl ToDomain for w::SecretText {
    type Domain = SecretValue;
    /// Moves the text's buffer into the zeroizing domain type (no copy is left).
    fn to_domain(self) -> SecretValue {
        SecretValue::from(self.into_inner())
    }
}
