//! Users, agents and API keys of one org.
//!
//! Rules that keep privileges from growing:
//! - only an owner (or the operator provisioning the org) makes or unmakes owners,
//!   and the last owner cannot be demoted;
//! - an agent's grants are ⊆ its user's role permissions *and* ⊆ its creator's;
//! - a key for another principal can only be made by someone holding at least that
//!   principal's permissions.

use serde_json::json;
use std::collections::BTreeSet;
use tenantry_core::{
    AgentId, ApiKeyId, Error, ErrorCode, Permission, PrincipalKind, Result, Role, TenantScope,
    UserId,
};
use tenantry_crypto::{NewApiKey, SecretValue, generate_api_key};
use tenantry_store::{AgentRecord, ApiKeyRecord, KeyIndexEntry, Seen, TenantTx, UserRecord};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{RequestCtx, Service, audit_entry};

/// Validates a display name (user, agent or key): 1-128 printable characters.
fn check_name(kind: &str, name: &str) -> Result<()> {
    tenantry_core::text::check_line(&format!("{kind} name"), name, 128)
}

/// The acting principal's role if it is a user (operators count as owners here,
/// since they provision orgs).
async fn actor_is_owner(tx: &mut Box<dyn TenantTx>, scope: &TenantScope) -> Result<bool> {
    match scope.actor().kind {
        PrincipalKind::Operator => Ok(true),
        PrincipalKind::User => Ok(tx
            .get_user(UserId::from_uuid(scope.actor().id))
            .await?
            .is_some_and(|u| u.role == Role::Owner)),
        PrincipalKind::Agent => Ok(false),
    }
}

fn owner_only() -> Error {
    Error::denied("only an org owner can grant or remove the owner role")
}

pub async fn add_user(
    svc: &Service,
    scope: &TenantScope,
    ctx: &RequestCtx,
    name: &str,
    role: Role,
) -> Result<UserRecord> {
    scope.require(Permission::ManageMembers)?;
    check_name("user", name)?;
    let mut tx = svc.write(scope).await?;
    if role == Role::Owner && !actor_is_owner(&mut tx, scope).await? {
        return Err(owner_only());
    }
    let user = UserRecord {
        id: UserId::new(),
        name: name.into(),
        role,
        created_at: tenantry_core::now(),
    };
    tx.insert_user(&user)
        .await
        .map_err(|e| conflict(e, "a user with that name already exists in this org"))?;
    let entry = audit_entry(
        scope,
        ctx,
        "user.create",
        user.id.to_string(),
        json!({"name": name, "role": role}),
    );
    svc.finish(tx, entry).await?;
    Ok(user)
}

/// The org's users, for anyone who may read the org or manage its members (an
/// operator provisioning it among them).
pub async fn list_users(svc: &Service, scope: &TenantScope) -> Result<Vec<UserRecord>> {
    if !scope.can(Permission::ManageMembers) {
        scope.require(Permission::ReadOrg)?;
    }
    Ok(svc.read(scope).await?.list_users().await?)
}

pub async fn set_role(
    svc: &Service,
    scope: &TenantScope,
    ctx: &RequestCtx,
    user: UserId,
    role: Role,
) -> Result<UserRecord> {
    scope.require(Permission::ManageMembers)?;
    let mut tx = svc.write(scope).await?;
    let mut current = tx
        .get_user(user)
        .await?
        .ok_or_else(|| Error::not_found("user"))?;
    if (role == Role::Owner || current.role == Role::Owner)
        && !actor_is_owner(&mut tx, scope).await?
    {
        return Err(owner_only());
    }
    if current.role == Role::Owner && role != Role::Owner {
        let owners = tx
            .list_users()
            .await?
            .iter()
            .filter(|u| u.role == Role::Owner)
            .count();
        if owners <= 1 {
            return Err(Error::new(
                ErrorCode::Conflict,
                "cannot demote the org's last owner; make another owner first",
            ));
        }
    }
    tx.set_user_role(user, role).await?;
    let entry = audit_entry(
        scope,
        ctx,
        "user.set_role",
        user.to_string(),
        json!({"from": current.role, "to": role}),
    );
    svc.finish(tx, entry).await?;
    current.role = role;
    Ok(current)
}

pub async fn create_agent(
    svc: &Service,
    scope: &TenantScope,
    ctx: &RequestCtx,
    name: &str,
    on_behalf_of: Option<UserId>,
    grants: BTreeSet<Permission>,
) -> Result<AgentRecord> {
    scope.require(Permission::ManageAgents)?;
    check_name("agent", name)?;
    let user_id = on_behalf_of
        .or(scope.user_id())
        .ok_or_else(|| Error::invalid("name the user the agent acts for ('on_behalf_of')"))?;
    let tier = svc.tier_of(scope.org_id(), Seen::NOTHING).await?;
    let mut tx = svc.write(scope).await?;
    crate::limits::check_standing(
        "agents",
        tx.list_agents().await?.len() as u64,
        1,
        u64::from(tier.agents),
        "remove an agent first or ask the operator for a higher tier",
    )?;
    let user = tx
        .get_user(user_id)
        .await?
        .ok_or_else(|| Error::not_found("user"))?;
    let user_perms = user.role.permissions();
    if let Some(p) = grants.iter().find(|p| !user_perms.contains(p)) {
        return Err(Error::new(
            ErrorCode::InvalidGrant,
            format!(
                "agent grant '{}' exceeds what its user ({} role) may do",
                p.as_str(),
                user.role.as_str()
            ),
        ));
    }
    if let Some(p) = grants.iter().find(|p| !scope.can(**p)) {
        return Err(Error::new(
            ErrorCode::InvalidGrant,
            format!("you cannot grant '{}', which you do not hold", p.as_str()),
        ));
    }
    let agent = AgentRecord {
        id: AgentId::new(),
        name: name.into(),
        on_behalf_of: user_id,
        grants,
        created_at: tenantry_core::now(),
    };
    tx.insert_agent(&agent)
        .await
        .map_err(|e| conflict(e, "an agent with that name already exists in this org"))?;
    let entry = audit_entry(
        scope,
        ctx,
        "agent.create",
        agent.id.to_string(),
        json!({"name": name, "on_behalf_of": user_id, "grants": agent.grants}),
    );
    svc.finish(tx, entry).await?;
    Ok(agent)
}

pub async fn list_agents(svc: &Service, scope: &TenantScope) -> Result<Vec<AgentRecord>> {
    scope.require(Permission::ReadOrg)?;
    Ok(svc.read(scope).await?.list_agents().await?)
}

/// Deletes an agent, its bindings and revokes its keys.
pub async fn delete_agent(
    svc: &Service,
    scope: &TenantScope,
    ctx: &RequestCtx,
    agent: AgentId,
) -> Result<()> {
    scope.require(Permission::ManageAgents)?;
    let mut tx = svc.write(scope).await?;
    tx.get_agent(agent)
        .await?
        .ok_or_else(|| Error::not_found("agent"))?;
    let now = tenantry_core::now();
    for k in tx.list_api_keys().await? {
        if k.principal_kind == PrincipalKind::Agent && k.principal_id == *agent.as_uuid() {
            tx.revoke_api_key(k.id, now).await?;
        }
    }
    tx.delete_agent(agent).await?;
    svc.finish(
        tx,
        audit_entry(scope, ctx, "agent.delete", agent.to_string(), json!({})),
    )
    .await
}

/// Whose key to create.
#[derive(Debug, Clone, Copy)]
pub enum KeyOwner {
    /// The calling user.
    Caller,
    User(UserId),
    Agent(AgentId),
}

/// A new key: shown once.
pub struct CreatedKey {
    pub record: ApiKeyRecord,
    /// The key itself. It is not stored and cannot be shown again.
    pub key: SecretValue,
}

impl std::fmt::Debug for CreatedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedKey")
            .field("record", &self.record)
            .finish_non_exhaustive()
    }
}

pub async fn create_key(
    svc: &Service,
    scope: &TenantScope,
    ctx: &RequestCtx,
    owner: KeyOwner,
    name: &str,
    expires_at: Option<OffsetDateTime>,
) -> Result<CreatedKey> {
    check_name("key", name)?;
    if expires_at.is_some_and(|e| e <= tenantry_core::now()) {
        return Err(Error::invalid("expires_at is in the past"));
    }
    let mut tx = svc.write(scope).await?;
    let (kind, principal_id, perms): (PrincipalKind, Uuid, BTreeSet<Permission>) = match owner {
        KeyOwner::Caller => match (scope.actor().kind, scope.user_id()) {
            (PrincipalKind::User, Some(u)) => (PrincipalKind::User, *u.as_uuid(), BTreeSet::new()),
            _ => {
                return Err(Error::denied(
                    "only users create keys for themselves; name the user or agent",
                ));
            }
        },
        KeyOwner::User(u) => {
            scope.require(Permission::ManageKeys)?;
            let user = tx
                .get_user(u)
                .await?
                .ok_or_else(|| Error::not_found("user"))?;
            (PrincipalKind::User, *u.as_uuid(), user.role.permissions())
        }
        KeyOwner::Agent(a) => {
            scope.require(Permission::ManageKeys)?;
            let agent = tx
                .get_agent(a)
                .await?
                .ok_or_else(|| Error::not_found("agent"))?;
            (PrincipalKind::Agent, *a.as_uuid(), agent.grants)
        }
    };
    // Provisioning operators may issue any key; everyone else only keys that do not
    // exceed what they hold themselves.
    if scope.actor().kind != PrincipalKind::Operator
        && let Some(p) = perms.iter().find(|p| !scope.can(**p))
    {
        return Err(Error::denied(format!(
            "that principal holds '{}', which you do not; ask an owner to create its key",
            p.as_str()
        )));
    }
    let expires_at = match scope.breakglass() {
        // A key made through a break-glass grant never outlives the grant: the grant
        // must not turn into standing access. (A locked-out owner gets a key for
        // the grant's span and makes a lasting one with it.)
        Some(_) => {
            let grant = match scope.key_id() {
                Some(id) => tx.get_api_key(id).await?,
                None => None,
            };
            let until = grant
                .and_then(|g| g.expires_at)
                .ok_or_else(Error::internal)?;
            Some(expires_at.map_or(until, |e| e.min(until)))
        }
        None => expires_at,
    };
    let new = generate_api_key();
    let record = ApiKeyRecord {
        id: ApiKeyId::new(),
        name: name.into(),
        principal_kind: kind,
        principal_id,
        prefix: new.prefix.clone(),
        hash: new.hash,
        created_at: tenantry_core::now(),
        expires_at,
        revoked_at: None,
        last_used_at: None,
        breakglass: None,
    };
    let entry = audit_entry(
        scope,
        ctx,
        "key.create",
        record.id.to_string(),
        json!({"principal_kind": kind, "principal_id": principal_id, "name": name}),
    );
    issue(svc, tx, scope, record, new, entry).await
}

/// Writes a new key's row and its audit entry in `tx`, and its index entry (which
/// makes it usable: written last, removed if the commit fails).
pub(crate) async fn issue(
    svc: &Service,
    mut tx: Box<dyn TenantTx>,
    scope: &TenantScope,
    record: ApiKeyRecord,
    new: NewApiKey,
    entry: tenantry_store::AuditEntry,
) -> Result<CreatedKey> {
    tx.insert_api_key(&record).await?;
    svc.control
        .insert_key_index(&KeyIndexEntry {
            hash: new.hash,
            key_id: record.id,
            org_id: Some(scope.org_id()),
        })
        .await?;
    if let Err(e) = svc.finish(tx, entry).await {
        let _ = svc.control.delete_key_index(record.id).await;
        return Err(e);
    }
    Ok(CreatedKey {
        record,
        key: new.plaintext,
    })
}

/// Keys visible to the caller: its own, or all with `manage_keys`.
pub async fn list_keys(svc: &Service, scope: &TenantScope) -> Result<Vec<ApiKeyRecord>> {
    let mut tx = svc.read(scope).await?;
    // Break-glass tokens are the operator's, listed by `breakglass::list`.
    let keys = tx
        .list_api_keys()
        .await?
        .into_iter()
        .filter(|k| k.breakglass.is_none());
    if scope.can(Permission::ManageKeys) {
        return Ok(keys.collect());
    }
    Ok(keys
        .filter(|k| k.principal_id == scope.actor().id)
        .collect())
}

pub async fn revoke_key(
    svc: &Service,
    scope: &TenantScope,
    ctx: &RequestCtx,
    key: ApiKeyId,
) -> Result<ApiKeyRecord> {
    let mut tx = svc.write(scope).await?;
    let record = tx
        .get_api_key(key)
        .await?
        .filter(|k| k.breakglass.is_none())
        .ok_or_else(|| Error::not_found("api key"))?;
    if record.principal_id != scope.actor().id {
        scope.require(Permission::ManageKeys)?;
    }
    let now = tenantry_core::now();
    tx.revoke_api_key(key, now).await?;
    svc.finish(
        tx,
        audit_entry(scope, ctx, "key.revoke", key.to_string(), json!({})),
    )
    .await?;
    Ok(ApiKeyRecord {
        revoked_at: record.revoked_at.or(Some(now)),
        ..record
    })
}

pub(crate) fn conflict(e: tenantry_store::StoreError, msg: &str) -> Error {
    match e {
        tenantry_store::StoreError::Conflict(_) => Error::new(ErrorCode::Conflict, msg),
        e => e.into(),
    }
}
