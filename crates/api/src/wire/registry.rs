//! The registry: publishers, versions, plugins, manifests, reviews.

use tenantry_api_types as w;
use tenantry_core::manifest::{ActionSpec, Manifest, Permissions};
use tenantry_service::registry::{
    DetachedSignature, NewPublisherKey, PluginDetail, ReviewView, VersionInfo,
};
use tenantry_store::{PluginSummary, PublisherKeyRecord, PublisherRecord, VersionRecord};

use super::{ToDomain, ToWire};

impl ToWire for PublisherRecord {
    type Wire = w::Publisher;
    fn to_wire(self) -> w::Publisher {
        let PublisherRecord {
            id,
            name,
            created_at,
        } = self;
        w::Publisher {
            id: id.to_wire(),
            name,
            created_at,
        }
    }
}

impl ToWire for PublisherKeyRecord {
    type Wire = w::PublisherKey;
    fn to_wire(self) -> w::PublisherKey {
        let PublisherKeyRecord {
            key_id,
            publisher_id,
            public_key,
            not_before,
            not_after,
            revoked_at,
            created_at,
        } = self;
        w::PublisherKey {
            key_id,
            publisher_id: publisher_id.to_wire(),
            public_key,
            not_before,
            not_after,
            revoked_at,
            created_at,
        }
    }
}

/// A publisher with its keys (`registry::list_publishers`' pairs).
impl ToWire for (PublisherRecord, Vec<PublisherKeyRecord>) {
    type Wire = w::PublisherView;
    fn to_wire(self) -> w::PublisherView {
        let (publisher, keys) = self;
        w::PublisherView {
            publisher: publisher.to_wire(),
            keys: keys.to_wire(),
        }
    }
}

impl ToWire for VersionRecord {
    type Wire = w::Version;
    fn to_wire(self) -> w::Version {
        let VersionRecord {
            plugin,
            version,
            publisher,
            manifest_json,
            manifest_sha256,
            artifact_sha256,
            artifact_size,
            key_id,
            signature,
            signed_at,
            published_at,
        } = self;
        w::Version {
            plugin,
            version,
            publisher,
            manifest_json,
            manifest_sha256,
            artifact_sha256,
            artifact_size,
            key_id,
            signature,
            signed_at,
            published_at,
        }
    }
}

impl ToWire for PluginSummary {
    type Wire = w::PluginSummary;
    fn to_wire(self) -> w::PluginSummary {
        let PluginSummary {
            name,
            publisher,
            description,
            latest_version,
            capabilities,
            rating_average,
            rating_count,
            created_at,
        } = self;
        w::PluginSummary {
            name,
            publisher,
            description,
            latest_version,
            capabilities,
            rating_average,
            rating_count,
            created_at,
        }
    }
}

impl ToWire for VersionInfo {
    type Wire = w::VersionInfo;
    fn to_wire(self) -> w::VersionInfo {
        let VersionInfo {
            version,
            artifact_sha256,
            artifact_size,
            key_id,
            published_at,
        } = self;
        w::VersionInfo {
            version,
            artifact_sha256,
            artifact_size,
            key_id,
            published_at,
        }
    }
}

impl ToWire for PluginDetail {
    type Wire = w::PluginDetail;
    fn to_wire(self) -> w::PluginDetail {
        let PluginDetail {
            summary,
            versions,
            manifest,
        } = self;
        w::PluginDetail {
            summary: summary.to_wire(),
            versions: versions.to_wire(),
            manifest: manifest.to_wire(),
        }
    }
}

impl ToWire for Manifest {
    type Wire = w::Manifest;
    fn to_wire(self) -> w::Manifest {
        let Manifest {
            name,
            version,
            description,
            publisher,
            capabilities,
            actions,
            config_schema,
            permissions,
            dependencies,
            docs,
        } = self;
        w::Manifest {
            name,
            version,
            description,
            publisher,
            capabilities,
            actions: actions.to_wire(),
            config_schema,
            permissions: permissions.to_wire(),
            dependencies,
            docs,
        }
    }
}

impl ToWire for ActionSpec {
    type Wire = w::ActionSpec;
    fn to_wire(self) -> w::ActionSpec {
        let ActionSpec {
            name,
            description,
            input_schema,
        } = self;
        w::ActionSpec {
            name,
            description,
            input_schema,
        }
    }
}

impl ToWire for Permissions {
    type Wire = w::Permissions;
    fn to_wire(self) -> w::Permissions {
        let Permissions {
            egress,
            kv,
            secrets,
            tools,
        } = self;
        w::Permissions {
            egress,
            kv,
            secrets,
            tools,
        }
    }
}

impl ToDomain for w::Permissions {
    type Domain = Permissions;
    fn to_domain(self) -> Permissions {
        let w::Permissions {
            egress,
            kv,
            secrets,
            tools,
        } = self;
        Permissions {
            egress,
            kv,
            secrets,
            tools,
        }
    }
}

impl ToWire for ReviewView {
    type Wire = w::ReviewView;
    fn to_wire(self) -> w::ReviewView {
        let ReviewView {
            rating,
            body,
            mine,
            updated_at,
        } = self;
        w::ReviewView {
            rating,
            body,
            mine,
            updated_at,
        }
    }
}

impl ToDomain for w::NewPublisherKey {
    type Domain = NewPublisherKey;
    fn to_domain(self) -> NewPublisherKey {
        let w::NewPublisherKey {
            public_key,
            not_before,
            not_after,
        } = self;
        NewPublisherKey {
            public_key,
            not_before,
            not_after,
        }
    }
}

impl ToDomain for w::DetachedSignature {
    type Domain = DetachedSignature;
    fn to_domain(self) -> DetachedSignature {
        let w::DetachedSignature {
            key_id,
            created,
            signature,
        } = self;
        DetachedSignature {
            key_id,
            created,
            signature,
        }
    }
}
