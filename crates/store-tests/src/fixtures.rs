//! Records and scopes the checks build on.

use tenantry_core::scope::{CredentialRecord, Principal, Session, authenticate};
use tenantry_core::{
    AgentId, ApiKeyId, InstallId, InvocationId, OrgId, Outcome, Permission, PrincipalKind, Role,
    TenantScope, UserId,
};
use tenantry_store::*;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::{Backend, Must};

/// A fixed instant (2026-09-21T13:33:20Z) the checks count from, with whole seconds.
pub(crate) fn base() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_790_000_000).expect("valid timestamp")
}

/// `base() + secs + micros`: a time every backend keeps exactly.
pub(crate) fn at(secs: i64, micros: i64) -> OffsetDateTime {
    base() + Duration::seconds(secs) + Duration::microseconds(micros)
}

/// An owner's scope in `org` (scopes are minted only by `authenticate`). Also for
/// the backends' own tests.
pub fn owner_scope(org: OrgId, user: UserId) -> TenantScope {
    let rec = CredentialRecord {
        key_id: ApiKeyId::new(),
        expires_at: None,
        revoked_at: None,
        principal: Principal::User {
            org_id: org,
            id: user,
            role: Role::Owner,
        },
    };
    match authenticate(rec, OffsetDateTime::now_utc()) {
        Ok(Session::Tenant(s)) => s,
        _ => panic!("an owner credential must authenticate to a tenant scope"),
    }
}

/// An org whose tenant store exists, with an owner scope.
pub(crate) struct Org {
    pub id: OrgId,
    pub owner: UserId,
    pub scope: TenantScope,
}

impl Backend {
    /// A new org (tenant store created) with an owner's scope (the owner's row is not
    /// written).
    pub(crate) async fn org(&self) -> Org {
        let id = OrgId::new();
        self.tenants
            .create_tenant(id)
            .await
            .must(self, "create_tenant");
        let owner = UserId::new();
        Org {
            id,
            owner,
            scope: owner_scope(id, owner),
        }
    }

    pub(crate) async fn write(&self, org: &Org) -> Box<dyn TenantTx> {
        self.tenants
            .begin(&org.scope, true)
            .await
            .must(self, "begin(write)")
    }

    pub(crate) async fn read(&self, org: &Org) -> Box<dyn TenantTx> {
        self.tenants
            .begin(&org.scope, false)
            .await
            .must(self, "begin(read)")
    }

    /// Runs one write transaction and commits it.
    pub(crate) async fn commit(&self, tx: Box<dyn TenantTx>) {
        tx.commit().await.must(self, "commit");
    }

    /// [`TenantStore::credential`], failing the check on an error.
    pub(crate) async fn credential(
        &self,
        org: OrgId,
        key: ApiKeyId,
        hash: &[u8; 32],
    ) -> Option<(CredentialRecord, Option<OffsetDateTime>)> {
        self.tenants
            .credential(org, key, hash, Seen::NOTHING)
            .await
            .must(self, "credential")
    }

    /// Every audit entry `tx` sees (no filter: newest first).
    pub(crate) async fn all_audit(&self, tx: &mut Box<dyn TenantTx>) -> Vec<AuditEntry> {
        tx.list_audit(&AuditFilter::default())
            .await
            .must(self, "list_audit")
    }

    /// Every usage event `tx` sees (no filter: in `(at, id)` order).
    pub(crate) async fn all_usage(&self, tx: &mut Box<dyn TenantTx>) -> Vec<UsageEvent> {
        tx.list_usage(&UsageFilter::default())
            .await
            .must(self, "list_usage")
    }
}

/// Audit entries as (sequence number, target).
pub(crate) fn seq_targets(entries: &[AuditEntry]) -> Vec<(u64, &str)> {
    entries.iter().map(|e| (e.seq, e.target.as_str())).collect()
}

pub(crate) fn user(id: UserId, name: &str, role: Role, created_at: OffsetDateTime) -> UserRecord {
    UserRecord {
        id,
        name: name.into(),
        role,
        created_at,
    }
}

pub(crate) fn agent(on_behalf_of: UserId, name: &str) -> AgentRecord {
    AgentRecord {
        id: AgentId::new(),
        name: name.into(),
        on_behalf_of,
        grants: [Permission::Invoke, Permission::ReadOrg]
            .into_iter()
            .collect(),
        created_at: at(1, 250),
    }
}

/// An API key of `principal` whose hash is `seed` repeated (also for the backends'
/// own tests).
pub fn api_key(kind: PrincipalKind, principal: Uuid, seed: u8) -> ApiKeyRecord {
    ApiKeyRecord {
        id: ApiKeyId::new(),
        name: format!("key {seed}"),
        principal_kind: kind,
        principal_id: principal,
        prefix: format!("tnt_{seed:02x}"),
        hash: [seed; 32],
        created_at: at(2, 1),
        expires_at: None,
        revoked_at: None,
        last_used_at: None,
        breakglass: None,
    }
}

/// An enabled install of `plugin` 1.0.0 (also for the backends' own tests).
pub fn install(plugin: &str) -> InstallRecord {
    InstallRecord {
        id: InstallId::new(),
        plugin: plugin.into(),
        version: "1.0.0".into(),
        previous_version: None,
        artifact_sha256: "ab".repeat(32),
        config: serde_json::json!({"greeting": "hello"}),
        grants: Default::default(),
        enabled: true,
        rate_limit_per_minute: None,
        created_at: at(3, 0),
        updated_at: at(3, 0),
    }
}

/// A secret `token` of `install` (key version 1, three bytes of ciphertext).
pub(crate) fn secret(install: InstallId) -> SecretRecord {
    SecretRecord {
        install_id: install,
        name: "token".into(),
        key_version: 1,
        ciphertext: vec![1, 2, 3],
        created_at: at(0, 0),
        updated_at: at(0, 0),
    }
}

pub(crate) fn event(install: InstallId, when: OffsetDateTime) -> UsageEvent {
    UsageEvent {
        id: InvocationId::new(),
        at: when,
        install_id: install,
        plugin: "@acme/echo".into(),
        action: "run".into(),
        actor_kind: PrincipalKind::User,
        actor_id: Uuid::nil(),
        outcome: Outcome::Ok,
        duration_us: 10,
        fuel: 20,
        peak_memory_bytes: 30,
        host_calls: 1,
        bytes_in: 2,
        bytes_out: 3,
        caller_id: None,
    }
}

pub(crate) fn entry(action: &str, target: &str, when: OffsetDateTime) -> AuditEntry {
    AuditEntry {
        seq: 0,
        at: when,
        actor_kind: PrincipalKind::User,
        actor_id: Uuid::nil(),
        action: action.into(),
        target: target.into(),
        outcome: "OK".into(),
        request_id: None,
        details: serde_json::json!({}),
    }
}

/// A version record whose manifest carries a description, capabilities and docs.
pub(crate) fn version(
    plugin: &str,
    version: &str,
    publisher: &str,
    description: &str,
    published_at: OffsetDateTime,
) -> VersionRecord {
    let manifest = serde_json::json!({
        "name": plugin,
        "version": version,
        "publisher": publisher,
        "description": description,
        "capabilities": ["kv", "http"],
        "docs": "Reads 100% of the_input.",
    });
    VersionRecord {
        plugin: plugin.into(),
        version: version.into(),
        publisher: publisher.into(),
        manifest_json: manifest.to_string(),
        manifest_sha256: "cd".repeat(32),
        artifact_sha256: "ef".repeat(32),
        artifact_size: 1234,
        key_id: format!("{publisher}-key"),
        signature: "sig".into(),
        signed_at: published_at - Duration::seconds(5),
        published_at,
    }
}
