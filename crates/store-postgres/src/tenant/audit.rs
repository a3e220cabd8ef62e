//! The audit trail: [`AuditTx`] on the pooled store.

use async_trait::async_trait;
use sqlx::types::Json;
use tenantry_store::*;

use super::PgTenantTx;

#[async_trait]
impl AuditTx for PgTenantTx {
    async fn append_audit(&mut self, e: &AuditEntry) -> StoreResult<()> {
        let q = sqlx::query(
            "INSERT INTO audit (org_id, seq, at, actor_kind, actor_id, action, target, outcome, \
             request_id, details) \
             VALUES ($1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM audit WHERE org_id = $1), \
             $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(self.org())
        .bind(e.at)
        .bind(e.actor_kind.as_str())
        .bind(e.actor_id)
        .bind(e.action.clone())
        .bind(e.target.clone())
        .bind(e.outcome.clone())
        .bind(e.request_id.map(|r| *r.as_uuid()))
        .bind(Json(e.details.clone()));
        self.exec(q).await.map(|_| ())
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
