//! Authentication: from a presented API key to a [`Session`].
//!
//! The key is hashed, the hash is looked up in the control store's index (which says
//! which org holds the key, or that it is an operator key), the org's store returns
//! the credential and its principal, and `tenantry_core::scope::authenticate` turns
//! that into a scope. Nothing in the request other than the key is consulted.

use tenantry_core::scope::{CredentialRecord, Principal, Session, authenticate as mint};
use tenantry_core::{Error, ErrorCode, Result, TenantScope};
use tenantry_store::{KeyLookup, Seen};
use time::Duration;

use crate::Service;

fn unauthenticated() -> Error {
    Error::new(
        ErrorCode::Unauthenticated,
        tenantry_core::scope::UNKNOWN_KEY,
    )
}

/// Authenticates a presented key of an org's user or agent (an operator key is
/// `PERMISSION_DENIED`: org routes act inside one org).
pub async fn tenant(svc: &Service, presented: &str) -> Result<TenantScope> {
    tenant_seen(svc, presented).await.map(|(scope, _)| scope)
}

/// [`tenant`], with how far the key lookup saw storage (for reads that may use kept
/// rows, see [`Seen`]).
pub(crate) async fn tenant_seen(svc: &Service, presented: &str) -> Result<(TenantScope, Seen)> {
    match authenticate_seen(svc, presented).await? {
        (Session::Tenant(s), seen) => Ok((s, seen)),
        (Session::Operator(_), _) => Err(Error::denied(
            "operator keys cannot use org routes; use a key of a user or agent of the org",
        )),
    }
}

/// Authenticates a presented key. Unknown, malformed, expired and revoked keys are
/// all `UNAUTHENTICATED`.
pub async fn authenticate(svc: &Service, presented: &str) -> Result<Session> {
    authenticate_seen(svc, presented)
        .await
        .map(|(session, _)| session)
}

async fn authenticate_seen(svc: &Service, presented: &str) -> Result<(Session, Seen)> {
    let hash = tenantry_crypto::hash_api_key(presented).ok_or_else(unauthenticated)?;
    let found = svc
        .control
        .lookup_key(&hash)
        .await?
        .ok_or_else(unauthenticated)?;
    let now = tenantry_core::now();
    match found {
        KeyLookup::Operator(k) => mint(
            CredentialRecord {
                key_id: k.id,
                expires_at: k.expires_at,
                revoked_at: k.revoked_at,
                principal: Principal::Operator {
                    id: *k.id.as_uuid(),
                },
            },
            now,
        )
        .map(|session| (session, Seen::NOTHING)),
        KeyLookup::Tenant {
            org_id,
            key_id,
            seen,
        } => {
            let (record, last_used) = svc
                .tenants
                .credential(org_id, key_id, &hash, seen)
                .await?
                .ok_or_else(unauthenticated)?;
            let session = mint(record, now)?;
            // A suspended org's keys are refused (the org's row is a kept copy, as
            // fresh as `seen`: a suspension on any node applies at once).
            let org = svc
                .control
                .get_org(org_id, seen)
                .await?
                .ok_or_else(unauthenticated)?;
            // The operator's break-glass grants work in a suspended org (that is
            // when one is needed most); nobody else's keys do.
            if !matches!(&session, Session::Tenant(s) if s.breakglass().is_some()) {
                crate::orgs::refuse_if_suspended(&org)?;
            }
            // Last-used time is kept to the minute, so authentication is not a write
            // on every request.
            if last_used.is_none_or(|t| now - t > Duration::minutes(1))
                && let Session::Tenant(scope) = &session
            {
                let (svc, scope) = (svc.clone(), scope.clone());
                tokio::spawn(async move {
                    if let Err(e) = svc.tenants.touch_key(&scope, key_id, now).await {
                        tracing::warn!(error = %e, "recording a key's last use failed");
                    }
                });
            }
            Ok((session, seen))
        }
    }
}
