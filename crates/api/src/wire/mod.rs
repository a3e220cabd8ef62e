//! The edge: domain values into the API's wire types (`tenantry-api-types`, imported
//! as `w`), and parsed requests from them into the domain's inputs. One module per
//! resource.
//!
//! Conversions out of the domain destructure every record without `..`: a field the
//! store or the service adds fails to compile here until someone decides whether
//! the API shows it (add it to the wire type) or not (`field: _`). Nothing reaches
//! the wire by accident.

mod audit;
pub(crate) mod breakglass;
mod executions;
mod export;
mod installs;
mod invoke;
mod members;
mod orgs;
mod registry;
mod secrets;
pub mod usage;

use std::collections::BTreeSet;
use tenantry_api_types as w;

/// A domain value's form on the wire.
pub trait ToWire {
    type Wire;
    fn to_wire(self) -> Self::Wire;
}

/// A parsed request body's (or parameter's) form in the domain.
pub trait ToDomain {
    type Domain;
    fn to_domain(self) -> Self::Domain;
}

impl<T: ToWire> ToWire for Vec<T> {
    type Wire = Vec<T::Wire>;
    fn to_wire(self) -> Self::Wire {
        self.into_iter().map(ToWire::to_wire).collect()
    }
}

impl<T: ToWire> ToWire for Option<T> {
    type Wire = Option<T::Wire>;
    fn to_wire(self) -> Self::Wire {
        self.map(ToWire::to_wire)
    }
}

impl<T: ToWire> ToWire for BTreeSet<T>
where
    T::Wire: Ord,
{
    type Wire = BTreeSet<T::Wire>;
    fn to_wire(self) -> Self::Wire {
        self.into_iter().map(ToWire::to_wire).collect()
    }
}

impl<T: ToDomain> ToDomain for Option<T> {
    type Domain = Option<T::Domain>;
    fn to_domain(self) -> Self::Domain {
        self.map(ToDomain::to_domain)
    }
}

impl<T: ToDomain> ToDomain for BTreeSet<T>
where
    T::Domain: Ord,
{
    type Domain = BTreeSet<T::Domain>;
    fn to_domain(self) -> Self::Domain {
        self.into_iter().map(ToDomain::to_domain).collect()
    }
}

/// Ids: the same UUID on both sides (a wire id was parsed in canonical form only).
macro_rules! ids {
    ($($name:ident),* $(,)?) => {$(
        impl ToWire for tenantry_core::$name {
            type Wire = w::$name;
            fn to_wire(self) -> w::$name {
                w::$name::from_uuid(*self.as_uuid())
            }
        }
        impl ToDomain for w::$name {
            type Domain = tenantry_core::$name;
            fn to_domain(self) -> tenantry_core::$name {
                tenantry_core::$name::from_uuid(*self.as_uuid())
            }
        }
    )*};
}

ids!(
    OrgId,
    UserId,
    AgentId,
    ApiKeyId,
    InstallId,
    PublisherId,
    InvocationId,
    RequestId,
);

impl ToWire for tenantry_core::Role {
    type Wire = w::Role;
    fn to_wire(self) -> w::Role {
        use tenantry_core::Role::*;
        match self {
            Owner => w::Role::Owner,
            Admin => w::Role::Admin,
            Member => w::Role::Member,
            Viewer => w::Role::Viewer,
        }
    }
}

impl ToDomain for w::Role {
    type Domain = tenantry_core::Role;
    fn to_domain(self) -> tenantry_core::Role {
        use tenantry_core::Role;
        match self {
            w::Role::Owner => Role::Owner,
            w::Role::Admin => Role::Admin,
            w::Role::Member => Role::Member,
            w::Role::Viewer => Role::Viewer,
        }
    }
}

impl ToWire for tenantry_core::Permission {
    type Wire = w::Permission;
    fn to_wire(self) -> w::Permission {
        use tenantry_core::Permission::*;
        match self {
            ReadOrg => w::Permission::ReadOrg,
            ReadAudit => w::Permission::ReadAudit,
            Invoke => w::Permission::Invoke,
            ManageInstalls => w::Permission::ManageInstalls,
            ManageSecrets => w::Permission::ManageSecrets,
            ManageMembers => w::Permission::ManageMembers,
            ManageAgents => w::Permission::ManageAgents,
            ManageKeys => w::Permission::ManageKeys,
            Review => w::Permission::Review,
            VerifyAudit => w::Permission::VerifyAudit,
        }
    }
}

impl ToDomain for w::Permission {
    type Domain = tenantry_core::Permission;
    fn to_domain(self) -> tenantry_core::Permission {
        use tenantry_core::Permission as P;
        match self {
            w::Permission::ReadOrg => P::ReadOrg,
            w::Permission::ReadAudit => P::ReadAudit,
            w::Permission::Invoke => P::Invoke,
            w::Permission::ManageInstalls => P::ManageInstalls,
            w::Permission::ManageSecrets => P::ManageSecrets,
            w::Permission::ManageMembers => P::ManageMembers,
            w::Permission::ManageAgents => P::ManageAgents,
            w::Permission::ManageKeys => P::ManageKeys,
            w::Permission::Review => P::Review,
            w::Permission::VerifyAudit => P::VerifyAudit,
        }
    }
}

impl ToWire for tenantry_core::PrincipalKind {
    type Wire = w::PrincipalKind;
    fn to_wire(self) -> w::PrincipalKind {
        use tenantry_core::PrincipalKind::*;
        match self {
            Operator => w::PrincipalKind::Operator,
            User => w::PrincipalKind::User,
            Agent => w::PrincipalKind::Agent,
        }
    }
}

impl ToWire for tenantry_core::Outcome {
    type Wire = w::Outcome;
    fn to_wire(self) -> w::Outcome {
        use tenantry_core::Outcome::*;
        match self {
            Ok => w::Outcome::Ok,
            InvalidInput => w::Outcome::InvalidInput,
            PermissionDenied => w::Outcome::PermissionDenied,
            EgressDenied => w::Outcome::EgressDenied,
            OutOfFuel => w::Outcome::OutOfFuel,
            Timeout => w::Outcome::Timeout,
            MemoryLimit => w::Outcome::MemoryLimit,
            MaxHostCalls => w::Outcome::MaxHostCalls,
            OutputTooLarge => w::Outcome::OutputTooLarge,
            PluginTrap => w::Outcome::PluginTrap,
            PluginError => w::Outcome::PluginError,
            RateLimited => w::Outcome::RateLimited,
            QuotaExceeded => w::Outcome::QuotaExceeded,
            NotFound => w::Outcome::NotFound,
            Internal => w::Outcome::Internal,
        }
    }
}

impl ToWire for tenantry_core::ErrorCode {
    type Wire = w::ErrorCode;
    fn to_wire(self) -> w::ErrorCode {
        use tenantry_core::ErrorCode::*;
        match self {
            InvalidRequest => w::ErrorCode::InvalidRequest,
            InvalidManifest => w::ErrorCode::InvalidManifest,
            InvalidConfig => w::ErrorCode::InvalidConfig,
            InvalidInput => w::ErrorCode::InvalidInput,
            InvalidGrant => w::ErrorCode::InvalidGrant,
            InvalidVersion => w::ErrorCode::InvalidVersion,
            VersionNotIncreasing => w::ErrorCode::VersionNotIncreasing,
            InvalidSignature => w::ErrorCode::InvalidSignature,
            KeyNotValid => w::ErrorCode::KeyNotValid,
            ArtifactTampered => w::ErrorCode::ArtifactTampered,
            InvalidArtifact => w::ErrorCode::InvalidArtifact,
            PluginNotRunnable => w::ErrorCode::PluginNotRunnable,
            TooLarge => w::ErrorCode::TooLarge,
            DependencyMissing => w::ErrorCode::DependencyMissing,
            DependencyInUse => w::ErrorCode::DependencyInUse,
            DependencyCycle => w::ErrorCode::DependencyCycle,
            Conflict => w::ErrorCode::Conflict,
            Unauthenticated => w::ErrorCode::Unauthenticated,
            PermissionDenied => w::ErrorCode::PermissionDenied,
            NotFound => w::ErrorCode::NotFound,
            InstallDisabled => w::ErrorCode::InstallDisabled,
            RateLimited => w::ErrorCode::RateLimited,
            QuotaExceeded => w::ErrorCode::QuotaExceeded,
            Internal => w::ErrorCode::Internal,
            Unavailable => w::ErrorCode::Unavailable,
            OrgSuspended => w::ErrorCode::OrgSuspended,
            PolicyDenied => w::ErrorCode::PolicyDenied,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The wire strings are the domain's strings (`as_str`), for every variant.
    /// The string a value serialises to.
    fn json<T: serde::Serialize>(v: &T) -> String {
        match serde_json::to_value(v) {
            Ok(serde_json::Value::String(s)) => s,
            other => panic!("not a string: {other:?}"),
        }
    }

    #[test]
    fn enums_keep_their_strings() {
        for o in tenantry_core::Outcome::ALL {
            assert_eq!(json(&o.to_wire()), o.as_str());
        }
        for r in [
            tenantry_core::Role::Owner,
            tenantry_core::Role::Admin,
            tenantry_core::Role::Member,
            tenantry_core::Role::Viewer,
        ] {
            assert_eq!(json(&r.to_wire()), r.as_str());
            assert_eq!(r.to_wire().to_domain(), r);
            for p in r.permissions() {
                assert_eq!(json(&p.to_wire()), p.as_str());
                assert_eq!(p.to_wire().to_domain(), p);
            }
        }
        for k in [
            tenantry_core::PrincipalKind::Operator,
            tenantry_core::PrincipalKind::User,
            tenantry_core::PrincipalKind::Agent,
        ] {
            assert_eq!(json(&k.to_wire()), k.as_str());
        }
        use tenantry_core::ErrorCode::*;
        for c in [
            InvalidRequest,
            InvalidManifest,
            InvalidConfig,
            InvalidInput,
            InvalidGrant,
            InvalidVersion,
            VersionNotIncreasing,
            InvalidSignature,
            KeyNotValid,
            ArtifactTampered,
            InvalidArtifact,
            PluginNotRunnable,
            TooLarge,
            DependencyMissing,
            DependencyInUse,
            DependencyCycle,
            Conflict,
            Unauthenticated,
            PermissionDenied,
            NotFound,
            InstallDisabled,
            RateLimited,
            QuotaExceeded,
            Internal,
            Unavailable,
        ] {
            assert_eq!(json(&c.to_wire()), c.as_str());
        }
    }
}
