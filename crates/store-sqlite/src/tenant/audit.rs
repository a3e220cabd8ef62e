//! The audit trail: [`AuditTx`] on the embedded store.

use async_trait::async_trait;
use sqlx::SqliteConnection;
use tenantry_core::OrgId;
use tenantry_store::chain::{ChainHead, ChainedEntry, extend};
use tenantry_store::*;

use super::SqliteTenantTx;
use crate::db_err;
use crate::rows::*;

/// One entry, its sequence number and hashes computed by [`chained`].
pub(crate) const INSERT_AUDIT: &str = "INSERT INTO audit (org_id, seq, at, actor_kind, actor_id, action, \
     target, outcome, request_id, details, prev_hash, row_hash) \
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";

/// The org's last entry, where the next one links. Read in the write transaction that
/// appends (the file's write lock makes it the head until that commits).
pub(crate) async fn chain_head(
    conn: &mut SqliteConnection,
    org: &str,
) -> StoreResult<Option<ChainHead>> {
    let row =
        sqlx::query("SELECT seq, row_hash FROM audit WHERE org_id = ? ORDER BY seq DESC LIMIT 1")
            .bind(org)
            .fetch_optional(conn)
            .await
            .map_err(db_err)?;
    row.as_ref()
        .map(|r| ChainHead::from_row(&Cols(r)))
        .transpose()
}

/// The inserts of `entries` after `head`, which moves to the last of them: binds
/// [`INSERT_AUDIT`] once per entry.
pub(crate) fn bind_chained<'q>(
    mut q: Query<'q>,
    org_id: OrgId,
    head: &mut Option<ChainHead>,
    entries: &[AuditEntry],
) -> StoreResult<Query<'q>> {
    let org = org_id.to_string();
    for (e, (seq, prev, row)) in entries.iter().zip(extend(org_id, *head, entries)) {
        q = q
            .bind(org.clone())
            .bind(i64::try_from(seq).map_err(|_| corrupt("seq"))?)
            .bind(ts(e.at))
            .bind(e.actor_kind.as_str())
            .bind(e.actor_id.to_string())
            .bind(e.action.clone())
            .bind(e.target.clone())
            .bind(e.outcome.clone())
            .bind(e.request_id.map(|r| r.to_string()))
            .bind(to_json(&e.details)?)
            .bind(prev.to_vec())
            .bind(row.to_vec());
        *head = Some(ChainHead {
            seq,
            row_hash: Some(row),
        });
    }
    Ok(q)
}

#[async_trait]
impl AuditTx for SqliteTenantTx {
    async fn append_audit(&mut self, e: &AuditEntry) -> StoreResult<()> {
        // The journal's records go first, so entries keep the order of events.
        let org = self.org.clone();
        let mut head = chain_head(self.conn().await?, &org).await?;
        let q = bind_chained(
            sqlx::query(INSERT_AUDIT),
            self.org_id,
            &mut head,
            std::slice::from_ref(e),
        )?;
        self.exec(q).await.map(|_| ())
    }

    async fn list_audit(&mut self, f: &AuditFilter) -> StoreResult<Vec<AuditEntry>> {
        self.journal_imported().await?;
        let q = sqlx::query(
            "SELECT * FROM audit WHERE org_id = ? \
             AND (? IS NULL OR action = ?) AND (? IS NULL OR target = ?) \
             AND (? IS NULL OR actor_id = ?) AND (? IS NULL OR at >= ?) \
             ORDER BY seq DESC LIMIT ?",
        )
        .bind(&self.org)
        .bind(f.action.clone())
        .bind(f.action.clone())
        .bind(f.target.clone())
        .bind(f.target.clone())
        .bind(f.actor_id.map(|a| a.to_string()))
        .bind(f.actor_id.map(|a| a.to_string()))
        .bind(opt_ts(f.since))
        .bind(opt_ts(f.since))
        .bind(i64::from(f.limit.unwrap_or(100).min(1000)));
        self.all(q).await
    }

    async fn audit_chain(&mut self, after: u64, limit: u32) -> StoreResult<Vec<ChainedEntry>> {
        self.journal_imported().await?;
        let q =
            sqlx::query("SELECT * FROM audit WHERE org_id = ? AND seq > ? ORDER BY seq LIMIT ?")
                .bind(&self.org)
                .bind(i64::try_from(after).unwrap_or(i64::MAX))
                .bind(i64::from(limit));
        self.all(q).await
    }
}
