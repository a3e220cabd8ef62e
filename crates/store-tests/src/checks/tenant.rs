//! Tenant rows: org keys, users, agents, API keys and credentials, installs,
//! secrets, bindings, key-value data.

use tenantry_core::manifest::Grants;
use tenantry_core::scope::Principal;
use tenantry_core::{AgentId, ApiKeyId, InstallId, OrgId, PrincipalKind, Role, UserId};
use tenantry_store::*;

use crate::fixtures::*;
use crate::{Backend, Must};

fn is_conflict<T>(r: &StoreResult<T>) -> bool {
    matches!(r, Err(StoreError::Conflict(_)))
}

/// `create_tenant` may run again on an existing org, and keeps its data.
pub async fn create_tenant_is_idempotent(b: &Backend) {
    let o = b.org().await;
    let mut tx = b.write(&o).await;
    let u = user(o.owner, "owner", Role::Owner, at(0, 0));
    tx.insert_user(&u).await.must(b, "insert_user");
    b.commit(tx).await;
    b.tenants
        .create_tenant(o.id)
        .await
        .must(b, "create_tenant again");
    let mut tx = b.read(&o).await;
    let users = tx.list_users().await.must(b, "list_users");
    ensure_eq!(
        b,
        users,
        vec![u],
        "create_tenant again keeps the org's rows"
    );
}

/// Org keys: the current one is the highest version; versions read back exactly
/// (up to `u32::MAX`); a version written twice is a `Conflict`; retiring deletes the
/// versions below one and no other.
pub async fn org_keys_round_trip(b: &Backend) {
    let o = b.org().await;
    let mut tx = b.write(&o).await;
    ensure!(
        b,
        tx.current_org_key().await.must(b, "current").is_none(),
        "a new org has no key"
    );
    let keys: Vec<OrgKeyRecord> = [1u32, 3, 2, u32::MAX - 1]
        .into_iter()
        .map(|version| OrgKeyRecord {
            version,
            wrapped: vec![version as u8, 0, 255],
            created_at: at(i64::from(version % 100), 10),
        })
        .collect();
    for k in &keys {
        tx.insert_org_key(k).await.must(b, "insert_org_key");
    }
    b.commit(tx).await;
    let mut tx = b.read(&o).await;
    for k in &keys {
        let got = tx.get_org_key(k.version).await.must(b, "get_org_key");
        ensure_eq!(
            b,
            got.as_ref(),
            Some(k),
            "org key version {} round trip",
            k.version
        );
    }
    let current = tx.current_org_key().await.must(b, "current");
    ensure_eq!(
        b,
        current.as_ref(),
        Some(&keys[3]),
        "the current key is the highest version"
    );
    ensure!(
        b,
        tx.get_org_key(7).await.must(b, "get").is_none(),
        "an unknown version is None"
    );
    drop(tx);
    let mut tx = b.write(&o).await;
    let r = tx.insert_org_key(&keys[0]).await;
    ensure!(
        b,
        is_conflict(&r),
        "an org key version written twice is Conflict, got {r:?}"
    );
    drop(tx);
    // Retiring: every version below the given one goes; the others stay.
    let mut tx = b.write(&o).await;
    ensure_eq!(
        b,
        tx.delete_org_keys_before(3)
            .await
            .must(b, "delete_org_keys_before"),
        2,
        "versions 1 and 2 are deleted"
    );
    b.commit(tx).await;
    let mut tx = b.read(&o).await;
    for k in &keys {
        let found = tx.get_org_key(k.version).await.must(b, "get_org_key");
        ensure_eq!(
            b,
            found.is_some(),
            k.version >= 3,
            "version {} after retiring",
            k.version
        );
    }
}

/// Users read back (unicode, empty name); listed in id order; the role changes in
/// place; a taken id or name is a `Conflict`; an unknown user answers `None`/`false`.
pub async fn users_round_trip_and_order(b: &Backend) {
    let o = b.org().await;
    let users = vec![
        user(UserId::new(), "Zoë 🦀", Role::Owner, at(0, 1)),
        user(UserId::new(), "", Role::Member, at(0, 2)),
        user(UserId::new(), "admin'--", Role::Admin, at(0, 999_999)),
    ];
    let mut tx = b.write(&o).await;
    for u in users.iter().rev() {
        tx.insert_user(u).await.must(b, "insert_user");
    }
    b.commit(tx).await;
    for (what, dup) in [
        (
            "id",
            UserRecord {
                name: "new".into(),
                ..users[0].clone()
            },
        ),
        (
            "name",
            UserRecord {
                id: UserId::new(),
                ..users[0].clone()
            },
        ),
    ] {
        let mut tx = b.write(&o).await;
        let r = tx.insert_user(&dup).await;
        ensure!(
            b,
            is_conflict(&r),
            "a duplicate user {what} is Conflict, got {r:?}"
        );
    }
    let mut tx = b.write(&o).await;
    for u in &users {
        let got = tx.get_user(u.id).await.must(b, "get_user");
        ensure_eq!(b, got.as_ref(), Some(u), "user {:?} round trip", u.name);
    }
    let listed = tx.list_users().await.must(b, "list_users");
    let mut want = users.clone();
    want.sort_by_key(|u| u.id);
    ensure_eq!(b, listed, want, "list_users in id order");
    let changed = tx
        .set_user_role(users[1].id, Role::Admin)
        .await
        .must(b, "set_user_role");
    ensure!(b, changed, "set_user_role of a user is true");
    let missing = tx
        .set_user_role(UserId::new(), Role::Admin)
        .await
        .must(b, "set_user_role");
    ensure!(b, !missing, "set_user_role of an unknown user is false");
    ensure!(
        b,
        tx.get_user(UserId::new()).await.must(b, "get").is_none(),
        "an unknown user is None"
    );
    b.commit(tx).await;
    let mut tx = b.read(&o).await;
    let got = tx.get_user(users[1].id).await.must(b, "get_user");
    ensure_eq!(
        b,
        got.map(|u| u.role),
        Some(Role::Admin),
        "the new role is kept"
    );
}

/// Agents read back with their grants (empty too); listed in id order; deleting
/// answers `true` once; an agent needs its user; a taken name is a `Conflict`.
pub async fn agents_round_trip_and_delete(b: &Backend) {
    let o = b.org().await;
    let mut tx = b.write(&o).await;
    tx.insert_user(&user(o.owner, "owner", Role::Owner, at(0, 0)))
        .await
        .must(b, "insert_user");
    let mut a1 = agent(o.owner, "bot ✓");
    a1.grants.clear();
    let a2 = agent(o.owner, "bot 2");
    for a in [&a2, &a1] {
        tx.insert_agent(a).await.must(b, "insert_agent");
    }
    b.commit(tx).await;
    let mut tx = b.write(&o).await;
    let r = tx
        .insert_agent(&AgentRecord {
            id: AgentId::new(),
            ..a1.clone()
        })
        .await;
    ensure!(
        b,
        is_conflict(&r),
        "a duplicate agent name is Conflict, got {r:?}"
    );
    drop(tx);
    let mut tx = b.write(&o).await;
    let r = tx.insert_agent(&agent(UserId::new(), "orphan")).await;
    ensure!(
        b,
        r.is_err() && !is_conflict(&r),
        "an agent of an unknown user is refused (not as Conflict), got {r:?}"
    );
    drop(tx);
    let mut tx = b.write(&o).await;
    for a in [&a1, &a2] {
        let got = tx.get_agent(a.id).await.must(b, "get_agent");
        ensure_eq!(b, got.as_ref(), Some(a), "agent {:?} round trip", a.name);
    }
    let listed = tx.list_agents().await.must(b, "list_agents");
    let mut want = vec![a1.clone(), a2.clone()];
    want.sort_by_key(|a| a.id);
    ensure_eq!(b, listed, want, "list_agents in id order");
    ensure!(
        b,
        tx.delete_agent(a1.id).await.must(b, "delete"),
        "deleting an agent is true"
    );
    ensure!(
        b,
        !tx.delete_agent(a1.id).await.must(b, "delete"),
        "deleting it again is false"
    );
    ensure!(
        b,
        tx.get_agent(a1.id).await.must(b, "get").is_none(),
        "a deleted agent is None"
    );
    b.commit(tx).await;
    let mut tx = b.read(&o).await;
    ensure_eq!(
        b,
        tx.list_agents().await.must(b, "list"),
        vec![a2],
        "one agent left"
    );
}

/// API keys read back (all optional times set and unset); listed in id order;
/// revoking answers `true` once and keeps the first time; `touch_api_key` sets the
/// last use.
pub async fn api_keys_and_revocation(b: &Backend) {
    let o = b.org().await;
    let mut tx = b.write(&o).await;
    let k1 = api_key(PrincipalKind::User, *o.owner.as_uuid(), 1);
    let mut k2 = api_key(PrincipalKind::Agent, *AgentId::new().as_uuid(), 2);
    k2.expires_at = Some(at(1000, 1));
    k2.revoked_at = Some(at(900, 2));
    k2.last_used_at = Some(at(800, 3));
    k2.name = String::new();
    for k in [&k2, &k1] {
        tx.insert_api_key(k).await.must(b, "insert_api_key");
    }
    b.commit(tx).await;
    let mut tx = b.write(&o).await;
    let r = tx
        .insert_api_key(&ApiKeyRecord {
            name: "again".into(),
            ..k1.clone()
        })
        .await;
    ensure!(
        b,
        is_conflict(&r),
        "a duplicate API key id is Conflict, got {r:?}"
    );
    drop(tx);
    let mut tx = b.write(&o).await;
    for k in [&k1, &k2] {
        let got = tx.get_api_key(k.id).await.must(b, "get_api_key");
        ensure_eq!(b, got.as_ref(), Some(k), "API key {:?} round trip", k.name);
    }
    let mut want = vec![k1.clone(), k2.clone()];
    want.sort_by_key(|k| k.id);
    ensure_eq!(
        b,
        tx.list_api_keys().await.must(b, "list"),
        want,
        "list_api_keys in id order"
    );
    let first = at(50, 5);
    ensure!(
        b,
        tx.revoke_api_key(k1.id, first).await.must(b, "revoke"),
        "revoking a live key is true"
    );
    ensure!(
        b,
        !tx.revoke_api_key(k1.id, at(60, 0)).await.must(b, "revoke"),
        "revoking it again is false"
    );
    ensure!(
        b,
        !tx.revoke_api_key(k2.id, at(60, 0)).await.must(b, "revoke"),
        "revoking a revoked key is false"
    );
    ensure!(
        b,
        !tx.revoke_api_key(ApiKeyId::new(), at(60, 0))
            .await
            .must(b, "revoke"),
        "revoking an unknown key is false"
    );
    tx.touch_api_key(k1.id, at(70, 7))
        .await
        .must(b, "touch_api_key");
    tx.touch_api_key(ApiKeyId::new(), at(70, 7))
        .await
        .must(b, "touch_api_key of an unknown key is Ok");
    b.commit(tx).await;
    let mut tx = b.read(&o).await;
    let got = tx.get_api_key(k1.id).await.must(b, "get_api_key");
    ensure_eq!(
        b,
        got.map(|k| (k.revoked_at, k.last_used_at)),
        Some((Some(first), Some(at(70, 7)))),
        "the first revocation and the last use are kept"
    );
    drop(tx);

    // A break-glass grant waiting for approval reads back as such; approving it once
    // records who and when; nothing else can be approved.
    let mut grant = api_key(PrincipalKind::Operator, uuid::Uuid::now_v7(), 3);
    grant.expires_at = Some(at(5000, 0));
    grant.breakglass = Some(tenantry_core::scope::BreakGlass {
        ticket: "T-1 ✓".into(),
        reason: "r".into(),
        write: true,
        pending: true,
        approved_by: None,
        approved_at: None,
    });
    let mut tx = b.write(&o).await;
    tx.insert_api_key(&grant).await.must(b, "insert_api_key");
    b.commit(tx).await;
    let mut tx = b.write(&o).await;
    let got = tx.get_api_key(grant.id).await.must(b, "get_api_key");
    ensure_eq!(b, got.as_ref(), Some(&grant), "a pending grant round trip");
    let approver = uuid::Uuid::now_v7();
    ensure!(
        b,
        tx.approve_breakglass(grant.id, approver, at(60, 1))
            .await
            .must(b, "approve"),
        "approving a pending grant is true"
    );
    for (id, what) in [
        (grant.id, "again"),
        (k1.id, "a plain key"),
        (ApiKeyId::new(), "an unknown key"),
    ] {
        ensure!(
            b,
            !tx.approve_breakglass(id, approver, at(61, 0))
                .await
                .must(b, "approve"),
            "approving {what} is false"
        );
    }
    b.commit(tx).await;
    let mut tx = b.read(&o).await;
    let got = tx.get_api_key(grant.id).await.must(b, "get_api_key");
    ensure_eq!(
        b,
        got.and_then(|k| k.breakglass)
            .map(|g| (g.pending, g.approved_by, g.approved_at)),
        Some((false, Some(approver), Some(at(60, 1)))),
        "the approval is kept"
    );
}

/// `credential` finds a key only with its org and its exact hash and while its
/// principal (and an agent's user) exists; it carries expiry, revocation, the
/// principal with its current role and grants, and the last use.
pub async fn credential_lookup(b: &Backend) {
    let o = b.org().await;
    let mut tx = b.write(&o).await;
    tx.insert_user(&user(o.owner, "owner", Role::Admin, at(0, 0)))
        .await
        .must(b, "insert_user");
    let a = agent(o.owner, "bot");
    tx.insert_agent(&a).await.must(b, "insert_agent");
    let mut uk = api_key(PrincipalKind::User, *o.owner.as_uuid(), 1);
    uk.expires_at = Some(at(5000, 5));
    uk.last_used_at = Some(at(40, 4));
    let ak = api_key(PrincipalKind::Agent, *a.id.as_uuid(), 2);
    let ghost = api_key(PrincipalKind::User, *UserId::new().as_uuid(), 3);
    for k in [&uk, &ak, &ghost] {
        tx.insert_api_key(k).await.must(b, "insert_api_key");
    }
    b.commit(tx).await;

    let got = b.credential(o.id, uk.id, &uk.hash).await;
    let Some((rec, last_used)) = got else {
        panic!("{}", b.at("a user's key with its hash has a credential"));
    };
    ensure_eq!(b, rec.key_id, uk.id, "credential key id");
    ensure_eq!(
        b,
        (rec.expires_at, rec.revoked_at, last_used),
        (uk.expires_at, None, uk.last_used_at),
        "credential times"
    );
    ensure_debug_eq!(
        b,
        rec.principal,
        Principal::User {
            org_id: o.id,
            id: o.owner,
            role: Role::Admin
        },
        "a user key's principal carries the user's role"
    );
    let got = b.credential(o.id, ak.id, &ak.hash).await;
    ensure_debug_eq!(
        b,
        got.map(|(r, _)| r.principal),
        Some(Principal::Agent {
            org_id: o.id,
            id: a.id,
            on_behalf_of: o.owner,
            user_role: Role::Admin,
            grants: a.grants.clone(),
        }),
        "an agent key's principal carries its grants and its user's role"
    );
    for (what, org, key, hash) in [
        ("a wrong hash", o.id, uk.id, [9u8; 32]),
        ("another org", OrgId::new(), uk.id, uk.hash),
        ("an unknown key", o.id, ApiKeyId::new(), uk.hash),
        (
            "a key whose user does not exist",
            o.id,
            ghost.id,
            ghost.hash,
        ),
    ] {
        let got = b.credential(org, key, &hash).await;
        ensure!(b, got.is_none(), "no credential for {what}, got {got:?}");
    }
    // Changes show at the next lookup: role, revocation, the agent's deletion.
    let mut tx = b.write(&o).await;
    tx.set_user_role(o.owner, Role::Member)
        .await
        .must(b, "set_user_role");
    tx.revoke_api_key(uk.id, at(60, 6)).await.must(b, "revoke");
    tx.delete_agent(a.id).await.must(b, "delete_agent");
    b.commit(tx).await;
    let got = b.credential(o.id, uk.id, &uk.hash).await;
    ensure_debug_eq!(
        b,
        got.map(|(r, _)| (r.revoked_at, r.principal)),
        Some((
            Some(at(60, 6)),
            Principal::User {
                org_id: o.id,
                id: o.owner,
                role: Role::Member
            }
        )),
        "a revoked key still reads, revoked, with the new role"
    );
    let got = b.credential(o.id, ak.id, &ak.hash).await;
    ensure!(
        b,
        got.is_none(),
        "a deleted agent's key has no credential, got {got:?}"
    );
}

/// `TenantStore::touch_key` records a use that `get_api_key`, `list_api_keys` and
/// `credential` show afterwards; an older use never moves it back.
pub async fn touch_key_keeps_the_latest_use(b: &Backend) {
    let o = b.org().await;
    let mut tx = b.write(&o).await;
    tx.insert_user(&user(o.owner, "owner", Role::Owner, at(0, 0)))
        .await
        .must(b, "insert_user");
    let k = api_key(PrincipalKind::User, *o.owner.as_uuid(), 1);
    tx.insert_api_key(&k).await.must(b, "insert_api_key");
    b.commit(tx).await;
    // Read once, so a backend that keeps credentials keeps this one.
    b.credential(o.id, k.id, &k.hash).await;
    let latest = at(100, 123_456);
    b.tenants
        .touch_key(&o.scope, k.id, latest)
        .await
        .must(b, "touch_key");
    b.tenants
        .touch_key(&o.scope, k.id, at(50, 0))
        .await
        .must(b, "touch_key older");
    let got = b.credential(o.id, k.id, &k.hash).await;
    ensure_eq!(
        b,
        got.map(|(_, l)| l),
        Some(Some(latest)),
        "credential shows the latest use"
    );
    let mut tx = b.read(&o).await;
    let got = tx.get_api_key(k.id).await.must(b, "get_api_key");
    ensure_eq!(
        b,
        got.and_then(|k| k.last_used_at),
        Some(latest),
        "get_api_key shows the latest use"
    );
    let listed = tx.list_api_keys().await.must(b, "list_api_keys");
    ensure_eq!(
        b,
        listed.iter().map(|k| k.last_used_at).collect::<Vec<_>>(),
        vec![Some(latest)],
        "list_api_keys shows the latest use"
    );
    drop(tx);
    // Also through a transaction: an older use never moves it back.
    let mut tx = b.write(&o).await;
    tx.touch_api_key(k.id, at(10, 0))
        .await
        .must(b, "touch_api_key older");
    b.commit(tx).await;
    let mut tx = b.read(&o).await;
    let got = tx.get_api_key(k.id).await.must(b, "get_api_key");
    ensure_eq!(
        b,
        got.and_then(|k| k.last_used_at),
        Some(latest),
        "touch_api_key with an older time keeps the latest"
    );
}

/// Installs read back with every optional field set and unset and their JSON config
/// kept exactly (nesting, unicode, big and negative numbers); `rate_limit_per_minute`
/// keeps the whole `u32` range; found by plugin; listed in id order.
pub async fn installs_round_trip_edges(b: &Backend) {
    let o = b.org().await;
    let mut plain = install("@acme/echo");
    plain.config = serde_json::json!({});
    let mut full = install("@acme/ünï");
    full.previous_version = Some("0.9.0-beta.1+build".into());
    full.config = serde_json::json!({
        "nested": {"list": [1, -2, 3.5, null, true, "ünï 🦀"]},
        "big": u64::MAX,
        "min": i64::MIN,
        "empty": "",
        "quote": "'\"\\",
    });
    full.grants = Grants {
        egress: vec!["api.example.com".into(), "*.example.org".into()],
        kv: true,
        secrets: vec!["token".into()],
        tools: vec!["@acme/echo#run".into()],
    };
    full.enabled = false;
    full.rate_limit_per_minute = Some(u32::MAX);
    full.updated_at = at(9, 999_999);
    let mut one = install("@acme/one");
    one.rate_limit_per_minute = Some(1);
    let mut mid = install("@acme/mid");
    mid.rate_limit_per_minute = Some(i32::MAX as u32 + 1);
    let all = [plain, full, one, mid];
    let mut tx = b.write(&o).await;
    for i in all.iter().rev() {
        tx.insert_install(i).await.must(b, "insert_install");
    }
    b.commit(tx).await;
    let mut tx = b.read(&o).await;
    for i in &all {
        let got = tx.get_install(i.id).await.must(b, "get_install");
        ensure_eq!(b, got.as_ref(), Some(i), "install {} round trip", i.plugin);
        let got = tx
            .get_install_by_plugin(&i.plugin)
            .await
            .must(b, "get_install_by_plugin");
        ensure_eq!(b, got.as_ref(), Some(i), "install {} by plugin", i.plugin);
    }
    let mut want = all.to_vec();
    want.sort_by_key(|i| i.id);
    ensure_eq!(
        b,
        tx.list_installs().await.must(b, "list"),
        want,
        "list_installs in id order"
    );
    ensure!(
        b,
        tx.get_install(InstallId::new())
            .await
            .must(b, "get")
            .is_none()
            && tx
                .get_install_by_plugin("@acme/none")
                .await
                .must(b, "get")
                .is_none(),
        "unknown installs are None"
    );
}

/// `update_install` changes every mutable field and answers `false` for an unknown
/// install; deleting answers `true` once; a taken id or plugin is a `Conflict`.
pub async fn installs_update_delete_and_duplicates(b: &Backend) {
    let o = b.org().await;
    let i = install("@acme/echo");
    let mut tx = b.write(&o).await;
    tx.insert_install(&i).await.must(b, "insert_install");
    b.commit(tx).await;
    for (what, dup) in [
        (
            "plugin",
            InstallRecord {
                id: InstallId::new(),
                ..i.clone()
            },
        ),
        (
            "id",
            InstallRecord {
                plugin: "@acme/other".into(),
                ..i.clone()
            },
        ),
    ] {
        let mut tx = b.write(&o).await;
        let r = tx.insert_install(&dup).await;
        ensure!(
            b,
            is_conflict(&r),
            "a duplicate install {what} is Conflict, got {r:?}"
        );
    }
    let changed = InstallRecord {
        version: "2.0.0".into(),
        previous_version: Some("1.0.0".into()),
        artifact_sha256: "99".repeat(32),
        config: serde_json::json!({"n": 2}),
        grants: Grants {
            kv: true,
            ..Default::default()
        },
        enabled: false,
        rate_limit_per_minute: Some(30),
        updated_at: at(100, 42),
        ..i.clone()
    };
    let mut tx = b.write(&o).await;
    ensure!(
        b,
        tx.update_install(&changed).await.must(b, "update"),
        "updating an install is true"
    );
    let unknown = InstallRecord {
        id: InstallId::new(),
        ..changed.clone()
    };
    ensure!(
        b,
        !tx.update_install(&unknown).await.must(b, "update"),
        "updating an unknown install is false"
    );
    b.commit(tx).await;
    let mut tx = b.read(&o).await;
    let got = tx.get_install(i.id).await.must(b, "get_install");
    ensure_eq!(
        b,
        got.as_ref(),
        Some(&changed),
        "every mutable field updated"
    );
    ensure_eq!(
        b,
        tx.list_installs().await.must(b, "list"),
        vec![changed.clone()],
        "an update of an unknown install creates nothing"
    );
    drop(tx);
    let mut back = changed.clone();
    back.previous_version = None;
    back.rate_limit_per_minute = None;
    let mut tx = b.write(&o).await;
    tx.update_install(&back).await.must(b, "update");
    b.commit(tx).await;
    let mut tx = b.read(&o).await;
    let got = tx.get_install(i.id).await.must(b, "get_install");
    ensure_eq!(
        b,
        got.as_ref(),
        Some(&back),
        "Some -> None fields read back None"
    );
    drop(tx);
    let mut tx = b.write(&o).await;
    ensure!(
        b,
        tx.delete_install(i.id).await.must(b, "delete"),
        "deleting an install is true"
    );
    ensure!(
        b,
        !tx.delete_install(i.id).await.must(b, "delete"),
        "deleting it again is false"
    );
    b.commit(tx).await;
    let mut tx = b.read(&o).await;
    ensure!(
        b,
        tx.get_install(i.id).await.must(b, "get").is_none(),
        "a deleted install is None"
    );
    ensure!(
        b,
        tx.get_install_by_plugin("@acme/echo")
            .await
            .must(b, "get")
            .is_none(),
        "a deleted install is not found by plugin"
    );
}

/// Secrets: an upsert inserts, then replaces ciphertext, key version and
/// `updated_at` but keeps `created_at`; listed by name (metadata only); deleting
/// answers `true` once; `delete_secrets_of` counts; a secret needs its install,
/// and goes with it.
pub async fn secrets_upsert_list_delete(b: &Backend) {
    let o = b.org().await;
    let (i1, i2) = (install("@acme/one"), install("@acme/two"));
    let secret = |install: InstallId, name: &str, v: u32, t| SecretRecord {
        install_id: install,
        name: name.into(),
        key_version: v,
        ciphertext: vec![v as u8, 0, 255, 1],
        created_at: t,
        updated_at: t,
    };
    let s_b = secret(i1.id, "b_token", 1, at(1, 1));
    let s_a = secret(i1.id, "A key ✓", u32::MAX, at(2, 2));
    let s_e = secret(i1.id, "", 2, at(3, 3));
    let s_other = secret(i2.id, "b_token", 1, at(4, 4));
    let mut tx = b.write(&o).await;
    for i in [&i1, &i2] {
        tx.insert_install(i).await.must(b, "insert_install");
    }
    for s in [&s_b, &s_a, &s_e, &s_other] {
        tx.upsert_secret(s).await.must(b, "upsert_secret");
    }
    b.commit(tx).await;
    let mut tx = b.write(&o).await;
    let r = tx
        .upsert_secret(&secret(InstallId::new(), "x", 1, at(0, 0)))
        .await;
    ensure!(
        b,
        r.is_err() && !is_conflict(&r),
        "a secret of an unknown install is refused (not as Conflict), got {r:?}"
    );
    drop(tx);
    let mut tx = b.write(&o).await;
    for s in [&s_b, &s_a, &s_e, &s_other] {
        let got = tx
            .get_secret(s.install_id, &s.name)
            .await
            .must(b, "get_secret");
        ensure!(b, got.as_ref() == Some(s), "secret {:?} round trip", s.name);
    }
    let meta = |s: &SecretRecord| SecretMeta {
        name: s.name.clone(),
        key_version: s.key_version,
        created_at: s.created_at,
        updated_at: s.updated_at,
    };
    let listed = tx.list_secrets(i1.id).await.must(b, "list_secrets");
    ensure_eq!(
        b,
        listed,
        vec![meta(&s_e), meta(&s_a), meta(&s_b)],
        "list_secrets by name (byte order), one install only"
    );
    let replaced = SecretRecord {
        key_version: 7,
        ciphertext: vec![42; 100],
        updated_at: at(50, 5),
        created_at: at(50, 5),
        ..s_b.clone()
    };
    tx.upsert_secret(&replaced)
        .await
        .must(b, "upsert_secret again");
    let got = tx.get_secret(i1.id, "b_token").await.must(b, "get_secret");
    let want = SecretRecord {
        created_at: s_b.created_at,
        ..replaced.clone()
    };
    ensure!(
        b,
        got.as_ref() == Some(&want),
        "an upsert replaces the value, keeps created_at (got {got:?})"
    );
    ensure!(
        b,
        tx.delete_secret(i1.id, "").await.must(b, "delete"),
        "deleting a secret is true"
    );
    ensure!(
        b,
        !tx.delete_secret(i1.id, "").await.must(b, "delete"),
        "deleting it again is false"
    );
    ensure!(
        b,
        !tx.delete_secret(i1.id, "B_TOKEN").await.must(b, "delete"),
        "secret names match exactly"
    );
    ensure_eq!(
        b,
        tx.delete_secrets_of(i1.id)
            .await
            .must(b, "delete_secrets_of"),
        2,
        "delete_secrets_of counts the install's secrets"
    );
    ensure_eq!(
        b,
        tx.delete_secrets_of(i1.id)
            .await
            .must(b, "delete_secrets_of"),
        0,
        "then there are none"
    );
    ensure!(
        b,
        tx.delete_install(i2.id).await.must(b, "delete_install"),
        "delete install two"
    );
    b.commit(tx).await;
    let mut tx = b.read(&o).await;
    ensure!(
        b,
        tx.list_secrets(i2.id).await.must(b, "list").is_empty(),
        "an install's secrets go with it"
    );
    ensure!(
        b,
        tx.get_secret(i2.id, "b_token")
            .await
            .must(b, "get")
            .is_none(),
        "a deleted install's secret is None"
    );
}

/// Bindings read back; listed by (agent, install); `is_bound` follows them; a
/// binding made twice is a `Conflict`; deleting answers `true` once;
/// `delete_bindings_of_install` counts; a binding needs its agent and install.
pub async fn bindings_round_trip(b: &Backend) {
    let o = b.org().await;
    let (a1, a2) = (agent(o.owner, "a1"), agent(o.owner, "a2"));
    let (i1, i2) = (install("@acme/one"), install("@acme/two"));
    let mut tx = b.write(&o).await;
    tx.insert_user(&user(o.owner, "owner", Role::Owner, at(0, 0)))
        .await
        .must(b, "insert_user");
    for a in [&a1, &a2] {
        tx.insert_agent(a).await.must(b, "insert_agent");
    }
    for i in [&i1, &i2] {
        tx.insert_install(i).await.must(b, "insert_install");
    }
    let mut all = Vec::new();
    for (n, (a, i)) in [(&a2, &i1), (&a1, &i2), (&a1, &i1)].into_iter().enumerate() {
        let binding = BindingRecord {
            agent_id: a.id,
            install_id: i.id,
            created_at: at(n as i64, 77),
        };
        tx.insert_binding(&binding).await.must(b, "insert_binding");
        all.push(binding);
    }
    b.commit(tx).await;
    let mut tx = b.write(&o).await;
    let r = tx.insert_binding(&all[0]).await;
    ensure!(
        b,
        is_conflict(&r),
        "a binding made twice is Conflict, got {r:?}"
    );
    drop(tx);
    for (what, bad) in [
        (
            "agent",
            BindingRecord {
                agent_id: AgentId::new(),
                ..all[0].clone()
            },
        ),
        (
            "install",
            BindingRecord {
                install_id: InstallId::new(),
                ..all[0].clone()
            },
        ),
    ] {
        let mut tx = b.write(&o).await;
        let r = tx.insert_binding(&bad).await;
        ensure!(
            b,
            r.is_err() && !is_conflict(&r),
            "a binding of an unknown {what} is refused (not as Conflict), got {r:?}"
        );
    }
    let mut tx = b.write(&o).await;
    let mut want = all.clone();
    want.sort_by_key(|x| (x.agent_id, x.install_id));
    ensure_eq!(
        b,
        tx.list_bindings().await.must(b, "list"),
        want,
        "list_bindings by (agent, install)"
    );
    ensure!(
        b,
        tx.is_bound(a2.id, i1.id).await.must(b, "is_bound"),
        "a2 is bound to i1"
    );
    ensure!(
        b,
        !tx.is_bound(a2.id, i2.id).await.must(b, "is_bound"),
        "a2 is not bound to i2"
    );
    ensure!(
        b,
        tx.delete_binding(a2.id, i1.id).await.must(b, "delete"),
        "unbinding is true"
    );
    ensure!(
        b,
        !tx.delete_binding(a2.id, i1.id).await.must(b, "delete"),
        "unbinding again is false"
    );
    ensure!(
        b,
        !tx.is_bound(a2.id, i1.id).await.must(b, "is_bound"),
        "an unbound pair is not bound"
    );
    ensure_eq!(
        b,
        tx.delete_bindings_of_install(i1.id)
            .await
            .must(b, "delete_bindings_of_install"),
        1,
        "one binding of i1 left to delete"
    );
    b.commit(tx).await;
    let mut tx = b.read(&o).await;
    ensure_eq!(
        b,
        tx.list_bindings().await.must(b, "list"),
        vec![all[1].clone()],
        "only a1-i2 remains"
    );
}

/// Key-value data: values are bytes (empty, NUL, 256 KiB), keys are text (unicode,
/// empty); a set replaces; deleting answers `true` once; installs have separate
/// namespaces; data of an unknown install is refused.
pub async fn kv_round_trip(b: &Backend) {
    let o = b.org().await;
    let (i1, i2) = (install("@acme/one"), install("@acme/two"));
    let mut tx = b.write(&o).await;
    for i in [&i1, &i2] {
        tx.insert_install(i).await.must(b, "insert_install");
    }
    let big: Vec<u8> = (0..256 * 1024).map(|n| (n % 251) as u8).collect();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("", b"empty key".to_vec()),
        ("empty value", Vec::new()),
        ("nul", vec![0, 0, 1, 0]),
        ("ünï/🦀", "ünï".as_bytes().to_vec()),
        ("big", big),
    ];
    for (k, v) in &cases {
        tx.kv_set(i1.id, k, v).await.must(b, "kv_set");
    }
    tx.kv_set(i2.id, "nul", b"other install")
        .await
        .must(b, "kv_set");
    b.commit(tx).await;
    let mut tx = b.write(&o).await;
    let r = tx.kv_set(InstallId::new(), "k", b"v").await;
    ensure!(
        b,
        r.is_err() && !is_conflict(&r),
        "kv data of an unknown install is refused (not as Conflict), got {r:?}"
    );
    drop(tx);
    let mut tx = b.write(&o).await;
    for (k, v) in &cases {
        let got = tx.kv_get(i1.id, k).await.must(b, "kv_get");
        ensure!(
            b,
            got.as_deref() == Some(v.as_slice()),
            "kv {k:?} round trip ({} bytes)",
            v.len()
        );
    }
    ensure_eq!(
        b,
        tx.kv_get(i2.id, "nul").await.must(b, "kv_get"),
        Some(b"other install".to_vec()),
        "installs have separate keys"
    );
    tx.kv_set(i1.id, "nul", b"replaced")
        .await
        .must(b, "kv_set again");
    ensure_eq!(
        b,
        tx.kv_get(i1.id, "nul").await.must(b, "kv_get"),
        Some(b"replaced".to_vec()),
        "a set replaces"
    );
    ensure!(
        b,
        tx.kv_delete(i1.id, "nul").await.must(b, "kv_delete"),
        "deleting a key is true"
    );
    ensure!(
        b,
        !tx.kv_delete(i1.id, "nul").await.must(b, "kv_delete"),
        "deleting it again is false"
    );
    ensure!(
        b,
        !tx.kv_delete(i1.id, "NUL").await.must(b, "kv_delete"),
        "keys match exactly"
    );
    ensure!(
        b,
        tx.kv_get(i1.id, "nul").await.must(b, "kv_get").is_none(),
        "a deleted key is None"
    );
    ensure!(
        b,
        tx.kv_get(InstallId::new(), "")
            .await
            .must(b, "kv_get")
            .is_none(),
        "an unknown install has no data"
    );
    b.commit(tx).await;
    let mut tx = b.read(&o).await;
    ensure_eq!(
        b,
        tx.kv_get(i2.id, "nul").await.must(b, "kv_get"),
        Some(b"other install".to_vec()),
        "the other install's key is untouched"
    );
}

/// `kv_list` answers keys with the prefix (`%`, `_` and case are literal) in byte
/// order, at most `limit` of them, of one install only.
pub async fn kv_list_prefix_order_and_paging(b: &Backend) {
    let o = b.org().await;
    let (i1, i2) = (install("@acme/one"), install("@acme/two"));
    let mut tx = b.write(&o).await;
    for i in [&i1, &i2] {
        tx.insert_install(i).await.must(b, "insert_install");
    }
    let keys = [
        "a",
        "a/1",
        "a/2",
        "a/10",
        "a%",
        "a_b",
        "aXb",
        "A/1",
        "b",
        "é",
        "a/é",
        "a/\u{10000}",
        "",
    ];
    for k in keys {
        tx.kv_set(i1.id, k, b"v").await.must(b, "kv_set");
    }
    tx.kv_set(i2.id, "a/other", b"v").await.must(b, "kv_set");
    b.commit(tx).await;
    let sorted = |mut v: Vec<&str>| {
        v.sort_by(|x, y| x.as_bytes().cmp(y.as_bytes()));
        v.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let mut tx = b.read(&o).await;
    for (prefix, limit, want) in [
        ("", 100, sorted(keys.to_vec())),
        (
            "a/",
            100,
            sorted(vec!["a/1", "a/2", "a/10", "a/é", "a/\u{10000}"]),
        ),
        ("a/", 2, sorted(vec!["a/1", "a/10"])),
        ("a", 0, vec![]),
        ("a%", 100, sorted(vec!["a%"])),
        ("a_", 100, sorted(vec!["a_b"])),
        ("A", 100, sorted(vec!["A/1"])),
        ("é", 100, sorted(vec!["é"])),
        ("zz", 100, vec![]),
    ] {
        let got = tx.kv_list(i1.id, prefix, limit).await.must(b, "kv_list");
        ensure_eq!(b, got, want, "kv_list({prefix:?}, {limit})");
    }
    // Paging: the next page starts after the last key of the previous one.
    let mut seen = Vec::new();
    let page1 = tx.kv_list(i1.id, "a/", 3).await.must(b, "kv_list");
    seen.extend(page1.iter().cloned());
    let all = tx.kv_list(i1.id, "a/", 100).await.must(b, "kv_list");
    ensure_eq!(
        b,
        all[..3].to_vec(),
        seen,
        "a page is a prefix of the full listing"
    );
    let other = tx.kv_list(i2.id, "", 100).await.must(b, "kv_list");
    ensure_eq!(
        b,
        other,
        vec!["a/other".to_string()],
        "another install's keys only"
    );
}

/// `kv_usage_bytes` is the org's key bytes (UTF-8) plus value bytes, over every
/// install; `kv_delete_all` counts one install's keys and frees their bytes.
pub async fn kv_usage_bytes_and_delete_all(b: &Backend) {
    let o = b.org().await;
    let (i1, i2) = (install("@acme/one"), install("@acme/two"));
    let mut tx = b.write(&o).await;
    ensure_eq!(
        b,
        tx.kv_usage_bytes().await.must(b, "usage"),
        0,
        "no data, no bytes"
    );
    for i in [&i1, &i2] {
        tx.insert_install(i).await.must(b, "insert_install");
    }
    tx.kv_set(i1.id, "ü", b"12345").await.must(b, "kv_set"); // 2 + 5
    tx.kv_set(i1.id, "k", b"").await.must(b, "kv_set"); // 1 + 0
    tx.kv_set(i2.id, "🦀", &[0; 1000]).await.must(b, "kv_set"); // 4 + 1000
    b.commit(tx).await;
    let mut tx = b.write(&o).await;
    ensure_eq!(
        b,
        tx.kv_usage_bytes().await.must(b, "usage"),
        1012,
        "UTF-8 key bytes + value bytes"
    );
    tx.kv_set(i1.id, "ü", b"1").await.must(b, "kv_set");
    ensure_eq!(
        b,
        tx.kv_usage_bytes().await.must(b, "usage"),
        1008,
        "a replaced value counts once"
    );
    ensure_eq!(
        b,
        tx.kv_delete_all(i1.id).await.must(b, "kv_delete_all"),
        2,
        "kv_delete_all counts the install's keys"
    );
    ensure_eq!(
        b,
        tx.kv_delete_all(i1.id).await.must(b, "kv_delete_all"),
        0,
        "then there are none"
    );
    ensure_eq!(
        b,
        tx.kv_usage_bytes().await.must(b, "usage"),
        1004,
        "the other install's bytes remain"
    );
    b.commit(tx).await;
    let mut tx = b.read(&o).await;
    ensure!(
        b,
        tx.kv_list(i1.id, "", 10)
            .await
            .must(b, "kv_list")
            .is_empty(),
        "deleted keys are gone"
    );
    ensure_eq!(
        b,
        tx.kv_usage_bytes().await.must(b, "usage"),
        1004,
        "committed usage"
    );
}
