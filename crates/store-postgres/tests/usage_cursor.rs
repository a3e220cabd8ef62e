//! `list_usage` with `since`/`until`/`after` on both backends: the cursor pages in
//! `(at, id)` order (ties on `at` broken by id), returns each event once, and a
//! cursor that is not one of the org's events (another org's, or unknown) reads
//! nothing. `count_usage` counts requested runs and tool-call runs apart (what the
//! quota counters are seeded from).

use tenantry_core::{InstallId, InvocationId, OrgId, Outcome, PrincipalKind, TenantScope, UserId};
use tenantry_store::*;
use tenantry_store_postgres::testing::TestDb;
use tenantry_store_postgres::{PgStores, RlsMode};
use tenantry_store_tests::owner_scope;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

fn event(id: InvocationId, at: OffsetDateTime, install: InstallId) -> UsageEvent {
    UsageEvent {
        id,
        at,
        install_id: install,
        plugin: "@p/x".into(),
        action: "run".into(),
        actor_kind: PrincipalKind::User,
        actor_id: Uuid::nil(),
        outcome: Outcome::Ok,
        duration_us: 1,
        fuel: 1,
        peak_memory_bytes: 1,
        host_calls: 0,
        bytes_in: 0,
        bytes_out: 0,
        caller_id: None,
    }
}

async fn page(tenants: &dyn TenantStore, s: &TenantScope, f: &UsageFilter) -> Vec<InvocationId> {
    let mut tx = tenants.begin(s, false).await.unwrap();
    tx.list_usage(f)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect()
}

async fn check(tenants: &dyn TenantStore) {
    let a = OrgId::new();
    let b = OrgId::new();
    tenants.create_tenant(a).await.unwrap();
    tenants.create_tenant(b).await.unwrap();
    let (sa, sb) = (owner_scope(a, UserId::new()), owner_scope(b, UserId::new()));
    let t0 = OffsetDateTime::from_unix_timestamp(1_790_000_000).unwrap();
    let install = InstallId::new();
    // 9 events on 3 instants (3 share each `at`), inserted out of order, ids random
    // relative to time.
    let mut events = Vec::new();
    for i in 0..9i64 {
        events.push(event(
            InvocationId::new(),
            t0 + Duration::seconds(i % 3),
            install,
        ));
    }
    let mut tx = tenants.begin(&sa, true).await.unwrap();
    tx.insert_usage(&events).await.unwrap();
    tx.commit().await.unwrap();
    let foreign = InvocationId::new();
    let mut tx = tenants.begin(&sb, true).await.unwrap();
    tx.insert_usage(&[event(foreign, t0, install)])
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let mut want = events.clone();
    want.sort_by_key(|e| (e.at, e.id.to_string()));
    let want: Vec<InvocationId> = want.iter().map(|e| e.id).collect();
    assert_eq!(page(tenants, &sa, &UsageFilter::default()).await, want);

    // Pages of 2 with the cursor.
    let mut seen = Vec::new();
    let mut f = UsageFilter {
        limit: Some(2),
        ..Default::default()
    };
    loop {
        let p = page(tenants, &sa, &f).await;
        if p.is_empty() {
            break;
        }
        f.after = p.last().copied();
        seen.extend(p);
    }
    assert_eq!(seen, want);

    // Ranges: [t0+1, t0+2) holds the 3 middle events; the cursor combines with it.
    let mid = UsageFilter {
        since: Some(t0 + Duration::seconds(1)),
        until: Some(t0 + Duration::seconds(2)),
        ..Default::default()
    };
    assert_eq!(page(tenants, &sa, &mid).await, want[3..6]);
    let after_first_mid = UsageFilter {
        after: Some(want[3]),
        ..mid.clone()
    };
    assert_eq!(page(tenants, &sa, &after_first_mid).await, want[4..6]);
    // A cursor before the range does not widen it.
    let early = UsageFilter {
        after: Some(want[0]),
        ..mid
    };
    assert_eq!(page(tenants, &sa, &early).await, want[3..6]);

    // Another org's event id, or an unknown one, is no cursor here.
    for cursor in [foreign, InvocationId::new()] {
        let f = UsageFilter {
            after: Some(cursor),
            ..Default::default()
        };
        assert!(page(tenants, &sa, &f).await.is_empty());
    }
    // And B sees only its own event whatever the cursor.
    assert_eq!(page(tenants, &sb, &UsageFilter::default()).await, [foreign]);
    let f = UsageFilter {
        after: Some(want[0]),
        ..Default::default()
    };
    assert!(page(tenants, &sb, &f).await.is_empty());

    // A tool call's run keeps its caller; counts split requested runs from tool
    // calls, leave out runs refused before they started, and honour the range.
    let mut tool = event(InvocationId::new(), t0 + Duration::seconds(1), install);
    tool.caller_id = Some(want[0]);
    let mut refused = tool.clone();
    refused.id = InvocationId::new();
    refused.outcome = Outcome::InvalidInput;
    let mut tx = tenants.begin(&sa, true).await.unwrap();
    tx.insert_usage(&[tool.clone(), refused]).await.unwrap();
    tx.commit().await.unwrap();
    let mut tx = tenants.begin(&sa, false).await.unwrap();
    let all = tx.list_usage(&UsageFilter::default()).await.unwrap();
    let got = all
        .iter()
        .find(|e| e.id == tool.id)
        .expect("tool call listed");
    assert_eq!(got.caller_id, Some(want[0]));
    assert!(
        all.iter()
            .filter(|e| want.contains(&e.id))
            .all(|e| e.caller_id.is_none())
    );
    let end = t0 + Duration::seconds(3);
    assert_eq!(
        tx.count_usage(RunKind::Requested, t0, end).await.unwrap(),
        9
    );
    assert_eq!(tx.count_usage(RunKind::ToolCall, t0, end).await.unwrap(), 1);
    let before = t0 + Duration::seconds(1);
    assert_eq!(
        tx.count_usage(RunKind::ToolCall, t0, before).await.unwrap(),
        0
    );
    drop(tx);
    let mut tx = tenants.begin(&sb, false).await.unwrap();
    assert_eq!(tx.count_usage(RunKind::ToolCall, t0, end).await.unwrap(), 0);
    assert_eq!(
        tx.count_usage(RunKind::Requested, t0, end).await.unwrap(),
        1
    );
}

#[tokio::test]
async fn usage_cursor_pages_once_in_time_order_on_both_backends() {
    let db = TestDb::migrated(RlsMode::Strict).await;
    let stores = PgStores::connect(&db.app_url, 4).await.unwrap();
    check(&stores.tenants()).await;

    let dir = tempfile::tempdir().unwrap();
    let sqlite = tenantry_store_sqlite::SqliteTenants::open(dir.path())
        .await
        .unwrap();
    check(&sqlite).await;
}
