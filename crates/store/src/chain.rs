//! The audit trail's hash chain (tamper evidence).
//!
//! Each org's audit entries form a chain in `seq` order. An entry's **content hash**
//! covers its canonical content (org, time to the microsecond, actor, action, target,
//! outcome, request id, details as JSON with sorted keys); its **row hash** links it
//! to the entry before:
//!
//! ```text
//! row_hash = SHA-256(prev_hash ‖ seq as 8 bytes big-endian ‖ content_hash)
//! ```
//!
//! where `prev_hash` is the previous entry's row hash, or [`GENESIS`] for the first.
//! Backends fill `prev_hash` and `row_hash` when they append, under the org's write
//! lock: the embedded store with [`link`] here, the pooled one with the same formula
//! in SQL (`sha256(prev || int8send(seq) || content)`, migration 0007) from the
//! content hash computed here. [`Verifier`] walks a trail and names the first entry
//! that does not match: an edited entry (its content no longer hashes to its row
//! hash), a deleted one (a gap in `seq`), an inserted or reordered one (its link to
//! the entry before is broken).
//!
//! Entries written before the chain existed have no hashes; they may only come first
//! (a trail's legacy prefix), and are counted, not checked. Anyone who can write the
//! database can recompute a whole chain after editing it, or cut its end: signed
//! checkpoints of the chain's head (not built yet) are what catch that.

use sha2::{Digest, Sha256};
use tenantry_core::OrgId;

use crate::AuditEntry;

/// The `prev_hash` of an org's first chained entry.
pub const GENESIS: [u8; 32] = [0; 32];

/// The hash of an entry's canonical content (see the module docs). `at` counts to the
/// microsecond, as both stores keep it.
pub fn content_hash(org: OrgId, e: &AuditEntry) -> [u8; 32] {
    let mut h = Sha256::new();
    // Every variable-length field is length-prefixed, so no two entries share an
    // encoding.
    let mut field = |b: &[u8]| {
        h.update((b.len() as u64).to_be_bytes());
        h.update(b);
    };
    field(b"tenantry-audit-v1");
    field(org.as_uuid().as_bytes());
    let micros = (e.at.unix_timestamp_nanos()).div_euclid(1000) as i64;
    field(&micros.to_be_bytes());
    field(e.actor_kind.as_str().as_bytes());
    field(e.actor_id.as_bytes());
    field(e.action.as_bytes());
    field(e.target.as_bytes());
    field(e.outcome.as_bytes());
    match e.request_id {
        Some(r) => field(r.as_uuid().as_bytes()),
        None => field(b""),
    }
    // serde_json's map keeps keys sorted (no `preserve_order`), and both stores give
    // back the same value they were given (PostgreSQL's jsonb normalises the text,
    // not the value).
    field(e.details.to_string().as_bytes());
    h.finalize().into()
}

/// An entry's row hash from the one before it, its `seq` and its content hash.
pub fn link(prev: &[u8; 32], seq: u64, content: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(seq.to_be_bytes());
    h.update(content);
    h.finalize().into()
}

/// The last entry of a trail: where the next append links.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainHead {
    pub seq: u64,
    /// `None`: the entry predates the chain.
    pub row_hash: Option<[u8; 32]>,
}

/// The `(seq, prev_hash, row_hash)` of each entry appended after `head`, in order.
pub fn extend(
    org: OrgId,
    head: Option<ChainHead>,
    entries: &[AuditEntry],
) -> Vec<(u64, [u8; 32], [u8; 32])> {
    let (mut seq, mut prev) = match head {
        Some(h) => (h.seq, h.row_hash.unwrap_or(GENESIS)),
        None => (0, GENESIS),
    };
    entries
        .iter()
        .map(|e| {
            seq += 1;
            let row = link(&prev, seq, &content_hash(org, e));
            let out = (seq, prev, row);
            prev = row;
            out
        })
        .collect()
}

/// One entry as stored, hashes included: what [`Verifier`] checks.
#[derive(Debug, Clone)]
pub struct ChainedEntry {
    pub entry: AuditEntry,
    pub prev_hash: Option<Vec<u8>>,
    pub row_hash: Option<Vec<u8>>,
}

/// Why an entry breaks the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Break {
    /// Its `seq` is not the one after the entry before (entries deleted, or the trail
    /// does not start at 1).
    Gap { expected: u64 },
    /// It has no hashes but comes after chained entries.
    Unchained,
    /// Its `prev_hash` is not the row hash of the entry before (inserted, reordered,
    /// or the entry before was rewritten).
    Link,
    /// Its content does not hash to its row hash (edited).
    Content,
    /// A signed checkpoint that does not pin the entry before it (checked by the
    /// service, which holds the audit key): entries before it were rewritten and the
    /// chain recomputed, or the checkpoint was forged.
    Checkpoint,
}

impl Break {
    /// What it means, for a report.
    pub fn describe(&self) -> String {
        match self {
            Break::Gap { expected } => format!(
                "expected entry {expected} here: entries were deleted or renumbered"
            ),
            Break::Unchained => {
                "the entry has no hash but follows chained entries: inserted or stripped"
                    .into()
            }
            Break::Link => {
                "its link to the entry before is broken: entries were inserted, reordered or rewritten"
                    .into()
            }
            Break::Content => "its content does not match its hash: the entry was edited".into(),
            Break::Checkpoint => {
                "a signed checkpoint does not match the chain before it: entries were rewritten and the chain recomputed, or the checkpoint is forged"
                    .into()
            }
        }
    }
}

/// Walks one org's trail in `seq` order, entry by entry (so a trail of any length is
/// checked page by page).
#[derive(Debug, Clone)]
pub struct Verifier {
    org: OrgId,
    next_seq: u64,
    /// The row hash of the last chained entry; `None` while in the legacy prefix.
    prev: Option<[u8; 32]>,
    /// Entries checked by hash.
    pub chained: u64,
    /// Entries of the legacy prefix (not covered).
    pub legacy: u64,
    /// The first entry that breaks the chain, and why; checking stops there.
    pub broken: Option<(u64, Break)>,
}

impl Verifier {
    pub fn new(org: OrgId) -> Self {
        Self {
            org,
            next_seq: 1,
            prev: None,
            chained: 0,
            legacy: 0,
            broken: None,
        }
    }

    /// The last entry checked, if any: `(seq, row hash)`.
    pub fn head(&self) -> Option<(u64, Option<[u8; 32]>)> {
        (self.next_seq > 1).then_some((self.next_seq - 1, self.prev))
    }

    /// Checks the next entry; returns `false` once the chain is broken.
    pub fn check(&mut self, c: &ChainedEntry) -> bool {
        if self.broken.is_some() {
            return false;
        }
        let seq = c.entry.seq;
        let fail = |v: &mut Self, b: Break| {
            v.broken = Some((seq, b));
            false
        };
        if seq != self.next_seq {
            let expected = self.next_seq;
            return fail(self, Break::Gap { expected });
        }
        self.next_seq += 1;
        let (prev_hash, row_hash) = match (&c.prev_hash, &c.row_hash) {
            (None, None) if self.prev.is_none() => {
                self.legacy += 1;
                return true;
            }
            (Some(p), Some(r)) => (p, r),
            _ => return fail(self, Break::Unchained),
        };
        let expected_prev = self.prev.unwrap_or(GENESIS);
        // The first chained entry after a legacy prefix links to the genesis hash.
        if prev_hash.as_slice() != expected_prev {
            return fail(self, Break::Link);
        }
        let row = link(&expected_prev, seq, &content_hash(self.org, &c.entry));
        if row_hash.as_slice() != row {
            return fail(self, Break::Content);
        }
        self.prev = Some(row);
        self.chained += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tenantry_core::PrincipalKind;

    fn entry(i: u64) -> AuditEntry {
        AuditEntry {
            seq: 0,
            at: time::OffsetDateTime::from_unix_timestamp(1_700_000_000 + i as i64).expect("time"),
            actor_kind: PrincipalKind::User,
            actor_id: uuid::Uuid::nil(),
            action: "install.create".into(),
            target: format!("t{i}"),
            outcome: "OK".into(),
            request_id: None,
            details: serde_json::json!({"b": 1, "a": [i]}),
        }
    }

    fn trail(org: OrgId, n: u64) -> Vec<ChainedEntry> {
        let entries: Vec<_> = (0..n).map(entry).collect();
        extend(org, None, &entries)
            .into_iter()
            .zip(entries)
            .map(|((seq, prev, row), mut e)| {
                e.seq = seq;
                ChainedEntry {
                    entry: e,
                    prev_hash: Some(prev.to_vec()),
                    row_hash: Some(row.to_vec()),
                }
            })
            .collect()
    }

    fn verify(org: OrgId, t: &[ChainedEntry]) -> Verifier {
        let mut v = Verifier::new(org);
        for c in t {
            if !v.check(c) {
                break;
            }
        }
        v
    }

    #[test]
    fn an_untouched_trail_verifies() {
        let org = OrgId::new();
        let v = verify(org, &trail(org, 5));
        assert_eq!((v.broken, v.chained, v.legacy), (None, 5, 0));
    }

    #[test]
    fn an_edited_entry_is_found() {
        let org = OrgId::new();
        let mut t = trail(org, 5);
        t[2].entry.outcome = "DENIED".into();
        assert_eq!(verify(org, &t).broken, Some((3, Break::Content)));
    }

    #[test]
    fn a_deleted_entry_is_found() {
        let org = OrgId::new();
        let mut t = trail(org, 5);
        t.remove(1);
        assert_eq!(
            verify(org, &t).broken,
            Some((3, Break::Gap { expected: 2 }))
        );
    }

    #[test]
    fn reordered_entries_are_found() {
        let org = OrgId::new();
        let mut t = trail(org, 5);
        let (a, b) = (t[1].entry.clone(), t[2].entry.clone());
        t[1].entry = AuditEntry { seq: 2, ..b };
        t[2].entry = AuditEntry { seq: 3, ..a };
        assert_eq!(verify(org, &t).broken, Some((2, Break::Content)));
    }

    #[test]
    fn another_orgs_trail_does_not_verify_as_this_one() {
        let (org, other) = (OrgId::new(), OrgId::new());
        assert_eq!(
            verify(other, &trail(org, 2)).broken,
            Some((1, Break::Content))
        );
    }

    #[test]
    fn a_legacy_prefix_is_counted_and_a_stripped_entry_after_it_is_not_allowed() {
        let org = OrgId::new();
        let mut t = trail(org, 4);
        // Entries 1-2 predate the chain; 3-4 are chained from the genesis hash.
        let tail: Vec<_> = t[2..].iter().map(|c| c.entry.clone()).collect();
        let head = ChainHead {
            seq: 2,
            row_hash: None,
        };
        for (c, (seq, prev, row)) in t[2..].iter_mut().zip(extend(org, Some(head), &tail)) {
            c.entry.seq = seq;
            c.prev_hash = Some(prev.to_vec());
            c.row_hash = Some(row.to_vec());
        }
        for c in &mut t[..2] {
            c.prev_hash = None;
            c.row_hash = None;
        }
        let v = verify(org, &t);
        assert_eq!((v.broken, v.chained, v.legacy), (None, 2, 2));
        t[3].prev_hash = None;
        t[3].row_hash = None;
        assert_eq!(verify(org, &t).broken, Some((4, Break::Unchained)));
    }

    #[test]
    fn time_counts_to_the_microsecond() {
        let org = OrgId::new();
        let mut e = entry(1);
        let a = content_hash(org, &e);
        e.at += time::Duration::nanoseconds(999);
        assert_eq!(a, content_hash(org, &e));
        e.at += time::Duration::nanoseconds(1);
        assert_ne!(a, content_hash(org, &e));
    }
}
