//! What the invoke path keeps in memory for speed must never outlive the write that
//! changes it (ARCHITECTURE.md, "Caches"). Each test first makes the server read the
//! row on the fast path (so it is kept), changes it through the API, and expects the
//! very next request to see the change. Every test runs on both stores; the
//! multi-node cases are in `multi_node.rs`.

mod common;

use common::*;
use serde_json::{Value, json};

/// An org with the echo plugin installed, the org's agent bound to it.
async fn org_with_echo(s: &Server, name: &str) -> (Org, String) {
    let (o, install) = org_with_install(s, name, echo_install()).await;
    s.bind(&o, &install).await;
    (o, install)
}

fn body() -> Value {
    json!({"action": "echo", "input": {"n": 1}})
}

/// Invokes twice (the second from kept rows) and expects success.
async fn warm(s: &Server, key: &str, install: &str) {
    for _ in 0..2 {
        s.ok("POST", &invoke_path(install), Some(key), Some(body()), 200)
            .await;
    }
}

/// Invokes once as `key` and expects the error answer `status` with `code`.
async fn refused(s: &Server, key: &str, install: &str, status: u16, code: &str) {
    s.refused(
        "POST",
        &invoke_path(install),
        Some(key),
        Some(body()),
        (status, code),
    )
    .await;
}

async fn new_key(s: &Server, owner_key: &str, owner: Value) -> (String, String) {
    s.create_key(owner_key, json!({"owner": owner, "name": "k"}))
        .await
}

macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test]
                async fn $name() {
                    let s = super::Server::start();
                    super::publish_examples(&s).await;
                    super::$name(&s).await;
                }
            )*
        }
        mod pooled {
            $(
                #[tokio::test]
                async fn $name() {
                    let s = super::Server::start_pooled().await;
                    super::publish_examples(&s).await;
                    super::$name(&s).await;
                }
            )*
        }
    };
}

on_both_stores!(
    a_revoked_key_is_refused_on_its_next_request,
    an_expired_key_is_refused_on_its_next_request,
    a_lowered_role_applies_at_the_next_request,
    a_deleted_agents_key_stops_at_the_next_request,
    a_disabled_install_stops_at_once,
    an_uninstalled_install_stops_at_once,
    an_unbound_agent_stops_at_once,
    a_tier_change_applies_at_the_next_request,
    colliding_ids_across_orgs_never_hit_another_orgs_kept_rows,
);

async fn a_revoked_key_is_refused_on_its_next_request(s: &Server) {
    let (o, install) = org_with_echo(s, "revoke").await;
    let (id, key) = new_key(s, &o.owner, json!({"kind": "self"})).await;
    warm(s, &key, &install).await;
    s.delete(&format!("/v1/keys/{id}"), &o.owner, 200).await;
    refused(s, &key, &install, 401, "UNAUTHENTICATED").await;
}

async fn an_expired_key_is_refused_on_its_next_request(s: &Server) {
    let (o, install) = org_with_echo(s, "expire").await;
    let expires = time::OffsetDateTime::now_utc() + time::Duration::seconds(2);
    let (_, key) = s
        .create_key(
            &o.owner,
            json!({"owner": {"kind": "self"}, "name": "short", "expires_at": rfc3339(expires)}),
        )
        .await;
    warm(s, &key, &install).await;
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    refused(s, &key, &install, 401, "UNAUTHENTICATED").await;
}

async fn a_lowered_role_applies_at_the_next_request(s: &Server) {
    let (o, install) = org_with_echo(s, "role").await;
    let user = json!({"name": "demoted", "role": "member"});
    let uid = id_of(&s.create("/v1/users", &o.owner, user).await);
    let (_, key) = new_key(s, &o.owner, json!({"kind": "user", "id": uid})).await;
    warm(s, &key, &install).await;
    s.patch(
        &format!("/v1/users/{uid}"),
        &o.owner,
        json!({"role": "viewer"}),
    )
    .await;
    refused(s, &key, &install, 403, "PERMISSION_DENIED").await;
}

async fn a_deleted_agents_key_stops_at_the_next_request(s: &Server) {
    let (o, install) = org_with_echo(s, "agent").await;
    warm(s, &o.agent, &install).await;
    s.delete(&format!("/v1/agents/{}", o.agent_id), &o.owner, 204)
        .await;
    refused(s, &o.agent, &install, 401, "UNAUTHENTICATED").await;
}

async fn a_disabled_install_stops_at_once(s: &Server) {
    let (o, install) = org_with_echo(s, "disable").await;
    warm(s, &o.agent, &install).await;
    s.patch(
        &format!("/v1/installs/{install}"),
        &o.admin,
        json!({"enabled": false}),
    )
    .await;
    refused(s, &o.agent, &install, 409, "INSTALL_DISABLED").await;
}

async fn an_uninstalled_install_stops_at_once(s: &Server) {
    let (o, install) = org_with_echo(s, "uninstall").await;
    warm(s, &o.member, &install).await;
    s.delete(&format!("/v1/installs/{install}"), &o.admin, 204)
        .await;
    refused(s, &o.member, &install, 404, "NOT_FOUND").await;
}

async fn an_unbound_agent_stops_at_once(s: &Server) {
    let (o, install) = org_with_echo(s, "unbind").await;
    warm(s, &o.agent, &install).await;
    let binding = format!("/v1/agents/{}/installs/{install}", o.agent_id);
    s.delete(&binding, &o.admin, 204).await;
    refused(s, &o.agent, &install, 403, "PERMISSION_DENIED").await;
}

async fn a_tier_change_applies_at_the_next_request(s: &Server) {
    let (o, install) = org_with_echo(s, "tier").await;
    warm(s, &o.member, &install).await;
    // An override of one invocation per minute: refused within the next two.
    s.set_limits(&o.id, json!({"invocations_per_minute": 1}))
        .await;
    let path = invoke_path(&install);
    let mut codes = Vec::new();
    for _ in 0..3 {
        let (st, _) = s.call("POST", &path, Some(&o.member), Some(body())).await;
        codes.push(st);
    }
    assert!(
        codes.contains(&429),
        "a limit of 1/min must refuse within 3 requests: {codes:?}"
    );
    let limits = s.get("/v1/limits", &o.member).await;
    assert_eq!(
        limits["effective"]["invocations_per_minute"],
        json!(1),
        "{limits}"
    );
}

async fn colliding_ids_across_orgs_never_hit_another_orgs_kept_rows(s: &Server) {
    let (a, a_install) = org_with_echo(s, "colla").await;
    let (b, b_install) = org_with_echo(s, "collb").await;
    // Org A's rows are kept: its key, its install, its binding.
    warm(s, &a.agent, &a_install).await;
    warm(s, &b.agent, &b_install).await;
    // B's keys ask for A's install (the id A's kept rows hold): not found, for every
    // principal of B, and nothing of A's comes back.
    for (role, key) in b.keys() {
        let (st, v) = s
            .call("POST", &invoke_path(&a_install), Some(key), Some(body()))
            .await;
        assert!(
            st == 404 || st == 403,
            "{role} of B reached A's install: {st} {v}"
        );
        assert!(!v.to_string().contains(&a.id), "{role}: {v}");
    }
    // A key of A with its secret changed (same key id, wrong hash) is nobody, even
    // though A's credential for that id is kept.
    refused(s, &forge(&a.agent), &a_install, 401, "UNAUTHENTICATED").await;
    // And A still works.
    warm(s, &a.agent, &a_install).await;
}

/// The same key with its last character changed.
fn forge(key: &str) -> String {
    let mut k = key.to_string();
    let last = k.pop().expect("non-empty key");
    k.push(if last == 'A' { 'B' } else { 'A' });
    k
}
