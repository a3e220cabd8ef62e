//! Principals, roles, permissions and the [`TenantScope`].
//!
//! A [`TenantScope`] is the only key to tenant-owned data: every tenant store method
//! takes one, and the store derives the org it touches from it (the file it opens in
//! embedded mode, the `SET LOCAL app.org_id` in pooled mode). A scope is minted only
//! by [`authenticate`] from a credential record the store looked up by the presented
//! key's hash, or by an authenticated operator entering an org
//! ([`OperatorScope::enter_org`]), which the audit trail records. No constructor takes
//! an org id from a request.

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::{Error, ErrorCode, Result};
use crate::ids::{AgentId, ApiKeyId, OrgId, UserId};

/// A person's role in an org.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Owner,
    Admin,
    Member,
    Viewer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Member => "member",
            Role::Viewer => "viewer",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "owner" => Some(Role::Owner),
            "admin" => Some(Role::Admin),
            "member" => Some(Role::Member),
            "viewer" => Some(Role::Viewer),
            _ => None,
        }
    }

    /// What this role may do. Deny by default: anything not listed is refused.
    pub fn permissions(self) -> BTreeSet<Permission> {
        use Permission::*;
        let viewer = [ReadOrg];
        let member = [ReadOrg, Invoke];
        let admin = [
            ReadOrg,
            Invoke,
            ReadAudit,
            VerifyAudit,
            ManageInstalls,
            ManageMembers,
            ManageAgents,
            ManageKeys,
            Review,
        ];
        match self {
            Role::Viewer => viewer.into_iter().collect(),
            Role::Member => member.into_iter().collect(),
            Role::Admin => admin.into_iter().collect(),
            Role::Owner => admin.into_iter().chain([ManageSecrets]).collect(),
        }
    }
}

/// One thing a principal may do inside its org.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    /// See installs, config, bindings, secret names, usage.
    ReadOrg,
    /// Read the audit trail.
    ReadAudit,
    /// Check the audit trail's hash chain: a report of counts and hashes, no entry's
    /// content (what an operator may do in any org).
    VerifyAudit,
    /// Invoke plugin actions.
    Invoke,
    /// Install, configure, enable/disable, upgrade, uninstall; bind agents.
    ManageInstalls,
    /// Set and delete secrets (owners only).
    ManageSecrets,
    /// Add users and change roles.
    ManageMembers,
    /// Create and delete agents.
    ManageAgents,
    /// Create and revoke API keys for others.
    ManageKeys,
    /// Write the org's review of a plugin.
    Review,
}

impl Permission {
    pub fn as_str(self) -> &'static str {
        use Permission::*;
        match self {
            ReadOrg => "read_org",
            ReadAudit => "read_audit",
            VerifyAudit => "verify_audit",
            Invoke => "invoke",
            ManageInstalls => "manage_installs",
            ManageSecrets => "manage_secrets",
            ManageMembers => "manage_members",
            ManageAgents => "manage_agents",
            ManageKeys => "manage_keys",
            Review => "review",
        }
    }
}

/// Who holds a credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrincipalKind {
    Operator,
    User,
    Agent,
}

impl PrincipalKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PrincipalKind::Operator => "operator",
            PrincipalKind::User => "user",
            PrincipalKind::Agent => "agent",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "operator" => Some(Self::Operator),
            "user" => Some(Self::User),
            "agent" => Some(Self::Agent),
            _ => None,
        }
    }
}

/// The acting principal as recorded in audit entries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub kind: PrincipalKind,
    pub id: Uuid,
    /// For agents: the user they act for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_behalf_of: Option<UserId>,
}

/// What the store found for a presented API key (looked up by its SHA-256).
/// Input to [`authenticate`]; the store fills it, never a request.
#[derive(Debug, Clone)]
pub struct CredentialRecord {
    pub key_id: ApiKeyId,
    pub expires_at: Option<OffsetDateTime>,
    pub revoked_at: Option<OffsetDateTime>,
    pub principal: Principal,
}

/// The principal a credential belongs to, with what the store knows of it now.
#[derive(Debug, Clone)]
pub enum Principal {
    Operator {
        id: Uuid,
    },
    User {
        org_id: OrgId,
        id: UserId,
        role: Role,
    },
    /// An agent, with its grants and its user's current role (so a user who loses a
    /// permission takes it from their agents at the next request).
    Agent {
        org_id: OrgId,
        id: AgentId,
        on_behalf_of: UserId,
        user_role: Role,
        grants: BTreeSet<Permission>,
    },
    /// The operator inside one org through a break-glass grant (a time-bound token
    /// tied to a ticket).
    BreakGlass {
        org_id: OrgId,
        operator_id: Uuid,
        grant: BreakGlass,
    },
}

/// What a break-glass grant allows and why it exists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreakGlass {
    /// The ticket it was opened for (every request made with it is audited with it).
    pub ticket: String,
    /// Why, in words.
    pub reason: String,
    /// Read-only unless `true`: then what an owner may do.
    pub write: bool,
    /// Waiting for a second operator's approval (where the server asks for one):
    /// until approved, the token is refused like an unknown key.
    #[serde(default)]
    pub pending: bool,
    /// The operator (key) that approved it, and when (`None`: no approval was asked).
    #[serde(default)]
    pub approved_by: Option<Uuid>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub approved_at: Option<OffsetDateTime>,
}

impl BreakGlass {
    /// The permissions of a break-glass scope: reading the org's configuration,
    /// members and audit; with `write`, everything an owner may do.
    pub fn permissions(&self) -> BTreeSet<Permission> {
        if self.write {
            Role::Owner.permissions()
        } else {
            [
                Permission::ReadOrg,
                Permission::ReadAudit,
                Permission::VerifyAudit,
            ]
            .into_iter()
            .collect()
        }
    }
}

/// The answer to a key nobody can use: missing, unknown, or a break-glass token
/// that expired or was closed (refused exactly like an unknown key).
pub const UNKNOWN_KEY: &str = "missing or unknown API key; send 'Authorization: Bearer tny_…' (set TENANTRY_API_KEY for the CLI)";

/// An authenticated request context: the operator, or a principal inside one org.
#[derive(Debug, Clone)]
pub enum Session {
    Operator(OperatorScope),
    Tenant(TenantScope),
}

/// Turns a credential record into a session, refusing expired and revoked keys.
/// This is the only place a [`TenantScope`] is created for a tenant principal.
pub fn authenticate(record: CredentialRecord, now: OffsetDateTime) -> Result<Session> {
    let unauth = |why: &str| {
        Error::new(
            ErrorCode::Unauthenticated,
            format!("API key {why}; create a new key with `tenantry key create`"),
        )
    };
    if let Principal::BreakGlass { grant, .. } = &record.principal
        && (record.revoked_at.is_some()
            || record.expires_at.is_some_and(|e| e <= now)
            || grant.pending)
    {
        return Err(Error::new(ErrorCode::Unauthenticated, UNKNOWN_KEY));
    }
    if record.revoked_at.is_some() {
        return Err(unauth("has been revoked"));
    }
    if record.expires_at.is_some_and(|e| e <= now) {
        return Err(unauth("has expired"));
    }
    Ok(match record.principal {
        Principal::Operator { id } => Session::Operator(OperatorScope {
            id,
            key_id: record.key_id,
        }),
        Principal::User { org_id, id, role } => Session::Tenant(TenantScope {
            org_id,
            actor: Actor {
                kind: PrincipalKind::User,
                id: *id.as_uuid(),
                on_behalf_of: None,
            },
            permissions: role.permissions(),
            key_id: Some(record.key_id),
            breakglass: None,
        }),
        Principal::BreakGlass {
            org_id,
            operator_id,
            grant,
        } => Session::Tenant(TenantScope {
            org_id,
            actor: Actor {
                kind: PrincipalKind::Operator,
                id: operator_id,
                on_behalf_of: None,
            },
            permissions: grant.permissions(),
            key_id: Some(record.key_id),
            breakglass: Some(grant),
        }),
        Principal::Agent {
            org_id,
            id,
            on_behalf_of,
            user_role,
            grants,
        } => {
            let effective = grants
                .intersection(&user_role.permissions())
                .copied()
                .collect();
            Session::Tenant(TenantScope {
                org_id,
                actor: Actor {
                    kind: PrincipalKind::Agent,
                    id: *id.as_uuid(),
                    on_behalf_of: Some(on_behalf_of),
                },
                permissions: effective,
                key_id: Some(record.key_id),
                breakglass: None,
            })
        }
    })
}

/// Proof that the request was authenticated as the platform operator.
#[derive(Debug, Clone)]
pub struct OperatorScope {
    id: Uuid,
    key_id: ApiKeyId,
}

impl OperatorScope {
    pub fn id(&self) -> Uuid {
        self.id
    }
    pub fn key_id(&self) -> ApiKeyId {
        self.key_id
    }
    pub fn actor(&self) -> Actor {
        Actor {
            kind: PrincipalKind::Operator,
            id: self.id,
            on_behalf_of: None,
        }
    }

    /// Enters one org to provision it (add members, issue keys). The resulting scope
    /// can manage members and keys only: it cannot read config, secrets or audit, and
    /// every write it makes lands in that org's audit trail with the operator as actor.
    pub fn enter_org(&self, org_id: OrgId) -> TenantScope {
        TenantScope {
            org_id,
            actor: self.actor(),
            permissions: [Permission::ManageMembers, Permission::ManageKeys]
                .into_iter()
                .collect(),
            key_id: Some(self.key_id),
            breakglass: None,
        }
    }
}

/// The org id of the operator's own audit trail (org lifecycle, break-glass, the
/// registry): the nil UUID, which no org ever has (org ids are UUIDv7).
pub const OPERATOR_LOG: OrgId = OrgId::nil();

impl OperatorScope {
    /// The operator's own audit trail, to read and verify.
    pub fn operator_log(&self) -> TenantScope {
        TenantScope {
            org_id: OPERATOR_LOG,
            actor: self.actor(),
            permissions: [Permission::ReadAudit, Permission::VerifyAudit]
                .into_iter()
                .collect(),
            key_id: Some(self.key_id),
            breakglass: None,
        }
    }
}

impl Session {
    /// A scope that only appends to the operator's audit trail what this session did
    /// to the platform (publishing a plugin): its actor, no permissions.
    pub fn operator_log_writer(&self) -> TenantScope {
        let (actor, key_id) = match self {
            Session::Operator(o) => (o.actor(), Some(o.key_id)),
            Session::Tenant(t) => (t.actor.clone(), t.key_id),
        };
        TenantScope {
            org_id: OPERATOR_LOG,
            actor,
            permissions: BTreeSet::new(),
            key_id,
            breakglass: None,
        }
    }
}

impl OperatorScope {
    /// Enters one org to check its audit trail's hash chain, and nothing else: the
    /// report holds counts and hashes, never an entry's content.
    pub fn verify_org(&self, org_id: OrgId) -> TenantScope {
        TenantScope {
            org_id,
            actor: self.actor(),
            permissions: [Permission::VerifyAudit].into_iter().collect(),
            key_id: Some(self.key_id),
            breakglass: None,
        }
    }
}

/// An authenticated principal inside exactly one org. The key to tenant data.
#[derive(Debug, Clone)]
pub struct TenantScope {
    org_id: OrgId,
    actor: Actor,
    permissions: BTreeSet<Permission>,
    key_id: Option<ApiKeyId>,
    /// Set when the operator acts through a break-glass grant.
    breakglass: Option<BreakGlass>,
}

impl TenantScope {
    /// The break-glass grant this scope acts through, if any (`key_id` is its id).
    pub fn breakglass(&self) -> Option<&BreakGlass> {
        self.breakglass.as_ref()
    }
    pub fn org_id(&self) -> OrgId {
        self.org_id
    }
    pub fn actor(&self) -> &Actor {
        &self.actor
    }
    pub fn permissions(&self) -> &BTreeSet<Permission> {
        &self.permissions
    }
    pub fn key_id(&self) -> Option<ApiKeyId> {
        self.key_id
    }
    pub fn can(&self, p: Permission) -> bool {
        self.permissions.contains(&p)
    }
    /// `Ok` if the principal holds `p`, else `PERMISSION_DENIED` naming it.
    pub fn require(&self, p: Permission) -> Result<()> {
        if self.can(p) {
            Ok(())
        } else {
            Err(Error::denied(format!(
                "this {} lacks the '{}' permission; ask an org owner or admin",
                self.actor.kind.as_str(),
                p.as_str()
            )))
        }
    }
    pub fn is_agent(&self) -> bool {
        self.actor.kind == PrincipalKind::Agent
    }
    pub fn agent_id(&self) -> Option<AgentId> {
        self.is_agent().then(|| AgentId::from_uuid(self.actor.id))
    }
    /// The user behind this principal: the user itself, or the user an agent acts for.
    pub fn user_id(&self) -> Option<UserId> {
        match self.actor.kind {
            PrincipalKind::User => Some(UserId::from_uuid(self.actor.id)),
            PrincipalKind::Agent => self.actor.on_behalf_of,
            PrincipalKind::Operator => None,
        }
    }

    /// The server itself in `org`, for its periodic audit checkpoints: the one scope
    /// minted without a credential. It holds no permission (every service function
    /// that checks one refuses it); its audit entries name the nil operator.
    pub fn checkpointer(org_id: OrgId) -> TenantScope {
        TenantScope {
            org_id,
            actor: Actor {
                kind: PrincipalKind::Operator,
                id: Uuid::nil(),
                on_behalf_of: None,
            },
            permissions: BTreeSet::new(),
            key_id: None,
            breakglass: None,
        }
    }

    /// A scope for the server's own background work in one org (flushing usage,
    /// running an already-authorised invocation's host calls). Crate users reach it
    /// only from an existing scope, so it never widens to another org.
    pub fn system_for_same_org(&self) -> TenantScope {
        TenantScope {
            org_id: self.org_id,
            actor: self.actor.clone(),
            permissions: BTreeSet::new(),
            key_id: self.key_id,
            breakglass: self.breakglass.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(user_role: Role, grants: &[Permission]) -> TenantScope {
        let rec = CredentialRecord {
            key_id: ApiKeyId::new(),
            expires_at: None,
            revoked_at: None,
            principal: Principal::Agent {
                org_id: OrgId::new(),
                id: AgentId::new(),
                on_behalf_of: UserId::new(),
                user_role,
                grants: grants.iter().copied().collect(),
            },
        };
        match authenticate(rec, crate::now()).unwrap() {
            Session::Tenant(s) => s,
            Session::Operator(_) => unreachable!(),
        }
    }

    #[test]
    fn agent_loses_permissions_its_user_lost() {
        let a = agent(
            Role::Admin,
            &[Permission::Invoke, Permission::ManageInstalls],
        );
        assert!(a.can(Permission::ManageInstalls));
        let demoted = agent(
            Role::Viewer,
            &[Permission::Invoke, Permission::ManageInstalls],
        );
        assert!(!demoted.can(Permission::Invoke));
        assert!(!demoted.can(Permission::ManageInstalls));
    }

    #[test]
    fn only_owners_manage_secrets() {
        assert!(
            Role::Owner
                .permissions()
                .contains(&Permission::ManageSecrets)
        );
        for r in [Role::Admin, Role::Member, Role::Viewer] {
            assert!(!r.permissions().contains(&Permission::ManageSecrets));
        }
    }

    #[test]
    fn expired_and_revoked_keys_are_refused() {
        let now = crate::now();
        let base = CredentialRecord {
            key_id: ApiKeyId::new(),
            expires_at: Some(now - time::Duration::seconds(1)),
            revoked_at: None,
            principal: Principal::Operator { id: Uuid::now_v7() },
        };
        assert!(authenticate(base.clone(), now).is_err());
        let revoked = CredentialRecord {
            expires_at: None,
            revoked_at: Some(now),
            ..base
        };
        assert!(authenticate(revoked, now).is_err());
    }
}
