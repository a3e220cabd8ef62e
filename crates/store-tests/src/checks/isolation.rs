//! Tenant isolation at the store level: what one org writes is invisible to, and
//! untouchable by, another org's transactions, for every resource.

use tenantry_core::{InvocationId, OrgId, PrincipalKind, Role};
use tenantry_store::*;

use crate::fixtures::*;
use crate::{Backend, Must};

/// One org's full set of rows.
struct Written {
    user: UserRecord,
    agent: AgentRecord,
    key: ApiKeyRecord,
    install: InstallRecord,
    secret: SecretRecord,
    binding: BindingRecord,
    org_key: OrgKeyRecord,
    event: UsageEvent,
}

async fn write_everything(b: &Backend, o: &Org) -> Written {
    let user = user(o.owner, "owner", Role::Owner, at(0, 0));
    let agent = agent(o.owner, "bot");
    let key = api_key(PrincipalKind::User, *o.owner.as_uuid(), 1);
    let install = install("@acme/echo");
    let secret = secret(install.id);
    let binding = BindingRecord {
        agent_id: agent.id,
        install_id: install.id,
        created_at: at(0, 0),
    };
    let org_key = OrgKeyRecord {
        version: 1,
        wrapped: vec![9; 32],
        created_at: at(0, 0),
    };
    let event = event(install.id, at(1, 0));
    let mut tx = b.write(o).await;
    tx.insert_org_key(&org_key).await.must(b, "insert_org_key");
    tx.insert_user(&user).await.must(b, "insert_user");
    tx.insert_agent(&agent).await.must(b, "insert_agent");
    tx.insert_api_key(&key).await.must(b, "insert_api_key");
    tx.insert_install(&install).await.must(b, "insert_install");
    tx.upsert_secret(&secret).await.must(b, "upsert_secret");
    tx.insert_binding(&binding).await.must(b, "insert_binding");
    tx.kv_set(install.id, "k", b"value").await.must(b, "kv_set");
    tx.insert_usage(std::slice::from_ref(&event))
        .await
        .must(b, "insert_usage");
    tx.append_audit(&entry("install.create", &install.id.to_string(), at(1, 0)))
        .await
        .must(b, "append_audit");
    b.commit(tx).await;
    Written {
        user,
        agent,
        key,
        install,
        secret,
        binding,
        org_key,
        event,
    }
}

/// Everything an org can read, as one comparable text.
async fn snapshot(b: &Backend, o: &Org, w: &Written) -> String {
    let mut tx = b.read(o).await;
    format!(
        "{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}",
        tx.current_org_key().await.must(b, "current_org_key"),
        tx.list_users().await.must(b, "list_users"),
        tx.list_agents().await.must(b, "list_agents"),
        tx.list_api_keys().await.must(b, "list_api_keys"),
        tx.list_installs().await.must(b, "list_installs"),
        tx.list_secrets(w.install.id).await.must(b, "list_secrets"),
        tx.get_secret(w.install.id, "token")
            .await
            .must(b, "get_secret")
            .map(|s| s.ciphertext),
        tx.list_bindings().await.must(b, "list_bindings"),
        tx.kv_list(w.install.id, "", 100).await.must(b, "kv_list"),
        tx.kv_get(w.install.id, "k").await.must(b, "kv_get"),
        tx.kv_usage_bytes().await.must(b, "kv_usage_bytes"),
        b.all_usage(&mut tx).await,
        b.all_audit(&mut tx).await,
    )
}

/// Another org's transaction finds none of an org's rows, by id, by name, by list,
/// by cursor or by count.
pub async fn isolation_of_reads(b: &Backend) {
    let (a, other) = (b.org().await, b.org().await);
    let w = write_everything(b, &a).await;
    let mut tx = b.read(&other).await;
    ensure!(
        b,
        tx.current_org_key()
            .await
            .must(b, "current_org_key")
            .is_none(),
        "org key"
    );
    ensure!(
        b,
        tx.get_org_key(w.org_key.version)
            .await
            .must(b, "get_org_key")
            .is_none(),
        "org key by version"
    );
    ensure!(
        b,
        tx.get_user(w.user.id).await.must(b, "get_user").is_none(),
        "user by id"
    );
    ensure!(
        b,
        tx.list_users().await.must(b, "list_users").is_empty(),
        "users"
    );
    ensure!(
        b,
        tx.get_agent(w.agent.id)
            .await
            .must(b, "get_agent")
            .is_none(),
        "agent by id"
    );
    ensure!(
        b,
        tx.list_agents().await.must(b, "list_agents").is_empty(),
        "agents"
    );
    ensure!(
        b,
        tx.get_api_key(w.key.id)
            .await
            .must(b, "get_api_key")
            .is_none(),
        "API key by id"
    );
    ensure!(
        b,
        tx.list_api_keys().await.must(b, "list_api_keys").is_empty(),
        "API keys"
    );
    ensure!(
        b,
        tx.get_install(w.install.id)
            .await
            .must(b, "get_install")
            .is_none(),
        "install by id"
    );
    ensure!(
        b,
        tx.get_install_by_plugin(&w.install.plugin)
            .await
            .must(b, "get_install_by_plugin")
            .is_none(),
        "install by plugin"
    );
    ensure!(
        b,
        tx.list_installs().await.must(b, "list_installs").is_empty(),
        "installs"
    );
    ensure!(
        b,
        tx.get_secret(w.install.id, &w.secret.name)
            .await
            .must(b, "get_secret")
            .is_none(),
        "secret"
    );
    ensure!(
        b,
        tx.list_secrets(w.install.id)
            .await
            .must(b, "list_secrets")
            .is_empty(),
        "secrets"
    );
    ensure!(
        b,
        tx.list_bindings().await.must(b, "list_bindings").is_empty(),
        "bindings"
    );
    ensure!(
        b,
        !tx.is_bound(w.binding.agent_id, w.binding.install_id)
            .await
            .must(b, "is_bound"),
        "is_bound"
    );
    ensure!(
        b,
        tx.kv_get(w.install.id, "k")
            .await
            .must(b, "kv_get")
            .is_none(),
        "kv value"
    );
    ensure!(
        b,
        tx.kv_list(w.install.id, "", 100)
            .await
            .must(b, "kv_list")
            .is_empty(),
        "kv keys"
    );
    ensure_eq!(
        b,
        tx.kv_usage_bytes().await.must(b, "kv_usage_bytes"),
        0,
        "kv bytes"
    );
    ensure!(b, b.all_usage(&mut tx).await.is_empty(), "usage");
    ensure!(
        b,
        tx.list_usage(&UsageFilter {
            install_id: Some(w.install.id),
            ..Default::default()
        })
        .await
        .must(b, "list_usage")
        .is_empty(),
        "usage by the other org's install"
    );
    ensure_eq!(
        b,
        tx.count_usage(RunKind::Requested, at(-100, 0), at(100, 0))
            .await
            .must(b, "count_usage"),
        0,
        "usage count"
    );
    ensure!(b, b.all_audit(&mut tx).await.is_empty(), "audit");
    drop(tx);
    // The other org's own cursor over the first org's event reads nothing either.
    let mut tx = b.write(&other).await;
    tx.insert_usage(&[event(w.install.id, at(0, 0))])
        .await
        .must(b, "insert_usage");
    b.commit(tx).await;
    let mut tx = b.read(&other).await;
    let page = tx
        .list_usage(&UsageFilter {
            after: Some(w.event.id),
            ..Default::default()
        })
        .await
        .must(b, "list_usage");
    ensure!(
        b,
        page.is_empty(),
        "a cursor naming another org's event reads nothing, got {page:?}"
    );
}

/// Another org's writes naming an org's ids change nothing of it (updates and
/// deletes answer `false`/0, data for its install is refused), and the same ids and
/// names may be used by both orgs without conflict.
pub async fn isolation_of_writes(b: &Backend) {
    let (a, other) = (b.org().await, b.org().await);
    let w = write_everything(b, &a).await;
    let before = snapshot(b, &a, &w).await;
    let mut tx = b.write(&other).await;
    ensure!(
        b,
        !tx.set_user_role(w.user.id, Role::Member)
            .await
            .must(b, "set_user_role"),
        "set_user_role"
    );
    ensure!(
        b,
        !tx.revoke_api_key(w.key.id, at(5, 0))
            .await
            .must(b, "revoke_api_key"),
        "revoke_api_key"
    );
    tx.touch_api_key(w.key.id, at(5, 0))
        .await
        .must(b, "touch_api_key");
    ensure!(
        b,
        !tx.update_install(&InstallRecord {
            enabled: false,
            ..w.install.clone()
        })
        .await
        .must(b, "update_install"),
        "update_install"
    );
    ensure!(
        b,
        !tx.delete_secret(w.install.id, &w.secret.name)
            .await
            .must(b, "delete_secret"),
        "delete_secret"
    );
    ensure_eq!(
        b,
        tx.delete_secrets_of(w.install.id)
            .await
            .must(b, "delete_secrets_of"),
        0,
        "delete_secrets_of"
    );
    ensure!(
        b,
        !tx.delete_binding(w.binding.agent_id, w.binding.install_id)
            .await
            .must(b, "delete_binding"),
        "delete_binding"
    );
    ensure_eq!(
        b,
        tx.delete_bindings_of_install(w.install.id)
            .await
            .must(b, "delete_bindings_of_install"),
        0,
        "delete_bindings_of_install"
    );
    ensure!(
        b,
        !tx.kv_delete(w.install.id, "k").await.must(b, "kv_delete"),
        "kv_delete"
    );
    ensure_eq!(
        b,
        tx.kv_delete_all(w.install.id)
            .await
            .must(b, "kv_delete_all"),
        0,
        "kv_delete_all"
    );
    ensure!(
        b,
        !tx.delete_agent(w.agent.id).await.must(b, "delete_agent"),
        "delete_agent"
    );
    ensure!(
        b,
        !tx.delete_install(w.install.id)
            .await
            .must(b, "delete_install"),
        "delete_install"
    );
    b.commit(tx).await;
    for what in ["kv_set", "upsert_secret", "insert_binding"] {
        let mut tx = b.write(&other).await;
        let r = match what {
            "kv_set" => tx.kv_set(w.install.id, "k", b"overwritten").await,
            "upsert_secret" => {
                tx.upsert_secret(&SecretRecord {
                    ciphertext: vec![0],
                    ..w.secret.clone()
                })
                .await
            }
            _ => tx.insert_binding(&w.binding).await,
        };
        ensure!(
            b,
            r.is_err(),
            "{what} for another org's install is refused, got {r:?}"
        );
    }
    ensure_eq!(
        b,
        snapshot(b, &a, &w).await,
        before,
        "another org's writes changed nothing"
    );
    // The same ids and names in another org are no conflict.
    let copy = write_everything_with(b, &other, &w).await;
    ensure_eq!(
        b,
        snapshot(b, &a, &w).await,
        before,
        "the same ids in another org changed nothing"
    );
    ensure!(
        b,
        copy.contains("owner"),
        "the other org has its own rows with the same ids: {copy}"
    );
}

/// Writes `w`'s rows again (same ids, names, plugin, event id) in `o`.
async fn write_everything_with(b: &Backend, o: &Org, w: &Written) -> String {
    let mut tx = b.write(o).await;
    tx.insert_org_key(&w.org_key)
        .await
        .must(b, "insert_org_key with another org's version");
    tx.insert_user(&w.user)
        .await
        .must(b, "insert_user with another org's user id and name");
    tx.insert_agent(&w.agent)
        .await
        .must(b, "insert_agent with another org's agent id and name");
    tx.insert_api_key(&w.key)
        .await
        .must(b, "insert_api_key with another org's key id");
    tx.insert_install(&w.install)
        .await
        .must(b, "insert_install with another org's install id and plugin");
    tx.upsert_secret(&w.secret)
        .await
        .must(b, "upsert_secret with another org's install id");
    tx.insert_binding(&w.binding)
        .await
        .must(b, "insert_binding with another org's ids");
    tx.kv_set(w.install.id, "k", b"mine")
        .await
        .must(b, "kv_set");
    tx.insert_usage(std::slice::from_ref(&w.event))
        .await
        .must(b, "insert_usage with another org's event id");
    b.commit(tx).await;
    snapshot(b, o, w).await
}

/// Records appended for one org (outside transactions too) never reach another;
/// each org's audit sequence starts at 1.
pub async fn isolation_of_records(b: &Backend) {
    let (a, other) = (b.org().await, b.org().await);
    let install = tenantry_core::InstallId::new();
    let shared = InvocationId::new();
    let mut e = event(install, at(0, 0));
    e.id = shared;
    b.tenants
        .append_records(
            &a.scope,
            std::slice::from_ref(&e),
            &[entry("invoke", "a", at(0, 0))],
        )
        .await
        .must(b, "append_records");
    b.tenants
        .append_records(
            &other.scope,
            std::slice::from_ref(&e),
            &[entry("invoke", "o", at(0, 0))],
        )
        .await
        .must(b, "append_records with the same event id");
    b.tenants
        .append_records(&other.scope, &[event(install, at(1, 0))], &[])
        .await
        .must(b, "append_records");
    for (org, want_events, want_target) in [(&a, 1, "a"), (&other, 2, "o")] {
        let mut tx = b.read(org).await;
        let events = b.all_usage(&mut tx).await;
        ensure_eq!(
            b,
            events.len(),
            want_events,
            "each org lists its own events"
        );
        let n = tx
            .count_usage(RunKind::Requested, at(-1, 0), at(10, 0))
            .await
            .must(b, "count_usage");
        ensure_eq!(b, n, want_events as u64, "each org counts its own events");
        let audit = b.all_audit(&mut tx).await;
        ensure_eq!(
            b,
            seq_targets(&audit),
            vec![(1, want_target)],
            "each org's audit starts at 1 and holds its own entries"
        );
    }
}

/// A key is a credential only in its own org: another org's lookup, a copy of its
/// id and hash in another org, and another org's `touch_key` do not reach it.
pub async fn isolation_of_credentials(b: &Backend) {
    let (a, other) = (b.org().await, b.org().await);
    let w = write_everything(b, &a).await;
    let got = b.credential(other.id, w.key.id, &w.key.hash).await;
    ensure!(
        b,
        got.is_none(),
        "another org's credential lookup finds nothing, got {got:?}"
    );
    b.tenants
        .touch_key(&other.scope, w.key.id, at(500, 0))
        .await
        .must(b, "touch_key from another org");
    let mut tx = b.write(&other).await;
    tx.insert_user(&user(other.owner, "other owner", Role::Member, at(0, 0)))
        .await
        .must(b, "insert_user");
    tx.insert_api_key(&ApiKeyRecord {
        principal_id: *other.owner.as_uuid(),
        ..w.key.clone()
    })
    .await
    .must(b, "insert_api_key");
    b.commit(tx).await;
    let mine = b.credential(a.id, w.key.id, &w.key.hash).await;
    ensure_debug_eq!(
        b,
        mine.map(|(c, last)| (c.principal, last)),
        Some((
            tenantry_core::scope::Principal::User {
                org_id: a.id,
                id: w.user.id,
                role: Role::Owner
            },
            None::<time::OffsetDateTime>
        )),
        "the org's own credential is unchanged"
    );
    let theirs = b.credential(other.id, w.key.id, &w.key.hash).await;
    ensure_debug_eq!(
        b,
        theirs.map(|(c, _)| c.principal),
        Some(tenantry_core::scope::Principal::User {
            org_id: other.id,
            id: other.owner,
            role: Role::Member
        }),
        "the copy is the other org's own credential"
    );
}

/// Deleting an org: `drop_tenant` erases every row it owns (records appended
/// outside a transaction too) and may run again; `delete_org` removes its directory
/// row and its key index entries, once. Another org keeps everything.
pub async fn deleting_an_org_erases_it_and_only_it(b: &Backend) {
    let (a, other, empty) = (b.org().await, b.org().await, b.org().await);
    let mut written = Vec::new();
    let mut hashes = Vec::new();
    for (i, o) in [&a, &other].into_iter().enumerate() {
        let w = write_everything(b, o).await;
        // Both orgs' key rows share a hash (one fixture); the index needs two.
        let hash = [0xA0 + i as u8; 32];
        hashes.push(hash);
        b.control
            .insert_org(&OrgRecord {
                id: o.id,
                name: format!("org {}", o.id),
                tier: "free".into(),
                overrides: Default::default(),
                created_at: at(0, 0),
                suspended_at: None,
            })
            .await
            .must(b, "insert_org");
        b.control
            .set_org_suspended(o.id, Some(at(5, 0)))
            .await
            .must(b, "set_org_suspended");
        b.control
            .insert_key_index(&KeyIndexEntry {
                hash,
                key_id: w.key.id,
                org_id: Some(o.id),
            })
            .await
            .must(b, "insert_key_index");
        b.tenants
            .append_records(
                &o.scope,
                &[event(w.install.id, at(2, 0))],
                &[entry("invoke", "late", at(2, 0))],
            )
            .await
            .must(b, "append_records");
        written.push(w);
    }
    let (wa, wo) = (&written[0], &written[1]);
    let before = snapshot(b, &other, wo).await;

    b.tenants.drop_tenant(a.id).await.must(b, "drop_tenant");
    b.tenants
        .drop_tenant(a.id)
        .await
        .must(b, "drop_tenant again");
    let read = match b.tenants.begin(&a.scope, false).await {
        Ok(mut tx) => tx.list_users().await.map(|_| ()),
        Err(e) => Err(e),
    };
    match read {
        Err(StoreError::TenantNotFound) => {}
        Err(e) => panic!("{}", b.at(format_args!("reading a dropped org: {e:?}"))),
        Ok(()) => {
            ensure_eq!(
                b,
                snapshot(b, &a, wa).await,
                snapshot(b, &empty, wa).await,
                "a dropped org reads as an empty one"
            );
        }
    }
    ensure!(
        b,
        b.credential(a.id, wa.key.id, &wa.key.hash).await.is_none(),
        "a dropped org's key has no credential"
    );

    ensure!(
        b,
        b.control
            .delete_org(a.id, at(6, 0))
            .await
            .must(b, "delete_org"),
        "delete_org finds the org"
    );
    ensure!(
        b,
        !b.control
            .delete_org(a.id, at(7, 0))
            .await
            .must(b, "delete_org again"),
        "a deleted org is not found again"
    );
    ensure!(
        b,
        b.control
            .get_org(a.id, Seen::NOTHING)
            .await
            .must(b, "get_org")
            .is_none(),
        "a deleted org has no record"
    );
    let listed: Vec<OrgId> = b
        .control
        .list_orgs()
        .await
        .must(b, "list_orgs")
        .into_iter()
        .map(|o| o.id)
        .collect();
    ensure_eq!(b, listed, vec![other.id], "only the other org is listed");
    ensure!(
        b,
        b.control
            .lookup_key(&hashes[0])
            .await
            .must(b, "lookup_key")
            .is_none(),
        "a deleted org's key leaves the index"
    );
    ensure!(
        b,
        b.control
            .lookup_key(&hashes[1])
            .await
            .must(b, "lookup_key")
            .is_some(),
        "the other org's key stays in the index"
    );
    ensure_eq!(
        b,
        snapshot(b, &other, wo).await,
        before,
        "the other org keeps everything"
    );
}
