//! Transactions: rollback (rows and kept copies), a failed write, read-only
//! transactions, concurrent writers.

use std::sync::Arc;

use tenantry_core::{InstallId, PrincipalKind, Role, UserId};
use tenantry_store::*;

use crate::fixtures::*;
use crate::{Backend, Must};

/// A write transaction dropped without commit changes nothing, for every kind of
/// write.
pub async fn rollback_discards_writes(b: &Backend) {
    let o = b.org().await;
    let u = user(o.owner, "owner", Role::Owner, at(0, 0));
    let i = install("@acme/echo");
    let k = api_key(PrincipalKind::User, *o.owner.as_uuid(), 1);
    let s = secret(i.id);
    let mut tx = b.write(&o).await;
    tx.insert_user(&u).await.must(b, "insert_user");
    tx.insert_install(&i).await.must(b, "insert_install");
    tx.insert_api_key(&k).await.must(b, "insert_api_key");
    tx.upsert_secret(&s).await.must(b, "upsert_secret");
    tx.kv_set(i.id, "k", b"v").await.must(b, "kv_set");
    tx.append_audit(&entry("setup", "x", at(0, 0)))
        .await
        .must(b, "append_audit");
    b.commit(tx).await;

    let mut tx = b.write(&o).await;
    tx.insert_user(&user(UserId::new(), "second", Role::Member, at(1, 0)))
        .await
        .must(b, "insert_user");
    tx.set_user_role(o.owner, Role::Member)
        .await
        .must(b, "set_user_role");
    tx.update_install(&InstallRecord {
        enabled: false,
        version: "9.0.0".into(),
        ..i.clone()
    })
    .await
    .must(b, "update_install");
    tx.insert_install(&install("@acme/other"))
        .await
        .must(b, "insert_install");
    tx.revoke_api_key(k.id, at(5, 0))
        .await
        .must(b, "revoke_api_key");
    tx.touch_api_key(k.id, at(5, 0))
        .await
        .must(b, "touch_api_key");
    tx.delete_secret(i.id, "token")
        .await
        .must(b, "delete_secret");
    tx.kv_set(i.id, "k", b"changed").await.must(b, "kv_set");
    tx.kv_set(i.id, "new", b"v").await.must(b, "kv_set");
    tx.insert_usage(&[event(i.id, at(1, 0))])
        .await
        .must(b, "insert_usage");
    tx.append_audit(&entry("dropped", "x", at(1, 0)))
        .await
        .must(b, "append_audit");
    tx.insert_org_key(&OrgKeyRecord {
        version: 1,
        wrapped: vec![1],
        created_at: at(1, 0),
    })
    .await
    .must(b, "insert_org_key");
    drop(tx);

    let mut tx = b.read(&o).await;
    ensure_eq!(
        b,
        tx.list_users().await.must(b, "list_users"),
        vec![u],
        "users unchanged"
    );
    ensure_eq!(
        b,
        tx.list_installs().await.must(b, "list_installs"),
        vec![i.clone()],
        "installs unchanged"
    );
    ensure_eq!(
        b,
        tx.list_api_keys().await.must(b, "list_api_keys"),
        vec![k],
        "keys unchanged"
    );
    ensure!(
        b,
        tx.get_secret(i.id, "token").await.must(b, "get_secret") == Some(s),
        "secret unchanged"
    );
    ensure_eq!(
        b,
        tx.kv_list(i.id, "", 10).await.must(b, "kv_list"),
        vec!["k".to_string()],
        "kv keys unchanged"
    );
    ensure_eq!(
        b,
        tx.kv_get(i.id, "k").await.must(b, "kv_get"),
        Some(b"v".to_vec()),
        "kv value unchanged"
    );
    ensure!(b, b.all_usage(&mut tx).await.is_empty(), "no usage");
    let audit = b.all_audit(&mut tx).await;
    ensure_eq!(
        b,
        audit.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
        vec!["setup"],
        "audit unchanged"
    );
    ensure!(
        b,
        tx.current_org_key()
            .await
            .must(b, "current_org_key")
            .is_none(),
        "no org key"
    );
    drop(tx);
    // The dropped transaction's audit sequence number is not used up either.
    let mut tx = b.write(&o).await;
    tx.append_audit(&entry("next", "x", at(2, 0)))
        .await
        .must(b, "append_audit");
    b.commit(tx).await;
    let mut tx = b.read(&o).await;
    let audit = b.all_audit(&mut tx).await;
    ensure_eq!(
        b,
        audit.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![2, 1],
        "sequence numbers stay dense"
    );
}

/// Rows a backend may keep in memory (credentials, installs, bindings) are exact
/// around a rolled-back write: read, change in a transaction (which sees its own
/// change), drop it, read again: the old values; a committed change shows at once.
pub async fn rollback_leaves_kept_rows_exact(b: &Backend) {
    let o = b.org().await;
    let a = agent(o.owner, "bot");
    let i = install("@acme/echo");
    let k = api_key(PrincipalKind::Agent, *a.id.as_uuid(), 1);
    let mut tx = b.write(&o).await;
    tx.insert_user(&user(o.owner, "owner", Role::Owner, at(0, 0)))
        .await
        .must(b, "insert_user");
    tx.insert_agent(&a).await.must(b, "insert_agent");
    tx.insert_install(&i).await.must(b, "insert_install");
    tx.insert_binding(&BindingRecord {
        agent_id: a.id,
        install_id: i.id,
        created_at: at(0, 0),
    })
    .await
    .must(b, "insert_binding");
    tx.insert_api_key(&k).await.must(b, "insert_api_key");
    b.commit(tx).await;

    let (org, key, inst, ag) = (&o, &k, &i, &a);
    let observe = move |what: &'static str| async move {
        let cred = b.credential(org.id, key.id, &key.hash).await;
        let mut tx = b.read(org).await;
        let install = tx.get_install(inst.id).await.must(b, "get_install");
        let bound = tx.is_bound(ag.id, inst.id).await.must(b, "is_bound");
        let cred = cred.map(|(c, _)| (c.revoked_at, c.principal));
        let _ = what;
        (install, bound, cred)
    };
    let before = observe("before").await;
    ensure!(
        b,
        before.0.as_ref() == Some(&i) && before.1 && before.2.is_some(),
        "setup reads back: {before:?}"
    );
    // Twice, so a backend that keeps what it read has kept it.
    ensure_debug_eq!(
        b,
        observe("again").await,
        before,
        "a second read is the same"
    );

    let mut tx = b.write(&o).await;
    let disabled = InstallRecord {
        enabled: false,
        ..i.clone()
    };
    tx.update_install(&disabled).await.must(b, "update_install");
    tx.delete_binding(a.id, i.id)
        .await
        .must(b, "delete_binding");
    tx.revoke_api_key(k.id, at(9, 0))
        .await
        .must(b, "revoke_api_key");
    tx.set_user_role(o.owner, Role::Member)
        .await
        .must(b, "set_user_role");
    tx.delete_agent(a.id).await.must(b, "delete_agent");
    let own = tx
        .get_install(i.id)
        .await
        .must(b, "get_install in the writing transaction");
    ensure_eq!(
        b,
        own.as_ref(),
        Some(&disabled),
        "a transaction reads its own update"
    );
    let own = tx
        .is_bound(a.id, i.id)
        .await
        .must(b, "is_bound in the writing transaction");
    ensure!(b, !own, "a transaction reads its own unbinding");
    drop(tx);
    ensure_debug_eq!(
        b,
        observe("after rollback").await,
        before,
        "after a rollback every kept row reads as before"
    );

    let mut tx = b.write(&o).await;
    tx.update_install(&disabled).await.must(b, "update_install");
    tx.delete_binding(a.id, i.id)
        .await
        .must(b, "delete_binding");
    tx.revoke_api_key(k.id, at(9, 0))
        .await
        .must(b, "revoke_api_key");
    b.commit(tx).await;
    let after = observe("after commit").await;
    ensure_eq!(
        b,
        after.0.as_ref(),
        Some(&disabled),
        "a committed update shows at once"
    );
    ensure!(b, !after.1, "a committed unbinding shows at once");
    ensure_eq!(
        b,
        after.2.map(|c| c.0),
        Some(Some(at(9, 0))),
        "a committed revocation shows at once"
    );
}

/// A write transaction in which a write failed cannot commit: the commit reports an
/// error and nothing of the transaction is kept.
pub async fn failed_write_fails_the_commit(b: &Backend) {
    let o = b.org().await;
    let u = user(o.owner, "owner", Role::Owner, at(0, 0));
    let mut tx = b.write(&o).await;
    tx.insert_user(&u).await.must(b, "insert_user");
    b.commit(tx).await;
    let mut tx = b.write(&o).await;
    tx.insert_user(&user(UserId::new(), "second", Role::Member, at(1, 0)))
        .await
        .must(b, "insert_user");
    let r = tx.insert_user(&u).await;
    ensure!(
        b,
        matches!(r, Err(StoreError::Conflict(_))),
        "a duplicate is Conflict, got {r:?}"
    );
    let r = tx.commit().await;
    ensure!(
        b,
        r.is_err(),
        "committing after a failed write is an error, got {r:?}"
    );
    let mut tx = b.read(&o).await;
    ensure_eq!(
        b,
        tx.list_users().await.must(b, "list_users"),
        vec![u],
        "nothing of the failed transaction is kept"
    );
}

/// A read transaction refuses every kind of write, and the refused write changes
/// nothing.
pub async fn read_transactions_refuse_writes(b: &Backend) {
    let o = b.org().await;
    let i = install("@acme/echo");
    let mut tx = b.write(&o).await;
    tx.insert_install(&i).await.must(b, "insert_install");
    b.commit(tx).await;
    macro_rules! refused {
        ($what:literal, |$tx:ident| $call:expr) => {{
            let mut $tx = b.read(&o).await;
            // A read first, so the transaction has begun.
            $tx.get_install(i.id).await.must(b, "get_install");
            let r = $call.await;
            ensure!(
                b,
                r.is_err(),
                "{} in a read transaction is refused, got {:?}",
                $what,
                r
            );
            let _ = $tx.commit().await;
        }};
    }
    refused!("insert_user", |tx| tx.insert_user(&user(
        o.owner,
        "x",
        Role::Owner,
        at(0, 0)
    )));
    refused!("update_install", |tx| tx.update_install(&InstallRecord {
        enabled: false,
        ..i.clone()
    }));
    refused!("delete_install", |tx| tx.delete_install(i.id));
    refused!("kv_set", |tx| tx.kv_set(i.id, "k", b"v"));
    refused!("insert_usage", |tx| tx
        .insert_usage(&[event(i.id, at(0, 0))]));
    refused!("append_audit", |tx| tx.append_audit(&entry(
        "x",
        "y",
        at(0, 0)
    )));
    let mut tx = b.read(&o).await;
    ensure_eq!(
        b,
        tx.list_installs().await.must(b, "list_installs"),
        vec![i.clone()],
        "installs unchanged"
    );
    ensure!(
        b,
        tx.list_users().await.must(b, "list_users").is_empty(),
        "no user written"
    );
    ensure!(
        b,
        tx.kv_get(i.id, "k").await.must(b, "kv_get").is_none(),
        "no kv written"
    );
    ensure!(b, b.all_usage(&mut tx).await.is_empty(), "no usage written");
    ensure!(b, b.all_audit(&mut tx).await.is_empty(), "no audit written");
}

const WRITERS: usize = 16;

/// 16 concurrent write transactions on one org: each sets its own key, and all
/// increment one counter read-modify-write (the write lock serialises them): no
/// write is lost, audit sequence numbers are 1..=16.
pub async fn concurrent_kv_writes_all_land(b: &Backend) {
    let o = b.org().await;
    let i = install("@acme/echo");
    let mut tx = b.write(&o).await;
    tx.insert_install(&i).await.must(b, "insert_install");
    tx.kv_set(i.id, "counter", b"0").await.must(b, "kv_set");
    b.commit(tx).await;
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..WRITERS {
        let tenants = Arc::clone(&b.tenants);
        let scope = o.scope.clone();
        let install = i.id;
        tasks.spawn(async move {
            let mut tx = tenants.begin(&scope, true).await?;
            let current = tx.kv_get(install, "counter").await?.unwrap_or_default();
            let value: u64 = String::from_utf8_lossy(&current)
                .parse()
                .unwrap_or(u64::MAX);
            tokio::task::yield_now().await;
            tx.kv_set(install, "counter", (value + 1).to_string().as_bytes())
                .await?;
            tx.kv_set(install, &format!("key/{n:02}"), &[n as u8])
                .await?;
            tx.insert_usage(&[event(install, at(n as i64, 0))]).await?;
            tx.append_audit(&entry("kv", &n.to_string(), at(n as i64, 0)))
                .await?;
            tx.commit().await
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap_or_else(|e| panic!("{}", b.at(format_args!("writer task: {e}"))))
            .must(b, "a concurrent write transaction");
    }
    let mut tx = b.read(&o).await;
    let counter = tx.kv_get(i.id, "counter").await.must(b, "kv_get");
    ensure_eq!(
        b,
        counter,
        Some(WRITERS.to_string().into_bytes()),
        "every read-modify-write landed"
    );
    let keys = tx.kv_list(i.id, "key/", 100).await.must(b, "kv_list");
    ensure_eq!(b, keys.len(), WRITERS, "every key landed");
    let events = b.all_usage(&mut tx).await;
    ensure_eq!(b, events.len(), WRITERS, "every event landed");
    let mut seqs: Vec<u64> = b.all_audit(&mut tx).await.iter().map(|e| e.seq).collect();
    seqs.sort_unstable();
    ensure_eq!(
        b,
        seqs,
        (1..=WRITERS as u64).collect::<Vec<_>>(),
        "audit sequence numbers are dense and unique"
    );
}

/// 16 concurrent `append_records` and `touch_key` calls on one org, alongside write
/// transactions: every record lands once, and the latest key use wins.
pub async fn concurrent_records_all_land(b: &Backend) {
    let o = b.org().await;
    let k = api_key(PrincipalKind::User, *o.owner.as_uuid(), 1);
    let mut tx = b.write(&o).await;
    tx.insert_user(&user(o.owner, "owner", Role::Owner, at(0, 0)))
        .await
        .must(b, "insert_user");
    tx.insert_api_key(&k).await.must(b, "insert_api_key");
    b.commit(tx).await;
    let install = InstallId::new();
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..WRITERS {
        let tenants = Arc::clone(&b.tenants);
        let scope = o.scope.clone();
        let key = k.id;
        tasks.spawn(async move {
            let usage: Vec<UsageEvent> = (0..10).map(|m| event(install, at(n as i64, m))).collect();
            tenants
                .append_records(
                    &scope,
                    &usage,
                    &[entry("invoke", &n.to_string(), at(n as i64, 0))],
                )
                .await?;
            tenants
                .touch_key(&scope, key, at(1000 + n as i64, 1))
                .await?;
            if n % 4 == 0 {
                let mut tx = tenants.begin(&scope, true).await?;
                tx.append_audit(&entry("tx", &n.to_string(), at(n as i64, 0)))
                    .await?;
                tx.commit().await?;
            }
            Ok::<_, StoreError>(())
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap_or_else(|e| panic!("{}", b.at(format_args!("writer task: {e}"))))
            .must(b, "concurrent appends");
    }
    let mut tx = b.read(&o).await;
    let events = b.all_usage(&mut tx).await;
    ensure_eq!(b, events.len(), WRITERS * 10, "every appended event landed");
    let mut unique: Vec<_> = events.iter().map(|e| e.id).collect();
    unique.sort();
    unique.dedup();
    ensure_eq!(b, unique.len(), WRITERS * 10, "each event once");
    let n = tx
        .count_usage(RunKind::Requested, at(0, 0), at(100, 0))
        .await
        .must(b, "count_usage");
    ensure_eq!(b, n, (WRITERS * 10) as u64, "every appended event counted");
    let mut seqs: Vec<u64> = b.all_audit(&mut tx).await.iter().map(|e| e.seq).collect();
    seqs.sort_unstable();
    let total = (WRITERS + WRITERS / 4) as u64;
    ensure_eq!(
        b,
        seqs,
        (1..=total).collect::<Vec<_>>(),
        "audit sequence numbers are dense and unique"
    );
    let got = tx.get_api_key(k.id).await.must(b, "get_api_key");
    ensure_eq!(
        b,
        got.and_then(|k| k.last_used_at),
        Some(at(1000 + WRITERS as i64 - 1, 1)),
        "the latest key use wins"
    );
}
