//! Usage events: [`UsageTx`] on the embedded store.

use async_trait::async_trait;
use tenantry_store::*;
use time::OffsetDateTime;

use super::SqliteTenantTx;
use crate::rows::*;

/// One usage event (bound by [`bind_usage`]); also the journal's import.
pub(crate) const INSERT_USAGE: &str = "INSERT INTO usage_events (org_id, id, at, install_id, plugin, action, \
     actor_kind, actor_id, outcome, duration_us, fuel, peak_memory_bytes, host_calls, bytes_in, \
     bytes_out, caller_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";

pub(crate) fn bind_usage<'q>(q: Query<'q>, org: &str, e: &UsageEvent) -> Query<'q> {
    q.bind(org.to_string())
        .bind(e.id.to_string())
        .bind(ts(e.at))
        .bind(e.install_id.to_string())
        .bind(e.plugin.clone())
        .bind(e.action.clone())
        .bind(e.actor_kind.as_str())
        .bind(e.actor_id.to_string())
        .bind(e.outcome.as_str())
        .bind(i64_of(e.duration_us))
        .bind(i64_of(e.fuel))
        .bind(i64_of(e.peak_memory_bytes))
        .bind(i64_of(e.host_calls))
        .bind(i64_of(e.bytes_in))
        .bind(i64_of(e.bytes_out))
        .bind(e.caller_id.map(|c| c.to_string()))
}

#[async_trait]
impl UsageTx for SqliteTenantTx {
    async fn insert_usage(&mut self, events: &[UsageEvent]) -> StoreResult<()> {
        for e in events {
            let q = bind_usage(sqlx::query(INSERT_USAGE), &self.org, e);
            self.exec(q).await?;
        }
        Ok(())
    }

    async fn list_usage(&mut self, f: &UsageFilter) -> StoreResult<Vec<UsageEvent>> {
        self.journal_imported().await?;
        // The cursor is the (at, id) of the `after` event, looked up in this org only;
        // an unknown id makes the row-value comparison NULL, so nothing matches.
        let after = f.after.map(|i| i.to_string());
        let q = sqlx::query(
            "SELECT * FROM usage_events WHERE org_id = ? \
             AND (? IS NULL OR at >= ?) AND (? IS NULL OR at < ?) AND (? IS NULL OR install_id = ?) \
             AND (? IS NULL OR (at, id) > \
                  (SELECT c.at, c.id FROM usage_events c WHERE c.org_id = ? AND c.id = ?)) \
             ORDER BY at, id LIMIT ?",
        )
        .bind(&self.org)
        .bind(opt_ts(f.since))
        .bind(opt_ts(f.since))
        .bind(opt_ts(f.until))
        .bind(opt_ts(f.until))
        .bind(f.install_id.map(|i| i.to_string()))
        .bind(f.install_id.map(|i| i.to_string()))
        .bind(after.clone())
        .bind(&self.org)
        .bind(after)
        .bind(i64::from(f.limit.unwrap_or(10_000)));
        self.all(q).await
    }

    async fn count_usage(
        &mut self,
        kind: RunKind,
        since: OffsetDateTime,
        until: OffsetDateTime,
    ) -> StoreResult<u64> {
        self.journal_imported().await?;
        let q = sqlx::query(
            "SELECT COUNT(*) AS n FROM usage_events WHERE org_id = ? AND at >= ? AND at < ? \
             AND outcome NOT IN ('INVALID_INPUT', 'NOT_FOUND') AND (caller_id IS NOT NULL) = ?",
        )
        .bind(&self.org)
        .bind(ts(since))
        .bind(ts(until))
        .bind(kind == RunKind::ToolCall);
        self.count(q).await
    }
}
