//! The audit trail: [`AuditTx`] on the pooled store.

use async_trait::async_trait;
use tenantry_store::chain::ChainedEntry;
use tenantry_store::*;

use super::{PgTenantTx, append_query};

#[async_trait]
impl AuditTx for PgTenantTx {
    async fn append_audit(&mut self, e: &AuditEntry) -> StoreResult<()> {
        let q = append_query(&[(self.org, &[], std::slice::from_ref(e))])?;
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

    async fn audit_chain(&mut self, after: u64, limit: u32) -> StoreResult<Vec<ChainedEntry>> {
        let q =
            sqlx::query("SELECT * FROM audit WHERE org_id = $1 AND seq > $2 ORDER BY seq LIMIT $3")
                .bind(self.org())
                .bind(i64::try_from(after).unwrap_or(i64::MAX))
                .bind(i64::from(limit));
        self.all(q).await
    }
}
