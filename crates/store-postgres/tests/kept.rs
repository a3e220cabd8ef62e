//! Rows a pooled server keeps in memory (`kept`) follow writes made through another
//! server: two `PgStores` on one database play two nodes. A request's reads may use
//! rows kept at or after what its key lookup saw; a write committed on the other
//! node before the lookup always applies.

use std::sync::Arc;
use tenantry_core::scope::{Session, authenticate};
use tenantry_core::{
    AgentId, InstallId, OrgId, Permission, PrincipalKind, PublisherId, Role, TenantScope, UserId,
};
use tenantry_store::*;
use tenantry_store_postgres::testing::TestDb;
use tenantry_store_postgres::{PgStores, RlsMode};
use tenantry_store_tests::{api_key, install, owner_scope};
use time::OffsetDateTime;

struct Node {
    control: Arc<dyn ControlStore>,
    tenants: Arc<dyn TenantStore>,
}

async fn node(db: &TestDb) -> Node {
    let s = PgStores::connect(&db.app_url, 4)
        .await
        .unwrap_or_else(|e| panic!("connect as the application role: {e}"));
    Node {
        control: Arc::new(s.control()),
        tenants: Arc::new(s.tenants()),
    }
}

/// An org with an owner (and their key), an agent (and its key), an install the
/// agent is bound to, written through `n`.
struct Org {
    id: OrgId,
    owner: TenantScope,
    user_key: ApiKeyRecord,
    agent: AgentId,
    agent_key: ApiKeyRecord,
    install: InstallId,
}

async fn org(n: &Node, seed: u8) -> Org {
    let now = OffsetDateTime::now_utc();
    let id = OrgId::new();
    n.control
        .insert_org(&OrgRecord {
            id,
            name: format!("org-{seed}"),
            tier: "free".into(),
            overrides: Default::default(),
            created_at: now,
            suspended_at: None,
        })
        .await
        .unwrap();
    n.tenants.create_tenant(id).await.unwrap();
    let user = UserId::new();
    let owner = owner_scope(id, user);
    let agent = AgentId::new();
    let user_key = api_key(PrincipalKind::User, *user.as_uuid(), seed);
    let agent_key = api_key(
        PrincipalKind::Agent,
        *agent.as_uuid(),
        seed.wrapping_add(100),
    );
    let install_id = InstallId::new();
    let mut tx = n.tenants.begin(&owner, true).await.unwrap();
    tx.insert_user(&UserRecord {
        id: user,
        name: "owner".into(),
        role: Role::Owner,
        created_at: now,
    })
    .await
    .unwrap();
    tx.insert_agent(&AgentRecord {
        id: agent,
        name: "bot".into(),
        on_behalf_of: user,
        grants: [Permission::Invoke].into_iter().collect(),
        created_at: now,
    })
    .await
    .unwrap();
    tx.insert_api_key(&user_key).await.unwrap();
    tx.insert_api_key(&agent_key).await.unwrap();
    let mut rec = install("@acme/echo");
    rec.id = install_id;
    tx.insert_install(&rec).await.unwrap();
    tx.insert_binding(&BindingRecord {
        agent_id: agent,
        install_id,
        created_at: now,
    })
    .await
    .unwrap();
    tx.commit().await.unwrap();
    for k in [&user_key, &agent_key] {
        n.control
            .insert_key_index(&KeyIndexEntry {
                hash: k.hash,
                key_id: k.id,
                org_id: Some(id),
            })
            .await
            .unwrap();
    }
    Org {
        id,
        owner,
        user_key,
        agent,
        agent_key,
        install: install_id,
    }
}

/// What a request's key lookup saw, as the first statement of a request does.
async fn lookup(n: &Node, k: &ApiKeyRecord) -> Seen {
    match n.control.lookup_key(&k.hash).await.unwrap() {
        Some(KeyLookup::Tenant { seen, .. }) => seen,
        other => panic!("expected an org's key, got {other:?}"),
    }
}

/// The scope a key authenticates to on `n` with `seen`, or `None` if refused.
async fn scope(n: &Node, o: &Org, k: &ApiKeyRecord, seen: Seen) -> Option<TenantScope> {
    let (record, _) = n
        .tenants
        .credential(o.id, k.id, &k.hash, seen)
        .await
        .unwrap()?;
    match authenticate(record, OffsetDateTime::now_utc()) {
        Ok(Session::Tenant(s)) => Some(s),
        _ => None,
    }
}

async fn read_install(
    n: &Node,
    scope: &TenantScope,
    i: InstallId,
    seen: Seen,
) -> Option<InstallRecord> {
    let mut tx = n.tenants.begin_seen(scope, seen).await.unwrap();
    tx.get_install(i).await.unwrap()
}

async fn bound(n: &Node, o: &Org, seen: Seen) -> bool {
    let mut tx = n.tenants.begin_seen(&o.owner, seen).await.unwrap();
    tx.is_bound(o.agent, o.install).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_revoked_on_another_server_is_refused_at_the_next_lookup() {
    let db = TestDb::migrated(RlsMode::Strict).await;
    let (a, b) = (node(&db).await, node(&db).await);
    let o = org(&b, 1).await;
    let seen = lookup(&a, &o.agent_key).await;
    assert!(scope(&a, &o, &o.agent_key, seen).await.is_some());
    let mut tx = b.tenants.begin(&o.owner, true).await.unwrap();
    assert!(
        tx.revoke_api_key(o.agent_key.id, OffsetDateTime::now_utc())
            .await
            .unwrap()
    );
    tx.commit().await.unwrap();
    // A request whose lookup ran before the revocation may still use what it saw...
    assert!(scope(&a, &o, &o.agent_key, seen).await.is_some());
    // ...the next request's lookup sees the write, and the key is refused.
    let next = lookup(&a, &o.agent_key).await;
    assert_ne!(next, seen);
    assert!(scope(&a, &o, &o.agent_key, next).await.is_none());
    drop((a, b));
    drop(db);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_changed_on_another_server_applies_at_the_next_lookup() {
    let db = TestDb::migrated(RlsMode::Strict).await;
    let (a, b) = (node(&db).await, node(&db).await);
    let o = org(&b, 2).await;
    let seen = lookup(&a, &o.agent_key).await;
    let before = scope(&a, &o, &o.agent_key, seen).await.unwrap();
    assert!(before.can(Permission::Invoke));
    // The agent acts for its user: demoting the user takes the permission away.
    let user = match &before.actor().on_behalf_of {
        Some(u) => *u,
        None => panic!("an agent acts for a user"),
    };
    let mut tx = b.tenants.begin(&o.owner, true).await.unwrap();
    assert!(tx.set_user_role(user, Role::Viewer).await.unwrap());
    tx.commit().await.unwrap();
    let next = lookup(&a, &o.agent_key).await;
    let after = scope(&a, &o, &o.agent_key, next).await.unwrap();
    assert!(!after.can(Permission::Invoke), "{after:?}");
    drop((a, b));
    drop(db);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_install_disabled_or_unbound_on_another_server_stops_at_the_next_lookup() {
    let db = TestDb::migrated(RlsMode::Strict).await;
    let (a, b) = (node(&db).await, node(&db).await);
    let o = org(&b, 3).await;
    let seen = lookup(&a, &o.agent_key).await;
    let mut rec = read_install(&a, &o.owner, o.install, seen).await.unwrap();
    assert!(rec.enabled);
    assert!(bound(&a, &o, seen).await);

    rec.enabled = false;
    let mut tx = b.tenants.begin(&o.owner, true).await.unwrap();
    assert!(tx.update_install(&rec).await.unwrap());
    tx.commit().await.unwrap();
    // The earlier request's view is kept (so kept rows are really used)...
    assert!(
        read_install(&a, &o.owner, o.install, seen)
            .await
            .unwrap()
            .enabled
    );
    // ...and the next one reads the change.
    let next = lookup(&a, &o.agent_key).await;
    assert!(
        !read_install(&a, &o.owner, o.install, next)
            .await
            .unwrap()
            .enabled
    );

    assert!(bound(&a, &o, next).await);
    let mut tx = b.tenants.begin(&o.owner, true).await.unwrap();
    assert!(tx.delete_binding(o.agent, o.install).await.unwrap());
    tx.commit().await.unwrap();
    assert!(bound(&a, &o, next).await, "kept for the earlier lookup");
    let last = lookup(&a, &o.agent_key).await;
    assert!(!bound(&a, &o, last).await);
    drop((a, b));
    drop(db);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tier_or_publisher_key_changed_on_another_server_applies_at_the_next_lookup() {
    let db = TestDb::migrated(RlsMode::Strict).await;
    let (a, b) = (node(&db).await, node(&db).await);
    let o = org(&b, 4).await;
    let now = OffsetDateTime::now_utc();
    let publisher = PublisherId::new();
    b.control
        .insert_publisher(&PublisherRecord {
            id: publisher,
            name: "acme".into(),
            created_at: now,
        })
        .await
        .unwrap();
    b.control
        .insert_publisher_key(&PublisherKeyRecord {
            key_id: "k1".into(),
            publisher_id: publisher,
            public_key: "pk".into(),
            not_before: now,
            not_after: None,
            revoked_at: None,
            created_at: now,
        })
        .await
        .unwrap();
    let seen = lookup(&a, &o.user_key).await;
    assert_eq!(a_org(&a, o.id, seen).await, "free");
    let pk = a.control.get_publisher_key("k1", seen).await.unwrap();
    assert!(pk.unwrap().revoked_at.is_none());

    assert!(b.control.set_org_tier(o.id, "enterprise").await.unwrap());
    assert!(b.control.revoke_publisher_key("k1", now).await.unwrap());
    assert_eq!(
        a_org(&a, o.id, seen).await,
        "free",
        "kept for the earlier lookup"
    );
    let next = lookup(&a, &o.user_key).await;
    assert_eq!(a_org(&a, o.id, next).await, "enterprise");
    let pk = a.control.get_publisher_key("k1", next).await.unwrap();
    assert!(pk.unwrap().revoked_at.is_some());
    drop((a, b));
    drop(db);
}

async fn a_org(n: &Node, id: OrgId, seen: Seen) -> String {
    n.control.get_org(id, seen).await.unwrap().unwrap().tier
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kept_rows_of_one_org_never_answer_for_another_with_colliding_ids() {
    let db = TestDb::migrated(RlsMode::Strict).await;
    let n = node(&db).await;
    let x = org(&n, 5).await;
    let y = org(&n, 6).await;
    let seen_x = lookup(&n, &x.user_key).await;
    let seen_y = lookup(&n, &y.user_key).await;
    // X's install and binding are kept...
    assert!(
        read_install(&n, &x.owner, x.install, seen_x)
            .await
            .is_some()
    );
    assert!(bound(&n, &x, seen_x).await);
    // ...and asking for the same ids in Y's scope finds nothing.
    assert!(
        read_install(&n, &y.owner, x.install, seen_y)
            .await
            .is_none()
    );
    let mut tx = n.tenants.begin_seen(&y.owner, seen_y).await.unwrap();
    assert!(!tx.is_bound(x.agent, x.install).await.unwrap());
    drop(tx);
    // X's key presented as if Y's index had named it: no credential.
    let got = n
        .tenants
        .credential(y.id, x.user_key.id, &x.user_key.hash, seen_y)
        .await
        .unwrap();
    assert!(got.is_none());
    drop(n);
    drop(db);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_use_does_not_move_the_generation_and_is_kept_current() {
    let db = TestDb::migrated(RlsMode::Strict).await;
    let n = node(&db).await;
    let o = org(&n, 7).await;
    let seen = lookup(&n, &o.user_key).await;
    let s = scope(&n, &o, &o.user_key, seen).await.unwrap();
    let at = OffsetDateTime::now_utc();
    n.tenants.touch_key(&s, o.user_key.id, at).await.unwrap();
    let next = lookup(&n, &o.user_key).await;
    assert_eq!(next, seen, "a last-used time is no change to kept rows");
    let (_, last_used) = n
        .tenants
        .credential(o.id, o.user_key.id, &o.user_key.hash, next)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        last_used.map(|t| t.unix_timestamp()),
        Some(at.unix_timestamp())
    );
    drop(n);
    drop(db);
}
