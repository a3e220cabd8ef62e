//! Users, agents and API keys.

use tenantry_api_types as w;
use tenantry_service::members::{CreatedKey, KeyOwner};
use tenantry_service::operators::CreatedOperatorKey;
use tenantry_store::{AgentRecord, ApiKeyRecord, OperatorKeyRecord, UserRecord};

use super::{ToDomain, ToWire};

impl ToWire for UserRecord {
    type Wire = w::User;
    fn to_wire(self) -> w::User {
        let UserRecord {
            id,
            name,
            role,
            created_at,
        } = self;
        w::User {
            id: id.to_wire(),
            name,
            role: role.to_wire(),
            created_at,
        }
    }
}

impl ToWire for AgentRecord {
    type Wire = w::Agent;
    fn to_wire(self) -> w::Agent {
        let AgentRecord {
            id,
            name,
            on_behalf_of,
            grants,
            created_at,
        } = self;
        w::Agent {
            id: id.to_wire(),
            name,
            on_behalf_of: on_behalf_of.to_wire(),
            grants: grants.to_wire(),
            created_at,
        }
    }
}

impl ToWire for ApiKeyRecord {
    type Wire = w::ApiKey;
    fn to_wire(self) -> w::ApiKey {
        let ApiKeyRecord {
            id,
            name,
            principal_kind,
            principal_id,
            prefix,
            hash: _, // never shown
            created_at,
            expires_at,
            revoked_at,
            last_used_at,
            breakglass: _, // break-glass tokens are listed as such, never as keys
        } = self;
        w::ApiKey {
            id: id.to_wire(),
            name,
            principal_kind: principal_kind.to_wire(),
            principal_id,
            prefix,
            created_at,
            expires_at,
            revoked_at,
            last_used_at,
        }
    }
}

impl ToWire for CreatedKey {
    type Wire = w::CreatedKey;
    /// The one place a new key's plaintext goes to the wire: its creation response.
    fn to_wire(self) -> w::CreatedKey {
        let CreatedKey { record, key } = self;
        w::CreatedKey {
            record: record.to_wire(),
            key: String::from_utf8_lossy(key.expose()).into_owned().into(),
        }
    }
}

impl ToWire for OperatorKeyRecord {
    type Wire = w::OperatorKey;
    fn to_wire(self) -> w::OperatorKey {
        let OperatorKeyRecord {
            id,
            name,
            hash: _,
            created_at,
            expires_at,
            revoked_at,
        } = self;
        w::OperatorKey {
            id: id.to_wire(),
            name,
            created_at,
            expires_at,
            revoked_at,
        }
    }
}

impl ToWire for CreatedOperatorKey {
    type Wire = w::CreatedOperatorKey;
    /// The one place a new operator key's plaintext goes to the wire.
    fn to_wire(self) -> w::CreatedOperatorKey {
        let CreatedOperatorKey { record, key } = self;
        w::CreatedOperatorKey {
            record: record.to_wire(),
            key: String::from_utf8_lossy(key.expose()).into_owned().into(),
        }
    }
}

impl ToDomain for w::KeyOwner {
    type Domain = KeyOwner;
    fn to_domain(self) -> KeyOwner {
        match self {
            w::KeyOwner::Caller => KeyOwner::Caller,
            w::KeyOwner::User(u) => KeyOwner::User(u.to_domain()),
            w::KeyOwner::Agent(a) => KeyOwner::Agent(a.to_domain()),
        }
    }
}
