//! Invocation records: usage events (order, filters, cursor, counts), audit entries
//! (sequence, order, filters), records appended outside a transaction, timestamps.

use tenantry_core::{InstallId, InvocationId, Outcome, PrincipalKind, RequestId, Role};
use tenantry_store::*;
use time::{Duration, OffsetDateTime, UtcOffset};
use uuid::Uuid;

use crate::fixtures::*;
use crate::{Backend, Must};

async fn usage(b: &Backend, o: &Org, f: &UsageFilter) -> Vec<UsageEvent> {
    let mut tx = b.read(o).await;
    tx.list_usage(f).await.must(b, "list_usage")
}

fn ids(v: &[UsageEvent]) -> Vec<InvocationId> {
    v.iter().map(|e| e.id).collect()
}

/// Usage events read back with every outcome and actor kind, `caller_id` set and
/// unset, and counters kept exactly up to `i64::MAX` (saturating above).
pub async fn usage_round_trip_edges(b: &Backend) {
    let o = b.org().await;
    let install = InstallId::new();
    let mut events = Vec::new();
    for (n, outcome) in Outcome::ALL.into_iter().enumerate() {
        let mut e = event(install, at(n as i64, n as i64));
        e.outcome = outcome;
        e.actor_kind = if n % 2 == 0 {
            PrincipalKind::User
        } else {
            PrincipalKind::Agent
        };
        e.actor_id = Uuid::now_v7();
        e.caller_id = (n % 3 == 0).then(InvocationId::new);
        e.plugin = format!("@acme/ünï{n}");
        e.action = if n == 1 {
            String::new()
        } else {
            "run ✓".into()
        };
        events.push(e);
    }
    let mut zero = event(install, at(100, 0));
    (zero.duration_us, zero.fuel, zero.peak_memory_bytes) = (0, 0, 0);
    (zero.host_calls, zero.bytes_in, zero.bytes_out) = (0, 0, 0);
    let mut max = event(install, at(101, 0));
    let big = i64::MAX as u64;
    (max.duration_us, max.fuel, max.peak_memory_bytes) = (big, big, big);
    (max.host_calls, max.bytes_in, max.bytes_out) = (big, big, big - 1);
    events.push(zero);
    events.push(max);
    let mut over = event(install, at(102, 0));
    (over.duration_us, over.fuel, over.peak_memory_bytes) = (u64::MAX, big + 1, u64::MAX);
    (over.host_calls, over.bytes_in, over.bytes_out) = (u64::MAX, u64::MAX, u64::MAX);
    let mut tx = b.write(&o).await;
    tx.insert_usage(&events).await.must(b, "insert_usage");
    tx.insert_usage(&[over.clone()])
        .await
        .must(b, "insert_usage above i64::MAX");
    b.commit(tx).await;
    let mut saturated = over;
    (
        saturated.duration_us,
        saturated.fuel,
        saturated.peak_memory_bytes,
    ) = (big, big, big);
    (
        saturated.host_calls,
        saturated.bytes_in,
        saturated.bytes_out,
    ) = (big, big, big);
    events.push(saturated);
    let got = usage(b, &o, &UsageFilter::default()).await;
    ensure_eq!(b, got.len(), events.len(), "every event listed");
    for (g, w) in got.iter().zip(&events) {
        ensure_eq!(b, g, w, "usage event round trip");
    }
    let mut tx = b.write(&o).await;
    let r = tx.insert_usage(&events[..1]).await;
    ensure!(
        b,
        matches!(r, Err(StoreError::Conflict(_))),
        "an event id recorded twice is Conflict, got {r:?}"
    );
}

/// `list_usage` is in `(at, id)` order; `since <= at < until` follows time (a
/// whole-second bound and a non-UTC bound included), `install_id` filters, `limit`
/// bounds; paging with `after` returns each event once; an unknown cursor reads
/// nothing.
pub async fn usage_order_filters_and_cursor(b: &Backend) {
    let o = b.org().await;
    let (i1, i2) = (InstallId::new(), InstallId::new());
    let times = [
        at(0, 0),
        at(0, 500_000),
        at(0, 1),
        at(-1, 999_999),
        at(1, 0),
        at(1, 0),
        at(1, 0),
        at(2, 250_000),
        at(3600, 0),
    ];
    let mut events: Vec<UsageEvent> = times
        .iter()
        .enumerate()
        .map(|(n, t)| event(if n % 3 == 0 { i2 } else { i1 }, *t))
        .collect();
    // Ties on `at` are broken by id, whatever the insertion order.
    events.swap(4, 6);
    let mut tx = b.write(&o).await;
    for e in events.iter().rev() {
        tx.insert_usage(std::slice::from_ref(e))
            .await
            .must(b, "insert_usage");
    }
    b.commit(tx).await;
    let mut sorted = events.clone();
    sorted.sort_by_key(|e| (e.at, e.id));
    let all = usage(b, &o, &UsageFilter::default()).await;
    ensure_eq!(b, ids(&all), ids(&sorted), "list_usage in (at, id) order");
    let pick = |pred: &dyn Fn(&UsageEvent) -> bool| {
        sorted
            .iter()
            .filter(|e| pred(e))
            .map(|e| e.id)
            .collect::<Vec<_>>()
    };
    let since = at(0, 0);
    let until = at(1, 0);
    let plus2 = UtcOffset::from_hms(2, 0, 0).expect("offset");
    let minus9 = UtcOffset::from_hms(-9, -30, 0).expect("offset");
    for (what, f, want) in [
        (
            "since a whole second",
            UsageFilter {
                since: Some(since),
                ..Default::default()
            },
            pick(&|e| e.at >= since),
        ),
        (
            "until a whole second",
            UsageFilter {
                until: Some(until),
                ..Default::default()
            },
            pick(&|e| e.at < until),
        ),
        (
            "since and until",
            UsageFilter {
                since: Some(since),
                until: Some(until),
                ..Default::default()
            },
            pick(&|e| e.at >= since && e.at < until),
        ),
        (
            "bounds in other offsets",
            UsageFilter {
                since: Some(since.to_offset(plus2)),
                until: Some(until.to_offset(minus9)),
                ..Default::default()
            },
            pick(&|e| e.at >= since && e.at < until),
        ),
        (
            "a sub-second since",
            UsageFilter {
                since: Some(at(0, 1)),
                ..Default::default()
            },
            pick(&|e| e.at >= at(0, 1)),
        ),
        (
            "an install",
            UsageFilter {
                install_id: Some(i2),
                ..Default::default()
            },
            pick(&|e| e.install_id == i2),
        ),
        (
            "limit 3",
            UsageFilter {
                limit: Some(3),
                ..Default::default()
            },
            ids(&sorted[..3]),
        ),
        (
            "limit 0",
            UsageFilter {
                limit: Some(0),
                ..Default::default()
            },
            vec![],
        ),
        (
            "an unknown cursor",
            UsageFilter {
                after: Some(InvocationId::new()),
                ..Default::default()
            },
            vec![],
        ),
        (
            "since after until",
            UsageFilter {
                since: Some(until),
                until: Some(since),
                ..Default::default()
            },
            vec![],
        ),
    ] {
        let got = usage(b, &o, &f).await;
        ensure_eq!(b, ids(&got), want, "list_usage with {what}");
    }
    // Paging two at a time with the cursor, within a filter.
    let filter = UsageFilter {
        install_id: Some(i1),
        limit: Some(2),
        ..Default::default()
    };
    let mut paged = Vec::new();
    let mut after = None;
    for _ in 0..10 {
        let page = usage(
            b,
            &o,
            &UsageFilter {
                after,
                ..filter.clone()
            },
        )
        .await;
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        paged.extend(ids(&page));
    }
    ensure_eq!(
        b,
        paged,
        pick(&|e| e.install_id == i1),
        "cursor pages return each event once, in order"
    );
}

/// `count_usage` counts `since <= at < until` (bounds to the microsecond), requested
/// runs and tool-call runs apart, and leaves out runs refused before the sandbox
/// started (`INVALID_INPUT`, `NOT_FOUND`).
pub async fn count_usage_windows(b: &Backend) {
    let o = b.org().await;
    let i = InstallId::new();
    let (since, until) = (at(0, 0), at(86_400, 0));
    let with = |t: OffsetDateTime, outcome: Outcome, tool: bool| {
        let mut e = event(i, t);
        e.outcome = outcome;
        e.caller_id = tool.then(InvocationId::new);
        e
    };
    let events = vec![
        with(since, Outcome::Ok, false), // counted: the window's first instant
        with(at(0, 1), Outcome::PluginTrap, false), // counted
        with(at(0, 999_999), Outcome::Timeout, false), // counted
        with(at(86_399, 999_999), Outcome::Ok, false), // counted: the last microsecond
        with(until, Outcome::Ok, false), // not: `until` is excluded
        with(at(-1, 999_999), Outcome::Ok, false), // not: before
        with(at(10, 0), Outcome::InvalidInput, false), // not: refused before running
        with(at(11, 0), Outcome::NotFound, false), // not: refused before running
        with(at(12, 0), Outcome::QuotaExceeded, false), // counted
        with(since, Outcome::Ok, true),  // tool call
        with(at(0, 500_000), Outcome::OutOfFuel, true), // tool call
        with(at(13, 0), Outcome::InvalidInput, true), // not
        with(until, Outcome::Ok, true),  // not
    ];
    let mut tx = b.write(&o).await;
    tx.insert_usage(&events).await.must(b, "insert_usage");
    b.commit(tx).await;
    let mut tx = b.read(&o).await;
    let requested = tx
        .count_usage(RunKind::Requested, since, until)
        .await
        .must(b, "count_usage");
    ensure_eq!(b, requested, 5, "requested runs in [since, until)");
    let tools = tx
        .count_usage(RunKind::ToolCall, since, until)
        .await
        .must(b, "count_usage");
    ensure_eq!(b, tools, 2, "tool-call runs in [since, until)");
    let plus2 = UtcOffset::from_hms(2, 0, 0).expect("offset");
    let shifted = tx
        .count_usage(
            RunKind::Requested,
            since.to_offset(plus2),
            until.to_offset(plus2),
        )
        .await
        .must(b, "count_usage");
    ensure_eq!(b, shifted, 5, "the same window in another offset");
    let narrow = tx
        .count_usage(RunKind::Requested, at(0, 1), at(0, 999_999))
        .await
        .must(b, "count_usage");
    ensure_eq!(b, narrow, 1, "a sub-second window");
    let empty = tx
        .count_usage(RunKind::Requested, until, since)
        .await
        .must(b, "count_usage");
    ensure_eq!(b, empty, 0, "an inverted window counts nothing");
}

/// Audit entries get sequence numbers 1, 2, 3, … in append order (the `seq` given is
/// ignored); listed newest first; filters by action, target, actor and `since`;
/// `limit` defaults to 100 and is capped at 1000; details and request ids read back.
pub async fn audit_seq_order_and_filters(b: &Backend) {
    let o = b.org().await;
    let actor = Uuid::now_v7();
    let mut entries = Vec::new();
    for n in 0..6i64 {
        let mut e = entry(
            if n % 2 == 0 {
                "install.create"
            } else {
                "key.revoke"
            },
            &format!("target-{}", n % 3),
            at(n, 0),
        );
        e.seq = 999;
        if n == 3 {
            e.actor_kind = PrincipalKind::Agent;
            e.actor_id = actor;
            e.request_id = Some(RequestId::new());
            e.details = serde_json::json!({"ünï": [1, "two", null], "n": u64::MAX, "s": ""});
            e.outcome = "PERMISSION_DENIED".into();
            e.target = String::new();
        }
        entries.push(e);
    }
    let mut tx = b.write(&o).await;
    for e in &entries {
        tx.append_audit(e).await.must(b, "append_audit");
    }
    b.commit(tx).await;
    for (n, e) in entries.iter_mut().enumerate() {
        e.seq = n as u64 + 1;
    }
    let org = &o;
    let list = move |f: AuditFilter| async move {
        let mut tx = b.read(org).await;
        tx.list_audit(&f).await.must(b, "list_audit")
    };
    let newest_first: Vec<AuditEntry> = entries.iter().rev().cloned().collect();
    ensure_eq!(
        b,
        list(AuditFilter::default()).await,
        newest_first,
        "entries newest first with seq 1.."
    );
    let seqs = |v: Vec<AuditEntry>| v.into_iter().map(|e| e.seq).collect::<Vec<_>>();
    for (what, f, want) in [
        (
            "action",
            AuditFilter {
                action: Some("key.revoke".into()),
                ..Default::default()
            },
            vec![6, 4, 2],
        ),
        (
            "target",
            AuditFilter {
                target: Some("target-1".into()),
                ..Default::default()
            },
            vec![5, 2],
        ),
        (
            "empty target",
            AuditFilter {
                target: Some(String::new()),
                ..Default::default()
            },
            vec![4],
        ),
        (
            "actor",
            AuditFilter {
                actor_id: Some(actor),
                ..Default::default()
            },
            vec![4],
        ),
        (
            "since a whole second",
            AuditFilter {
                since: Some(at(4, 0)),
                ..Default::default()
            },
            vec![6, 5],
        ),
        (
            "since in another offset",
            AuditFilter {
                since: Some(at(4, 0).to_offset(UtcOffset::from_hms(-5, 0, 0).expect("offset"))),
                ..Default::default()
            },
            vec![6, 5],
        ),
        (
            "limit",
            AuditFilter {
                limit: Some(2),
                ..Default::default()
            },
            vec![6, 5],
        ),
        (
            "action and target",
            AuditFilter {
                action: Some("install.create".into()),
                target: Some("target-0".into()),
                ..Default::default()
            },
            vec![1],
        ),
        (
            "an unknown action",
            AuditFilter {
                action: Some("install".into()),
                ..Default::default()
            },
            vec![],
        ),
    ] {
        ensure_eq!(b, seqs(list(f).await), want, "list_audit by {what}");
    }
    // Defaults and caps.
    let mut tx = b.write(&o).await;
    for n in 0..1000 {
        tx.append_audit(&entry("bulk", "t", at(100, n)))
            .await
            .must(b, "append_audit");
    }
    b.commit(tx).await;
    let page = list(AuditFilter::default()).await;
    ensure_eq!(
        b,
        (page.len(), page.first().map(|e| e.seq)),
        (100, Some(1006)),
        "the default limit is 100, newest first"
    );
    let page = list(AuditFilter {
        limit: Some(5000),
        ..Default::default()
    })
    .await;
    ensure_eq!(b, page.len(), 1000, "the limit is capped at 1000");
}

/// Records given to `append_records` (and keys' uses to `touch_key`) are visible to
/// every later read: `list_usage`, `count_usage`, `list_audit`; audit sequence
/// numbers continue across appended and transactional entries in order of writing.
pub async fn append_records_are_visible(b: &Backend) {
    let o = b.org().await;
    let i = InstallId::new();
    let mut tx = b.write(&o).await;
    tx.append_audit(&entry("first", "t", at(0, 0)))
        .await
        .must(b, "append_audit");
    b.commit(tx).await;
    let batch1: Vec<UsageEvent> = (0..3).map(|n| event(i, at(n, 10))).collect();
    let batch2: Vec<UsageEvent> = (3..40).map(|n| event(i, at(n, 10))).collect();
    b.tenants
        .append_records(
            &o.scope,
            &batch1,
            &[
                entry("invoke", "a", at(1, 0)),
                entry("invoke", "b", at(2, 0)),
            ],
        )
        .await
        .must(b, "append_records");
    b.tenants
        .append_records(&o.scope, &batch2, &[])
        .await
        .must(b, "append_records");
    b.tenants
        .append_records(&o.scope, &[], &[entry("invoke", "c", at(3, 0))])
        .await
        .must(b, "append_records");
    let got = usage(b, &o, &UsageFilter::default()).await;
    let want: Vec<UsageEvent> = batch1.iter().chain(&batch2).cloned().collect();
    ensure_eq!(b, got, want, "appended usage is listed");
    let mut tx = b.read(&o).await;
    let n = tx
        .count_usage(RunKind::Requested, at(0, 0), at(1000, 0))
        .await
        .must(b, "count_usage");
    ensure_eq!(b, n, 40, "appended usage is counted");
    let audit = b.all_audit(&mut tx).await;
    ensure_eq!(
        b,
        seq_targets(&audit),
        vec![(4, "c"), (3, "b"), (2, "a"), (1, "t")],
        "appended audit entries follow in order"
    );
    drop(tx);
    let mut tx = b.write(&o).await;
    tx.append_audit(&entry("last", "d", at(4, 0)))
        .await
        .must(b, "append_audit");
    b.commit(tx).await;
    b.tenants
        .append_records(
            &o.scope,
            &[event(i, at(50, 0))],
            &[entry("invoke", "e", at(5, 0))],
        )
        .await
        .must(b, "append_records");
    let mut tx = b.read(&o).await;
    let audit = tx
        .list_audit(&AuditFilter {
            limit: Some(2),
            ..Default::default()
        })
        .await
        .must(b, "list_audit");
    ensure_eq!(
        b,
        seq_targets(&audit),
        vec![(6, "e"), (5, "d")],
        "sequence numbers continue across both ways of writing"
    );
    let last = tx
        .list_usage(&UsageFilter {
            since: Some(at(50, 0)),
            ..Default::default()
        })
        .await
        .must(b, "list_usage");
    ensure_eq!(b, last.len(), 1, "the last appended event is listed");
}

/// Timestamps are kept to the microsecond (nanoseconds are dropped, never rounded
/// up) and read back in UTC, whatever offset they were written in; filters with the
/// written (finer) value still find the record.
pub async fn timestamps_microseconds_in_utc(b: &Backend) {
    let o = b.org().await;
    let plus = UtcOffset::from_hms(5, 30, 0).expect("offset");
    let fine = (at(7, 0) + Duration::nanoseconds(123_456_789)).to_offset(plus);
    let kept = at(7, 123_456);
    let mut tx = b.write(&o).await;
    let u = user(o.owner, "owner", Role::Owner, fine);
    tx.insert_user(&u).await.must(b, "insert_user");
    let mut e = event(InstallId::new(), fine);
    e.id = InvocationId::new();
    tx.insert_usage(std::slice::from_ref(&e))
        .await
        .must(b, "insert_usage");
    tx.append_audit(&entry("t", "t", fine))
        .await
        .must(b, "append_audit");
    b.commit(tx).await;
    let mut tx = b.read(&o).await;
    let got = tx
        .get_user(o.owner)
        .await
        .must(b, "get_user")
        .map(|u| u.created_at);
    ensure_eq!(b, got, Some(kept), "a user's created_at to the microsecond");
    ensure_eq!(
        b,
        got.map(|t| t.offset()),
        Some(UtcOffset::UTC),
        "read back in UTC"
    );
    let events = tx
        .list_usage(&UsageFilter {
            since: Some(fine),
            until: Some(fine + Duration::microseconds(1)),
            ..Default::default()
        })
        .await
        .must(b, "list_usage");
    ensure_eq!(
        b,
        events
            .iter()
            .map(|e| (e.at, e.at.offset()))
            .collect::<Vec<_>>(),
        vec![(kept, UtcOffset::UTC)],
        "an event found by its own time, kept to the microsecond"
    );
    let audit = tx
        .list_audit(&AuditFilter {
            since: Some(fine),
            ..Default::default()
        })
        .await
        .must(b, "list_audit");
    ensure_eq!(
        b,
        audit.iter().map(|e| e.at).collect::<Vec<_>>(),
        vec![kept],
        "an audit entry found by its own time"
    );
    drop(tx);
    // Far dates keep their precision too.
    let far = OffsetDateTime::from_unix_timestamp(253_402_300_799).expect("9999-12-31")
        + Duration::microseconds(999_999);
    let mut tx = b.write(&o).await;
    let k = tenantry_store::OrgKeyRecord {
        version: 1,
        wrapped: vec![1],
        created_at: far,
    };
    tx.insert_org_key(&k).await.must(b, "insert_org_key");
    b.commit(tx).await;
    let mut tx = b.read(&o).await;
    let got = tx
        .get_org_key(1)
        .await
        .must(b, "get_org_key")
        .map(|k| k.created_at);
    ensure_eq!(b, got, Some(far), "9999-12-31T23:59:59.999999Z round trip");
}

/// `append_batch` writes every org's records of a batch, each org's audit entries
/// numbered after its own last one; an org whose records may be refused (an event
/// id it already has) holds back no other org.
pub async fn append_batch_writes_every_org_and_reports_failures(b: &Backend) {
    let orgs = [b.org().await, b.org().await, b.org().await];
    let i = InstallId::new();
    let mut tx = b.write(&orgs[1]).await;
    tx.append_audit(&entry("first", "t", at(0, 0)))
        .await
        .must(b, "append_audit");
    b.commit(tx).await;
    let batch = |n: i64| -> Vec<OrgRecords> {
        orgs.iter()
            .map(|o| OrgRecords {
                scope: o.scope.clone(),
                usage: (0..n).map(|k| event(i, at(k, 1))).collect(),
                audit: (0..n)
                    .map(|k| entry("invoke", &format!("{k}"), at(k, 2)))
                    .collect(),
            })
            .collect()
    };
    let failed = b.tenants.append_batch(batch(2)).await;
    ensure!(
        b,
        failed.is_empty(),
        "a clean batch fails nothing: {failed:?}"
    );
    for (k, o) in orgs.iter().enumerate() {
        let mut tx = b.read(o).await;
        let n = tx
            .count_usage(RunKind::Requested, at(0, 0), at(1000, 0))
            .await
            .must(b, "count_usage");
        ensure_eq!(b, n, 2, "org {k}: its usage events");
        let audit = b.all_audit(&mut tx).await;
        let want = if k == 1 {
            vec![(3, "1"), (2, "0"), (1, "t")]
        } else {
            vec![(2, "1"), (1, "0")]
        };
        ensure_eq!(b, seq_targets(&audit), want, "org {k}: its own numbering");
    }
    // Org 0 presents an event id it already has; orgs 1 and 2 are written anyway.
    let mut again = batch(1);
    let mut tx = b.read(&orgs[0]).await;
    let existing = b.all_usage(&mut tx).await;
    drop(tx);
    again[0].usage = vec![existing[0].clone()];
    let failed = b.tenants.append_batch(again).await;
    // A backend may refuse the duplicate (pooled) or keep one copy (embedded journal);
    // either way no other org is reported or held back.
    ensure!(
        b,
        failed.iter().all(|(org, _)| *org == orgs[0].id),
        "only the org with the duplicate may fail: {failed:?}"
    );
    for (k, o) in orgs.iter().enumerate().skip(1) {
        let mut tx = b.read(o).await;
        let n = b.all_usage(&mut tx).await.len();
        ensure_eq!(b, n, 3, "org {k}: written beside a refused org");
    }
}

/// Every way of writing audit entries (in a transaction, `append_records`,
/// `append_batch` of several orgs) extends one hash chain per org
/// (`tenantry_store::chain`): the first entry links to the genesis hash, each next
/// one to the entry before, and content read back hashes as it was written (time with
/// nanoseconds and an offset, unicode, `u64::MAX`, nested details). `audit_chain`
/// pages oldest first.
pub async fn audit_entries_form_one_hash_chain_per_org(b: &Backend) {
    use tenantry_store::chain::{GENESIS, Verifier};
    let (o, other) = (b.org().await, b.org().await);
    let mut odd = entry("secret.set", "ünï", at(1, 0));
    odd.at = (at(1, 0) + Duration::nanoseconds(123_456_789))
        .to_offset(UtcOffset::from_hms(-3, 0, 0).expect("offset"));
    odd.request_id = Some(RequestId::new());
    odd.actor_kind = PrincipalKind::Operator;
    odd.actor_id = Uuid::now_v7();
    odd.details =
        serde_json::json!({"z": [1, 2.5, null, {"b": true, "a": ""}], "n": u64::MAX, "é": "\"\\"});
    let mut tx = b.write(&o).await;
    tx.append_audit(&entry("first", "t", at(0, 0)))
        .await
        .must(b, "append_audit");
    tx.append_audit(&odd).await.must(b, "append_audit");
    b.commit(tx).await;
    b.tenants
        .append_records(
            &o.scope,
            &[],
            &[entry("invoke", "a", at(2, 0)), odd.clone()],
        )
        .await
        .must(b, "append_records");
    let batch: Vec<OrgRecords> = [&o, &other]
        .iter()
        .map(|org| OrgRecords {
            scope: org.scope.clone(),
            usage: Vec::new(),
            audit: vec![entry("invoke", "b", at(3, 0)), odd.clone()],
        })
        .collect();
    let failed = b.tenants.append_batch(batch).await;
    ensure!(b, failed.is_empty(), "the batch is written: {failed:?}");
    let mut tx = b.write(&o).await;
    tx.append_audit(&entry("last", "c", at(4, 0)))
        .await
        .must(b, "append_audit");
    b.commit(tx).await;

    for (name, org, n) in [("org", &o, 7u64), ("other org", &other, 2)] {
        let mut tx = b.read(org).await;
        let chain = tx.audit_chain(0, 1000).await.must(b, "audit_chain");
        ensure_eq!(
            b,
            chain.iter().map(|c| c.entry.seq).collect::<Vec<_>>(),
            (1..=n).collect::<Vec<_>>(),
            "{name}: every entry, oldest first"
        );
        ensure_eq!(
            b,
            chain[0].prev_hash.as_deref(),
            Some(&GENESIS[..]),
            "{name}: the first entry links to the genesis hash"
        );
        let mut v = Verifier::new(org.scope.org_id());
        for c in &chain {
            v.check(c);
        }
        ensure_debug_eq!(b, v.broken, None::<()>, "{name}: the chain verifies");
        ensure_eq!(
            b,
            (v.chained, v.legacy),
            (n, 0),
            "{name}: every entry is chained"
        );
        // Another org's verifier does not accept this org's trail.
        let mut foreign = Verifier::new(if name == "org" {
            other.scope.org_id()
        } else {
            o.scope.org_id()
        });
        ensure!(
            b,
            !foreign.check(&chain[0]),
            "{name}: the chain is bound to its org"
        );
    }
    let mut tx = b.read(&o).await;
    let page = tx.audit_chain(2, 3).await.must(b, "audit_chain");
    ensure_eq!(
        b,
        page.iter().map(|c| c.entry.seq).collect::<Vec<_>>(),
        vec![3, 4, 5],
        "a page after seq 2"
    );
    ensure!(
        b,
        page[0].prev_hash == tx.audit_chain(1, 1).await.must(b, "audit_chain")[0].row_hash,
        "each entry links to the row hash of the one before"
    );
    ensure!(
        b,
        tx.audit_chain(7, 10)
            .await
            .must(b, "audit_chain")
            .is_empty(),
        "nothing after the last entry"
    );
}
