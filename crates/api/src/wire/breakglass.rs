//! Break-glass grants: API key rows of the operator, shown as grants.

use tenantry_api_types as w;
use tenantry_service::members::CreatedKey;
use tenantry_store::ApiKeyRecord;

use super::ToWire;

/// A break-glass grant as the API shows it (`None`: the row is not one).
pub(crate) fn grant(k: ApiKeyRecord) -> Option<w::BreakGlassGrant> {
    let g = k.breakglass?;
    let expires_at = k.expires_at?;
    let now = tenantry_core::now();
    Some(w::BreakGlassGrant {
        id: k.id.to_wire(),
        ticket: g.ticket,
        reason: g.reason,
        access: if g.write { "write" } else { "read" }.into(),
        opened_by: k.principal_id,
        opened_at: k.created_at,
        expires_at,
        closed_at: k.revoked_at,
        last_used_at: k.last_used_at,
        open: k.revoked_at.is_none() && expires_at > now,
        pending: g.pending,
        approved_by: g.approved_by,
        approved_at: g.approved_at,
    })
}

/// Grants of a listing (every row is one).
pub(crate) fn grants(v: Vec<ApiKeyRecord>) -> Vec<w::BreakGlassGrant> {
    v.into_iter().filter_map(grant).collect()
}

/// A grant just opened, with its token: the one place a token goes to the wire.
pub(crate) fn opened(k: CreatedKey) -> Option<w::OpenedBreakGlass> {
    let CreatedKey { record, key } = k;
    Some(w::OpenedBreakGlass {
        grant: grant(record)?,
        token: String::from_utf8_lossy(key.expose()).into_owned().into(),
    })
}
