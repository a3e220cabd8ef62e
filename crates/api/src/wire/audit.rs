//! Audit entries.

use tenantry_api_types as w;
use tenantry_store::AuditEntry;

use super::ToWire;

impl ToWire for AuditEntry {
    type Wire = w::AuditEntry;
    fn to_wire(self) -> w::AuditEntry {
        let AuditEntry {
            seq,
            at,
            actor_kind,
            actor_id,
            action,
            target,
            outcome,
            request_id,
            details,
        } = self;
        w::AuditEntry {
            seq,
            at,
            actor_kind: actor_kind.to_wire(),
            actor_id,
            action,
            target,
            outcome,
            request_id: request_id.to_wire(),
            details,
        }
    }
}
