//! Reading, summarising and exporting an org's usage events (metering).
//!
//! Every invocation leaves one [`UsageEvent`] (written by the recorder). This module
//! reads them in `(at, id)` order, pages through them with the `after` cursor, and
//! folds them into per-group summaries (counts, errors, duration percentiles, fuel,
//! host calls, bytes), or hands them out page by page for an export (which the API
//! encodes for a billing system as JSON lines or CSV).
//!
//! Percentiles are computed here, in Rust, from the durations of the events in range
//! rather than in SQL: SQLite has no `percentile_cont`/`percentile_disc`, and the two
//! backends must answer the same. The events are read page by page (each page one
//! bounded query) and only the durations are kept, up to [`MAX_SUMMARY_EVENTS`] per
//! request; past that the request is refused and asks for a narrower range.

use std::collections::BTreeMap;

use crate::Service;
use tenantry_core::{Error, ErrorCode, Outcome, Permission, PrincipalKind, Result, TenantScope};
use tenantry_store::{UsageEvent, UsageFilter};
use time::OffsetDateTime;

/// Events read per query when paging (summary and export).
pub const PAGE_SIZE: u32 = 1_000;
/// Most events one summary request folds (durations are kept for exact percentiles).
pub const MAX_SUMMARY_EVENTS: usize = 1_000_000;
/// Most events `GET /v1/usage` returns per page.
pub const MAX_LIST_LIMIT: u32 = 10_000;

/// Usage events in `(at, id)` order; page with `filter.after` = the last event's id.
pub async fn list(
    svc: &Service,
    scope: &TenantScope,
    filter: &UsageFilter,
) -> Result<Vec<UsageEvent>> {
    scope.require(Permission::ReadOrg)?;
    check_filter(filter)?;
    let mut f = normalized(filter);
    f.limit = Some(f.limit.unwrap_or(MAX_LIST_LIMIT).min(MAX_LIST_LIMIT));
    let mut tx = svc.read(scope).await?;
    Ok(tx.list_usage(&f).await?)
}

/// Refuses a filter whose range is inverted.
pub fn check_filter(filter: &UsageFilter) -> Result<()> {
    if let (Some(s), Some(u)) = (filter.since, filter.until)
        && s > u
    {
        return Err(Error::invalid("'since' must not be after 'until'"));
    }
    Ok(())
}

/// Times in UTC, so both backends compare like with like.
fn normalized(filter: &UsageFilter) -> UsageFilter {
    let mut f = filter.clone();
    f.since = f.since.map(|t| t.to_offset(time::UtcOffset::UTC));
    f.until = f.until.map(|t| t.to_offset(time::UtcOffset::UTC));
    f
}

/// How summary rows are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GroupBy {
    /// One row for the whole range (key `all`).
    #[default]
    None,
    /// By UTC day of the event (key `YYYY-MM-DD`).
    Day,
    /// By plugin name (key `@publisher/name`).
    Plugin,
    /// By install id.
    Install,
    /// By invoking principal (key = its id; `actor_kind` says agent or user).
    Agent,
}

impl GroupBy {
    pub fn as_str(self) -> &'static str {
        match self {
            GroupBy::None => "none",
            GroupBy::Day => "day",
            GroupBy::Plugin => "plugin",
            GroupBy::Install => "install",
            GroupBy::Agent => "agent",
        }
    }
}

/// One group's usage.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageRow {
    /// The group: `all`, a `YYYY-MM-DD` day, a plugin name, an install id or a
    /// principal id.
    pub key: String,
    /// With `group_by=agent`: the kind of principal (`agent`, `user`, `operator`).
    pub actor_kind: Option<PrincipalKind>,
    /// Invocations.
    pub count: u64,
    /// Invocations whose outcome is not `OK`.
    pub errors: u64,
    /// Nearest-rank percentiles of the wall time, in milliseconds.
    pub p50_duration_ms: f64,
    pub p95_duration_ms: f64,
    pub p99_duration_ms: f64,
    /// Sums over the group.
    pub fuel: u64,
    pub host_calls: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// The largest peak linear memory of one invocation.
    pub max_peak_memory_bytes: u64,
}

/// A summary of a time range.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageSummary {
    pub group_by: GroupBy,
    pub since: Option<OffsetDateTime>,
    pub until: Option<OffsetDateTime>,
    /// Rows ordered by key (days chronologically).
    pub rows: Vec<UsageRow>,
}

#[derive(Default)]
struct Acc {
    actor_kind: Option<PrincipalKind>,
    count: u64,
    errors: u64,
    durations_us: Vec<u64>,
    fuel: u64,
    host_calls: u64,
    bytes_in: u64,
    bytes_out: u64,
    max_peak_memory_bytes: u64,
}

impl Acc {
    fn add(&mut self, e: &UsageEvent) {
        self.count += 1;
        if e.outcome != Outcome::Ok {
            self.errors += 1;
        }
        self.durations_us.push(e.duration_us);
        self.fuel = self.fuel.saturating_add(e.fuel);
        self.host_calls = self.host_calls.saturating_add(e.host_calls);
        self.bytes_in = self.bytes_in.saturating_add(e.bytes_in);
        self.bytes_out = self.bytes_out.saturating_add(e.bytes_out);
        self.max_peak_memory_bytes = self.max_peak_memory_bytes.max(e.peak_memory_bytes);
    }

    fn row(mut self, key: String) -> UsageRow {
        self.durations_us.sort_unstable();
        let ms = |p| nearest_rank(&self.durations_us, p).map_or(0.0, |us| us as f64 / 1000.0);
        UsageRow {
            key,
            actor_kind: self.actor_kind,
            count: self.count,
            errors: self.errors,
            p50_duration_ms: ms(50),
            p95_duration_ms: ms(95),
            p99_duration_ms: ms(99),
            fuel: self.fuel,
            host_calls: self.host_calls,
            bytes_in: self.bytes_in,
            bytes_out: self.bytes_out,
            max_peak_memory_bytes: self.max_peak_memory_bytes,
        }
    }
}

/// The nearest-rank `p`th percentile (0 < p <= 100) of ascending `sorted`: the value
/// at rank `ceil(p/100 * n)` (1-based). `None` when empty.
pub fn nearest_rank(sorted: &[u64], p: u32) -> Option<u64> {
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    let p = p.clamp(1, 100) as usize;
    let rank = (p * n).div_ceil(100).max(1);
    sorted.get(rank - 1).copied()
}

fn key_of(e: &UsageEvent, group_by: GroupBy) -> String {
    match group_by {
        GroupBy::None => "all".into(),
        GroupBy::Day => {
            let d = e.at.to_offset(time::UtcOffset::UTC).date();
            format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
        }
        GroupBy::Plugin => e.plugin.clone(),
        GroupBy::Install => e.install_id.to_string(),
        GroupBy::Agent => e.actor_id.to_string(),
    }
}

/// Folds events into rows by `group_by`. Pure, so it is tested on known data.
pub fn fold(events: &[UsageEvent], group_by: GroupBy) -> Vec<UsageRow> {
    let mut groups = Folder::new(group_by);
    for e in events {
        groups.add(e);
    }
    groups.rows()
}

struct Folder {
    group_by: GroupBy,
    groups: BTreeMap<String, Acc>,
    events: usize,
}

impl Folder {
    fn new(group_by: GroupBy) -> Self {
        Self {
            group_by,
            groups: BTreeMap::new(),
            events: 0,
        }
    }

    fn add(&mut self, e: &UsageEvent) {
        self.events += 1;
        let acc = self.groups.entry(key_of(e, self.group_by)).or_default();
        if self.group_by == GroupBy::Agent {
            acc.actor_kind = Some(e.actor_kind);
        }
        acc.add(e);
    }

    fn rows(self) -> Vec<UsageRow> {
        self.groups.into_iter().map(|(k, a)| a.row(k)).collect()
    }
}

/// Summarises the org's usage in `filter`'s range, grouped by `group_by`. Needs
/// `read_org`, like [`list`]. Reads page by page in one read transaction.
pub async fn summarize(
    svc: &Service,
    scope: &TenantScope,
    filter: &UsageFilter,
    group_by: GroupBy,
) -> Result<UsageSummary> {
    scope.require(Permission::ReadOrg)?;
    check_filter(filter)?;
    let mut f = normalized(filter);
    f.limit = Some(PAGE_SIZE);
    let mut folder = Folder::new(group_by);
    let mut tx = svc.read(scope).await?;
    loop {
        let page = tx.list_usage(&f).await?;
        for e in &page {
            folder.add(e);
        }
        if folder.events > MAX_SUMMARY_EVENTS {
            return Err(Error::new(
                ErrorCode::TooLarge,
                format!(
                    "more than {MAX_SUMMARY_EVENTS} usage events in range; narrow 'since'/'until'"
                ),
            ));
        }
        match page.last() {
            Some(last) if page.len() == PAGE_SIZE as usize => f.after = Some(last.id),
            _ => break,
        }
    }
    drop(tx);
    Ok(UsageSummary {
        group_by,
        since: f.since,
        until: f.until,
        rows: folder.rows(),
    })
}

/// Reads an export page by page, each page its own short read transaction, so an
/// export of any size never holds a transaction or all rows at once. Each call
/// re-checks the permission. Events are returned once each, in `(at, id)` order.
pub struct ExportPager {
    filter: UsageFilter,
    done: bool,
}

impl ExportPager {
    /// Checks the permission and the filter up front (so a refusal is an HTTP error,
    /// not a truncated body). A missing `until` is fixed to now, so the export has an
    /// end even while invocations continue.
    pub fn new(scope: &TenantScope, filter: &UsageFilter) -> Result<Self> {
        scope.require(Permission::ReadOrg)?;
        check_filter(filter)?;
        let mut f = normalized(filter);
        f.until = Some(f.until.unwrap_or_else(tenantry_core::now));
        f.limit = Some(PAGE_SIZE);
        Ok(Self {
            filter: f,
            done: false,
        })
    }

    /// The next page, or `None` when all events were returned.
    pub async fn next_page(
        &mut self,
        svc: &Service,
        scope: &TenantScope,
    ) -> Result<Option<Vec<UsageEvent>>> {
        if self.done {
            return Ok(None);
        }
        scope.require(Permission::ReadOrg)?;
        let mut tx = svc.read(scope).await?;
        let page = tx.list_usage(&self.filter).await?;
        drop(tx);
        match page.last() {
            Some(last) if page.len() == PAGE_SIZE as usize => self.filter.after = Some(last.id),
            _ => self.done = true,
        }
        if page.is_empty() {
            return Ok(None);
        }
        Ok(Some(page))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tenantry_core::{InstallId, InvocationId};
    use time::format_description::well_known::Rfc3339;
    use uuid::Uuid;

    fn ev(at: &str, plugin: &str, install: InstallId, outcome: Outcome, us: u64) -> UsageEvent {
        UsageEvent {
            id: InvocationId::new(),
            at: OffsetDateTime::parse(at, &Rfc3339).unwrap(),
            install_id: install,
            plugin: plugin.into(),
            action: "run".into(),
            actor_kind: PrincipalKind::Agent,
            actor_id: Uuid::nil(),
            outcome,
            duration_us: us,
            fuel: 10,
            peak_memory_bytes: us * 2,
            host_calls: 1,
            bytes_in: 3,
            bytes_out: 4,
            caller_id: None,
        }
    }

    #[test]
    fn nearest_rank_on_known_data() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(nearest_rank(&v, 50), Some(50));
        assert_eq!(nearest_rank(&v, 95), Some(95));
        assert_eq!(nearest_rank(&v, 99), Some(99));
        assert_eq!(nearest_rank(&v, 100), Some(100));
        // n = 10: ranks ceil(5) = 5, ceil(9.5) = 10, ceil(9.9) = 10.
        let v: Vec<u64> = (1..=10).map(|x| x * 10).collect();
        assert_eq!(nearest_rank(&v, 50), Some(50));
        assert_eq!(nearest_rank(&v, 95), Some(100));
        assert_eq!(nearest_rank(&v, 99), Some(100));
        // n = 1 and n = 0.
        assert_eq!(nearest_rank(&[7], 50), Some(7));
        assert_eq!(nearest_rank(&[7], 99), Some(7));
        assert_eq!(nearest_rank(&[], 50), None);
        // n = 3: ranks 2, 3, 3.
        assert_eq!(nearest_rank(&[1, 2, 3], 50), Some(2));
        assert_eq!(nearest_rank(&[1, 2, 3], 95), Some(3));
    }

    #[test]
    fn fold_groups_counts_errors_and_percentiles() {
        let a = InstallId::new();
        let b = InstallId::new();
        let mut events = Vec::new();
        for i in 1..=20u64 {
            events.push(ev(
                "2026-01-01T10:00:00Z",
                "@x/echo",
                a,
                Outcome::Ok,
                i * 1000,
            ));
        }
        events.push(ev(
            "2026-01-02T23:59:59Z",
            "@x/loop",
            b,
            Outcome::OutOfFuel,
            500_000,
        ));
        events.push(ev(
            "2026-01-02T00:00:00+01:00",
            "@x/loop",
            b,
            Outcome::Ok,
            1_000,
        ));

        let rows = fold(&events, GroupBy::Plugin);
        assert_eq!(rows.len(), 2);
        let echo = &rows[0];
        assert_eq!(
            (echo.key.as_str(), echo.count, echo.errors),
            ("@x/echo", 20, 0)
        );
        // Durations 1..=20 ms: p50 rank 10, p95 rank 19, p99 rank 20.
        assert_eq!(
            (
                echo.p50_duration_ms,
                echo.p95_duration_ms,
                echo.p99_duration_ms
            ),
            (10.0, 19.0, 20.0)
        );
        assert_eq!(
            (echo.fuel, echo.host_calls, echo.bytes_in, echo.bytes_out),
            (200, 20, 60, 80)
        );
        assert_eq!(echo.max_peak_memory_bytes, 40_000);
        let lp = &rows[1];
        assert_eq!((lp.count, lp.errors), (2, 1));
        assert_eq!((lp.p50_duration_ms, lp.p99_duration_ms), (1.0, 500.0));

        // Days are UTC: 2026-01-02T00:00+01:00 is 2026-01-01 23:00 UTC.
        let days = fold(&events, GroupBy::Day);
        let keys: Vec<_> = days.iter().map(|r| (r.key.as_str(), r.count)).collect();
        assert_eq!(keys, [("2026-01-01", 21), ("2026-01-02", 1)]);

        let installs = fold(&events, GroupBy::Install);
        assert_eq!(installs.iter().map(|r| r.count).sum::<u64>(), 22);
        assert!(
            installs
                .iter()
                .any(|r| r.key == a.to_string() && r.count == 20)
        );

        let all = fold(&events, GroupBy::None);
        assert_eq!(
            (all.len(), all[0].key.as_str(), all[0].count, all[0].errors),
            (1, "all", 22, 1)
        );

        let agents = fold(&events, GroupBy::Agent);
        assert_eq!(agents.len(), 1);
        assert_eq!(agents[0].actor_kind, Some(PrincipalKind::Agent));
        assert!(fold(&[], GroupBy::Day).is_empty());
    }
}
