//! The org's audit trail.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{PrincipalKind, RequestId};

/// One audit-trail entry. Entries are numbered from 1 in each org (`seq`) and
/// chained by hash (see [`AuditVerification`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditEntry {
    pub seq: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub actor_kind: PrincipalKind,
    pub actor_id: Uuid,
    /// Dotted verb, e.g. `install.create`, `secret.set`, `invoke`.
    pub action: String,
    /// What it acted on (an id or name; never a secret value).
    pub target: String,
    /// `OK` or an error/outcome code.
    pub outcome: String,
    pub request_id: Option<RequestId>,
    /// Non-secret details.
    #[schema(value_type = Object)]
    pub details: Value,
}

/// What checking an org's audit trail found. Each entry's hash covers its content
/// and the hash of the entry before it, so an edited, deleted, inserted or reordered
/// entry breaks the chain from that entry on. Counts and hashes only: no entry's
/// content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditVerification {
    /// Every entry checked matches its hash and its link to the one before.
    pub intact: bool,
    /// Entries checked by hash.
    pub chained: u64,
    /// Entries written before the hash chain existed (first in the trail; counted,
    /// not covered).
    pub legacy: u64,
    /// The last entry checked (`seq`).
    pub head_seq: Option<u64>,
    /// Its hash (hex). Keep a copy: a later check whose chain does not pass through it
    /// means the trail was cut or rewritten.
    pub head_hash: Option<String>,
    /// The first entry that breaks the chain (checking stops there).
    pub first_bad: Option<AuditBreak>,
    /// Signed checkpoints checked: each pins the entry before it with the server's
    /// audit key, so a chain rewritten and recomputed before it no longer matches.
    pub checkpoints: u64,
    /// The last checkpoint (`seq`); entries after it are pinned by none yet.
    pub last_checkpoint: Option<u64>,
}

/// A signed checkpoint just written (`POST …/audit/checkpoint`): an
/// `audit.checkpoint` entry of the trail, signing (org, `seq`, `row_hash`) of the
/// entry before it with the server's audit key. Keep a copy outside the database.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditCheckpoint {
    /// The entry it pins.
    pub seq: u64,
    /// That entry's row hash (hex).
    pub row_hash: String,
    /// The audit key (`ed25519:…`).
    pub key: String,
    pub signature: String,
}

/// The answer to a checkpoint request: `checkpoint` is null when the trail is empty
/// or its last entry is already a checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CheckpointResult {
    pub checkpoint: Option<AuditCheckpoint>,
}

/// The first entry that breaks an org's audit chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditBreak {
    pub seq: u64,
    /// `GAP` (entries deleted or renumbered), `UNCHAINED` (an entry without hash
    /// after chained ones), `LINK` (inserted, reordered or rewritten), `CONTENT`
    /// (edited), `CHECKPOINT` (a signed checkpoint does not match the chain before
    /// it: rewritten and recomputed, or forged).
    pub code: String,
    pub message: String,
}
