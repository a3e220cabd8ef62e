//! Usage events: [`UsageTx`] on the pooled store.

use async_trait::async_trait;
use tenantry_store::*;
use time::OffsetDateTime;

use super::PgTenantTx;
use crate::rows::*;

#[async_trait]
impl UsageTx for PgTenantTx {
    async fn insert_usage(&mut self, events: &[UsageEvent]) -> StoreResult<()> {
        if events.is_empty() {
            return Ok(());
        }
        // One statement for the whole batch: a column array per field, zipped by
        // UNNEST (the recorder writes an org's events of 50 ms at once).
        let col = |f: &dyn Fn(&UsageEvent) -> i64| events.iter().map(f).collect::<Vec<i64>>();
        let q = sqlx::query(
            "INSERT INTO usage_events (org_id, id, at, install_id, plugin, action, actor_kind, \
             actor_id, outcome, duration_us, fuel, peak_memory_bytes, host_calls, bytes_in, bytes_out, \
             caller_id) \
             SELECT $1, * FROM UNNEST($2::uuid[], $3::timestamptz[], $4::uuid[], $5::text[], \
             $6::text[], $7::text[], $8::uuid[], $9::text[], $10::int8[], $11::int8[], $12::int8[], \
             $13::int8[], $14::int8[], $15::int8[], $16::uuid[])",
        )
        .bind(self.org())
        .bind(events.iter().map(|e| *e.id.as_uuid()).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.at).collect::<Vec<_>>())
        .bind(events.iter().map(|e| *e.install_id.as_uuid()).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.plugin.clone()).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.action.clone()).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.actor_kind.as_str()).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.actor_id).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.outcome.as_str()).collect::<Vec<_>>())
        .bind(col(&|e| i64_of(e.duration_us)))
        .bind(col(&|e| i64_of(e.fuel)))
        .bind(col(&|e| i64_of(e.peak_memory_bytes)))
        .bind(col(&|e| i64_of(e.host_calls)))
        .bind(col(&|e| i64_of(e.bytes_in)))
        .bind(col(&|e| i64_of(e.bytes_out)))
        .bind(
            events
                .iter()
                .map(|e| e.caller_id.map(|c| *c.as_uuid()))
                .collect::<Vec<_>>(),
        );
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
