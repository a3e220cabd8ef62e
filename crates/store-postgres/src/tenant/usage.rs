//! Usage events: [`UsageTx`] on the pooled store.

use async_trait::async_trait;
use tenantry_store::*;
use time::OffsetDateTime;

use super::{PgTenantTx, append_query};

#[async_trait]
impl UsageTx for PgTenantTx {
    async fn insert_usage(&mut self, events: &[UsageEvent]) -> StoreResult<()> {
        let q = append_query(&[(self.org, events, &[])])?;
        self.exec(q).await.map(|_| ())
    }

    async fn list_usage(&mut self, f: &UsageFilter) -> StoreResult<Vec<UsageEvent>> {
        // The cursor is the (at, id) of the `after` event, looked up in this org only
        // (explicit filter, and RLS underneath); an unknown id makes the row
        // comparison NULL, so nothing matches.
        let q = sqlx::query(
            "SELECT * FROM usage_events WHERE org_id = $1 \
             AND ($2::timestamptz IS NULL OR at >= $2) AND ($3::timestamptz IS NULL OR at < $3) \
             AND ($4::uuid IS NULL OR install_id = $4) \
             AND ($6::uuid IS NULL OR (at, id) > \
                  (SELECT c.at, c.id FROM usage_events c WHERE c.org_id = $1 AND c.id = $6)) \
             ORDER BY at, id LIMIT $5",
        )
        .bind(self.org())
        .bind(f.since)
        .bind(f.until)
        .bind(f.install_id.map(|i| *i.as_uuid()))
        .bind(i64::from(f.limit.unwrap_or(10_000)))
        .bind(f.after.map(|i| *i.as_uuid()));
        self.all(q).await
    }

    async fn count_usage(
        &mut self,
        kind: RunKind,
        since: OffsetDateTime,
        until: OffsetDateTime,
    ) -> StoreResult<u64> {
        let q = sqlx::query(
            "SELECT COUNT(*) AS n FROM usage_events WHERE org_id = $1 AND at >= $2 AND at < $3 \
             AND outcome NOT IN ('INVALID_INPUT', 'NOT_FOUND') AND (caller_id IS NOT NULL) = $4",
        )
        .bind(self.org())
        .bind(since)
        .bind(until)
        .bind(kind == RunKind::ToolCall);
        self.count(q).await
    }
}
