//! Invocation records go through each org's journal (`src/journal.rs`): reads see
//! them at once, a crash loses none that were appended, a journal is imported exactly
//! once even when the process dies between its commit and its deletion, a torn last
//! line is skipped, and audit sequence numbers follow the order of events.

use tenantry_core::{InstallId, InvocationId, OrgId, Outcome, PrincipalKind, TenantScope, UserId};
use tenantry_store::*;
use tenantry_store_sqlite::SqliteTenants;
use tenantry_store_tests::owner_scope;
use time::OffsetDateTime;
use uuid::Uuid;

fn record(action: &str) -> (UsageEvent, AuditEntry) {
    let id = InvocationId::new();
    let usage = UsageEvent {
        id,
        at: OffsetDateTime::now_utc(),
        install_id: InstallId::new(),
        plugin: "@p/x".into(),
        action: action.into(),
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
    };
    let audit = AuditEntry {
        seq: 0,
        at: usage.at,
        actor_kind: PrincipalKind::User,
        actor_id: Uuid::nil(),
        action: "invoke".into(),
        target: action.into(),
        outcome: "OK".into(),
        request_id: None,
        details: serde_json::json!({"invocation_id": id}),
    };
    (usage, audit)
}

async fn append(t: &SqliteTenants, s: &TenantScope, action: &str) {
    let (u, a) = record(action);
    t.append_records(s, &[u], &[a]).await.expect("append");
}

/// (usage actions, audit targets in sequence order).
async fn read(t: &SqliteTenants, s: &TenantScope) -> (Vec<String>, Vec<String>) {
    let mut tx = t.begin(s, false).await.expect("begin");
    let mut usage: Vec<String> = tx
        .list_usage(&UsageFilter::default())
        .await
        .expect("usage")
        .into_iter()
        .map(|e| e.action)
        .collect();
    usage.sort();
    let mut audit = tx.list_audit(&AuditFilter::default()).await.expect("audit");
    audit.sort_by_key(|e| e.seq);
    (usage, audit.into_iter().map(|e| e.target).collect())
}

#[tokio::test]
async fn records_are_read_at_once_and_survive_a_crash_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let org = OrgId::new();
    let s = owner_scope(org, UserId::new());
    let records = dir.path().join(format!("tenants/{org}.records"));
    let importing = dir.path().join(format!("tenants/{org}.importing"));
    {
        let t = SqliteTenants::open(dir.path()).await.unwrap();
        t.create_tenant(org).await.unwrap();
        append(&t, &s, "a").await;
        append(&t, &s, "b").await;
        // The process dies with both batches only in the journal.
    }
    let journal = std::fs::read(&records).expect("journal written");
    {
        let t = SqliteTenants::open(dir.path()).await.unwrap();
        assert_eq!(
            read(&t, &s).await,
            (vec!["a".into(), "b".into()], vec!["a".into(), "b".into()])
        );
        assert!(
            !records.exists() && !importing.exists(),
            "imported journals are removed"
        );
    }
    // A crash after the import's commit but before the file was removed: the same
    // journal is found again by the next process and must not be imported twice.
    std::fs::write(&importing, &journal).unwrap();
    let t = SqliteTenants::open(dir.path()).await.unwrap();
    append(&t, &s, "c").await;
    assert_eq!(
        read(&t, &s).await,
        (
            vec!["a".into(), "b".into(), "c".into()],
            vec!["a".into(), "b".into(), "c".into()]
        )
    );
    assert!(!importing.exists());
}

#[tokio::test]
async fn a_torn_journal_line_is_skipped_and_no_other_record_lost() {
    let dir = tempfile::tempdir().unwrap();
    let org = OrgId::new();
    let s = owner_scope(org, UserId::new());
    {
        let t = SqliteTenants::open(dir.path()).await.unwrap();
        t.create_tenant(org).await.unwrap();
        append(&t, &s, "a").await;
    }
    let records = dir.path().join(format!("tenants/{org}.records"));
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&records)
        .unwrap();
    std::io::Write::write_all(&mut f, br#"{"usage":[{"id":"#).unwrap();
    drop(f);
    // The next process appends after the torn line: its record must not be lost.
    let t = SqliteTenants::open(dir.path()).await.unwrap();
    append(&t, &s, "b").await;
    assert_eq!(
        read(&t, &s).await,
        (vec!["a".into(), "b".into()], vec!["a".into(), "b".into()])
    );
}

#[tokio::test]
async fn audit_sequence_numbers_follow_events_across_journal_and_writes() {
    let dir = tempfile::tempdir().unwrap();
    let org = OrgId::new();
    let s = owner_scope(org, UserId::new());
    let t = SqliteTenants::open(dir.path()).await.unwrap();
    t.create_tenant(org).await.unwrap();
    append(&t, &s, "first").await;
    // A mutation's audit entry, written directly after the journaled invocation.
    let mut tx = t.begin(&s, true).await.unwrap();
    let (_, mut a) = record("second");
    a.action = "install.update".into();
    tx.append_audit(&a).await.unwrap();
    tx.commit().await.unwrap();
    append(&t, &s, "third").await;
    assert_eq!(
        read(&t, &s).await.1,
        vec!["first".to_string(), "second".into(), "third".into()]
    );
}

#[tokio::test]
async fn another_orgs_journal_is_never_read_into_an_org() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (OrgId::new(), OrgId::new());
    let t = SqliteTenants::open(dir.path()).await.unwrap();
    t.create_tenant(a).await.unwrap();
    t.create_tenant(b).await.unwrap();
    append(&t, &owner_scope(a, UserId::new()), "only-a").await;
    assert_eq!(
        read(&t, &owner_scope(b, UserId::new())).await,
        (vec![], vec![])
    );
    assert_eq!(
        read(&t, &owner_scope(a, UserId::new())).await.0,
        vec!["only-a".to_string()]
    );
}
