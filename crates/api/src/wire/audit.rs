//! Audit entries.

use tenantry_api_types as w;
use tenantry_service::audit::{ChainReport, Checkpointed};
use tenantry_store::AuditEntry;
use tenantry_store::chain::Break;

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

impl ToWire for ChainReport {
    type Wire = w::AuditVerification;
    fn to_wire(self) -> w::AuditVerification {
        let ChainReport {
            chained,
            legacy,
            head,
            broken,
            checkpoints,
            last_checkpoint,
        } = self;
        w::AuditVerification {
            intact: broken.is_none(),
            chained,
            legacy,
            head_seq: head.map(|(seq, _)| seq),
            head_hash: head.and_then(|(_, h)| h).map(hex::encode),
            checkpoints,
            last_checkpoint,
            first_bad: broken.map(|(seq, b)| w::AuditBreak {
                seq,
                code: match b {
                    Break::Gap { .. } => "GAP",
                    Break::Unchained => "UNCHAINED",
                    Break::Link => "LINK",
                    Break::Content => "CONTENT",
                    Break::Checkpoint => "CHECKPOINT",
                }
                .into(),
                message: b.describe(),
            }),
        }
    }
}

impl ToWire for Option<Checkpointed> {
    type Wire = w::CheckpointResult;
    fn to_wire(self) -> w::CheckpointResult {
        w::CheckpointResult {
            checkpoint: self.map(|c| w::AuditCheckpoint {
                seq: c.seq,
                row_hash: hex::encode(c.row_hash),
                key: c.key,
                signature: c.signature,
            }),
        }
    }
}
