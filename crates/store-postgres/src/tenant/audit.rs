//! The audit trail: [`AuditTx`] on the pooled store.

use async_trait::async_trait;
use tenantry_store::*;

use super::PgTenantTx;

impl PgTenantTx {
    /// Appends entries in one statement, numbered after the org's last entry in
    /// their order (the transaction holds the org's write lock).
    pub(super) async fn append_audits(&mut self, entries: &[AuditEntry]) -> StoreResult<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let details = entries
            .iter()
            .map(|e| serde_json::to_string(&e.details))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        let q = sqlx::query(
            "INSERT INTO audit (org_id, seq, at, actor_kind, actor_id, action, target, outcome, \
             request_id, details) \
             SELECT $1, (SELECT COALESCE(MAX(seq), 0) FROM audit WHERE org_id = $1) + e.n, \
             e.at, e.actor_kind, e.actor_id, e.action, e.target, e.outcome, e.request_id, \
             e.details::jsonb \
             FROM UNNEST($2::timestamptz[], $3::text[], $4::uuid[], $5::text[], $6::text[], \
             $7::text[], $8::uuid[], $9::text[]) WITH ORDINALITY \
             AS e(at, actor_kind, actor_id, action, target, outcome, request_id, details, n)",
        )
        .bind(self.org())
        .bind(entries.iter().map(|e| e.at).collect::<Vec<_>>())
        .bind(
            entries
                .iter()
                .map(|e| e.actor_kind.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(entries.iter().map(|e| e.actor_id).collect::<Vec<_>>())
        .bind(entries.iter().map(|e| e.action.clone()).collect::<Vec<_>>())
        .bind(entries.iter().map(|e| e.target.clone()).collect::<Vec<_>>())
        .bind(
            entries
                .iter()
                .map(|e| e.outcome.clone())
                .collect::<Vec<_>>(),
        )
        .bind(
            entries
                .iter()
                .map(|e| e.request_id.map(|r| *r.as_uuid()))
                .collect::<Vec<_>>(),
        )
        .bind(details);
        self.exec(q).await.map(|_| ())
    }
}

#[async_trait]
impl AuditTx for PgTenantTx {
    async fn append_audit(&mut self, e: &AuditEntry) -> StoreResult<()> {
        self.append_audits(std::slice::from_ref(e)).await
    }

    async fn list_audit(&mut self, f: &AuditFilter) -> StoreResult<Vec<AuditEntry>> {
        let q = sqlx::query(
            "SELECT * FROM audit WHERE org_id = $1 \
             AND ($2::text IS NULL OR action = $2) AND ($3::text IS NULL OR target = $3) \
             AND ($4::uuid IS NULL OR actor_id = $4) AND ($5::timestamptz IS NULL OR at >= $5) \
             ORDER BY seq DESC LIMIT $6",
        )
        .bind(self.org())
        .bind(f.action.clone())
        .bind(f.target.clone())
        .bind(f.actor_id)
        .bind(f.since)
        .bind(i64::from(f.limit.unwrap_or(100).min(1000)));
        self.all(q).await
    }
}
