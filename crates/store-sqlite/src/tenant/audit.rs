//! The audit trail: [`AuditTx`] on the embedded store.

use async_trait::async_trait;
use tenantry_store::*;

use super::SqliteTenantTx;
use crate::rows::*;

/// The next sequence number is taken in the statement, under the write lock.
pub(crate) const INSERT_AUDIT: &str = "INSERT INTO audit (org_id, seq, at, actor_kind, actor_id, action, \
     target, outcome, request_id, details) VALUES (?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM audit \
     WHERE org_id = ?), ?, ?, ?, ?, ?, ?, ?, ?)";

pub(crate) fn bind_audit<'q>(q: Query<'q>, org: &str, e: &AuditEntry) -> StoreResult<Query<'q>> {
    Ok(q.bind(org.to_string())
        .bind(org.to_string())
        .bind(ts(e.at))
        .bind(e.actor_kind.as_str())
        .bind(e.actor_id.to_string())
        .bind(e.action.clone())
        .bind(e.target.clone())
        .bind(e.outcome.clone())
        .bind(e.request_id.map(|r| r.to_string()))
        .bind(to_json(&e.details)?))
}

#[async_trait]
impl AuditTx for SqliteTenantTx {
    async fn append_audit(&mut self, e: &AuditEntry) -> StoreResult<()> {
        let q = bind_audit(sqlx::query(INSERT_AUDIT), &self.org, e)?;
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
}
