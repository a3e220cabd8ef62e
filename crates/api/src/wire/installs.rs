//! Installs and bindings.

use tenantry_api_types as w;
use tenantry_service::installs::{InstallPatch, InstallRequest, InstallView};
use tenantry_store::{BindingRecord, InstallRecord};

use super::{ToDomain, ToWire};

impl ToWire for InstallRecord {
    type Wire = w::Install;
    fn to_wire(self) -> w::Install {
        let InstallRecord {
            id,
            plugin,
            version,
            previous_version,
            artifact_sha256,
            config,
            grants,
            enabled,
            rate_limit_per_minute,
            created_at,
            updated_at,
        } = self;
        w::Install {
            id: id.to_wire(),
            plugin,
            version,
            previous_version,
            artifact_sha256,
            config,
            grants: grants.to_wire(),
            enabled,
            rate_limit_per_minute,
            created_at,
            updated_at,
        }
    }
}

impl ToWire for InstallView {
    type Wire = w::InstallView;
    fn to_wire(self) -> w::InstallView {
        let InstallView {
            install,
            requested,
            secret_names,
        } = self;
        w::InstallView {
            install: install.to_wire(),
            requested: requested.to_wire(),
            secret_names,
        }
    }
}

impl ToWire for BindingRecord {
    type Wire = w::Binding;
    fn to_wire(self) -> w::Binding {
        let BindingRecord {
            agent_id,
            install_id,
            created_at,
        } = self;
        w::Binding {
            agent_id: agent_id.to_wire(),
            install_id: install_id.to_wire(),
            created_at,
        }
    }
}

impl ToDomain for w::InstallRequest {
    type Domain = InstallRequest;
    fn to_domain(self) -> InstallRequest {
        let w::InstallRequest {
            plugin,
            version,
            config,
            grants,
            enabled,
        } = self;
        InstallRequest {
            plugin,
            version,
            config,
            grants: grants.to_domain(),
            enabled,
        }
    }
}

impl ToDomain for w::InstallPatch {
    type Domain = InstallPatch;
    fn to_domain(self) -> InstallPatch {
        let w::InstallPatch {
            config,
            grants,
            enabled,
            rate_limit_per_minute,
        } = self;
        InstallPatch {
            config,
            grants: grants.to_domain(),
            enabled,
            rate_limit_per_minute,
        }
    }
}
