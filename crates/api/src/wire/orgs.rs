//! Orgs, tiers and limits.

use tenantry_api_types as w;
use tenantry_core::{Tier, TierOverrides};
use tenantry_service::keys::MasterRotation;
use tenantry_service::limits::LimiterStatus;
use tenantry_service::orgs::{DeletedOrg, LimitsView, OrgView, QuotaState};
use tenantry_service::secrets::KeyRotation;
use tenantry_store::OrgRecord;

use super::{ToDomain, ToWire};

impl ToWire for OrgRecord {
    type Wire = w::Org;
    fn to_wire(self) -> w::Org {
        let OrgRecord {
            id,
            name,
            tier,
            overrides,
            created_at,
            suspended_at,
        } = self;
        w::Org {
            id: id.to_wire(),
            name,
            tier,
            overrides: overrides.to_wire(),
            created_at,
            suspended_at,
        }
    }
}

impl ToWire for DeletedOrg {
    type Wire = w::DeletedOrg;
    fn to_wire(self) -> w::DeletedOrg {
        let DeletedOrg {
            id,
            name,
            deleted_at,
            keys_shredded,
        } = self;
        w::DeletedOrg {
            id: id.to_wire(),
            name,
            deleted_at,
            keys_shredded,
        }
    }
}

impl ToWire for OrgView {
    type Wire = w::OrgView;
    fn to_wire(self) -> w::OrgView {
        let OrgView {
            org,
            permissions,
            key_version,
        } = self;
        w::OrgView {
            org: org.to_wire(),
            permissions: permissions.to_wire(),
            key_version,
        }
    }
}

impl ToWire for MasterRotation {
    type Wire = w::MasterKeyRotation;
    fn to_wire(self) -> w::MasterKeyRotation {
        let MasterRotation {
            orgs_checked,
            vault_files_resealed,
            org_keys_rotated,
            remaining,
        } = self;
        w::MasterKeyRotation {
            orgs_checked,
            vault_files_resealed,
            org_keys_rotated,
            remaining,
        }
    }
}

impl ToWire for KeyRotation {
    type Wire = w::KeyRotation;
    fn to_wire(self) -> w::KeyRotation {
        let KeyRotation {
            key_version,
            secrets_resealed,
            in_vault,
        } = self;
        w::KeyRotation {
            key_version,
            secrets_resealed,
            in_vault,
        }
    }
}

impl ToWire for Tier {
    type Wire = w::Tier;
    fn to_wire(self) -> w::Tier {
        let Tier {
            name,
            executions_per_day,
            executions_per_month,
            max_wall_time_ms,
            concurrent_executions,
            host_calls_per_execution,
            tool_calls_per_day,
            memory_bytes,
            artifact_bytes,
            output_bytes,
            plugins_installed,
            storage_bytes,
            agents,
            invocations_per_minute,
        } = self;
        w::Tier {
            name,
            executions_per_day,
            executions_per_month,
            max_wall_time_ms,
            concurrent_executions,
            host_calls_per_execution,
            tool_calls_per_day,
            memory_bytes,
            artifact_bytes,
            output_bytes,
            plugins_installed,
            storage_bytes,
            agents,
            invocations_per_minute,
        }
    }
}

impl ToWire for TierOverrides {
    type Wire = w::TierOverrides;
    fn to_wire(self) -> w::TierOverrides {
        let TierOverrides {
            executions_per_day,
            executions_per_month,
            max_wall_time_ms,
            concurrent_executions,
            host_calls_per_execution,
            tool_calls_per_day,
            memory_bytes,
            artifact_bytes,
            output_bytes,
            plugins_installed,
            storage_bytes,
            agents,
            invocations_per_minute,
        } = self;
        w::TierOverrides {
            executions_per_day,
            executions_per_month,
            max_wall_time_ms,
            concurrent_executions,
            host_calls_per_execution,
            tool_calls_per_day,
            memory_bytes,
            artifact_bytes,
            output_bytes,
            plugins_installed,
            storage_bytes,
            agents,
            invocations_per_minute,
        }
    }
}

impl ToDomain for w::TierOverrides {
    type Domain = TierOverrides;
    fn to_domain(self) -> TierOverrides {
        let w::TierOverrides {
            executions_per_day,
            executions_per_month,
            max_wall_time_ms,
            concurrent_executions,
            host_calls_per_execution,
            tool_calls_per_day,
            memory_bytes,
            artifact_bytes,
            output_bytes,
            plugins_installed,
            storage_bytes,
            agents,
            invocations_per_minute,
        } = self;
        TierOverrides {
            executions_per_day,
            executions_per_month,
            max_wall_time_ms,
            concurrent_executions,
            host_calls_per_execution,
            tool_calls_per_day,
            memory_bytes,
            artifact_bytes,
            output_bytes,
            plugins_installed,
            storage_bytes,
            agents,
            invocations_per_minute,
        }
    }
}

impl ToWire for QuotaState {
    type Wire = w::QuotaState;
    fn to_wire(self) -> w::QuotaState {
        let QuotaState {
            quota,
            used,
            limit,
            resets_at,
        } = self;
        w::QuotaState {
            quota,
            used,
            limit,
            resets_at,
        }
    }
}

impl ToWire for LimiterStatus {
    type Wire = w::LimiterStatus;
    fn to_wire(self) -> w::LimiterStatus {
        let LimiterStatus {
            backend,
            degraded,
            fallback_decisions,
        } = self;
        w::LimiterStatus {
            backend,
            degraded,
            fallback_decisions,
        }
    }
}

impl ToWire for LimitsView {
    type Wire = w::LimitsView;
    fn to_wire(self) -> w::LimitsView {
        let LimitsView {
            effective,
            overrides,
            quotas,
            quotas_error,
            limiter,
            pilot,
        } = self;
        let tenantry_core::pilot::PilotPolicy {
            max_orgs,
            plugins,
            egress,
        } = pilot;
        w::LimitsView {
            effective: effective.to_wire(),
            overrides: overrides.to_wire(),
            quotas: quotas.to_wire(),
            quotas_error,
            limiter: limiter.to_wire(),
            pilot: w::PilotPolicy {
                max_orgs,
                plugins,
                egress,
            },
        }
    }
}
