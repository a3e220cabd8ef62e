//! The cross-tenant probe, generated from the route table.
//!
//! Org A is fully populated (install with config and a secret, agent, binding,
//! audit). Every route and method in `/openapi.json` is called by every principal of
//! org B (owner, admin, member, viewer, agent) with org A's ids substituted into the
//! path. Every answer must be the one the route's class allows, nothing of A's may
//! appear in any body, and A's data must be unchanged afterwards. A route that is
//! not classified below fails the test, so new routes cannot skip the probe.

mod common;

use common::*;
use serde_json::{Value, json};

/// How a route relates to tenants.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Class {
    /// Public, no tenant data.
    Public,
    /// Operator-only: tenant principals get 403.
    Operator,
    /// Global registry data any principal may read or write through its own org.
    Registry,
    /// Org-scoped with a resource id in the path: another org's id answers exactly
    /// like a random id that exists nowhere (same status, code and message).
    TenantById,
    /// Org-scoped without an id: acts on the caller's own org only.
    TenantOwn,
}

fn classify(method: &str, path: &str) -> Option<Class> {
    use Class::*;
    Some(match (method, path) {
        ("get", "/healthz" | "/readyz") => Public,
        ("post" | "get", "/v1/orgs") => Operator,
        ("patch" | "delete", "/v1/orgs/{org_id}") => Operator,
        ("post" | "get", "/v1/orgs/{org_id}/users") => Operator,
        ("post", "/v1/orgs/{org_id}/keys") => Operator,
        ("put", "/v1/orgs/{org_id}/limits") => Operator,
        ("get", "/v1/orgs/{org_id}/audit/verify") => Operator,
        ("get", "/v1/operator/audit" | "/v1/operator/audit/verify") => Operator,
        ("post", "/v1/operator/audit/checkpoint" | "/v1/orgs/{org_id}/audit/checkpoint") => {
            Operator
        }
        ("post", "/v1/audit/checkpoint") => TenantOwn,
        ("post", "/v1/orgs/{org_id}/suspend" | "/v1/orgs/{org_id}/resume") => Operator,
        ("post" | "get", "/v1/orgs/{org_id}/breakglass") => Operator,
        (
            "post",
            "/v1/orgs/{org_id}/breakglass/{grant_id}/close"
            | "/v1/orgs/{org_id}/breakglass/{grant_id}/approve",
        ) => Operator,
        ("get", "/v1/breakglass") => TenantOwn,
        ("delete", "/v1/breakglass/{grant_id}") => TenantById,
        ("post", "/v1/publishers") => Operator,
        ("post", "/v1/publishers/{publisher}/keys") => Operator,
        ("delete", "/v1/publisher-keys/{key_id}") => Operator,
        ("get", "/v1/publishers") => Registry,
        ("get" | "post", "/v1/plugins") => Registry,
        ("get", "/v1/plugins/{scope}/{name}") => Registry,
        ("get", "/v1/plugins/{scope}/{name}/reviews") => Registry,
        ("put", "/v1/plugins/{scope}/{name}/review") => Registry,
        ("get", "/v1/org" | "/v1/org/export") => TenantOwn,
        ("post", "/v1/org/key/rotate") => TenantOwn,
        ("post", "/v1/operator/master-key/rotate") => Operator,
        ("post" | "get", "/v1/operator/keys") => Operator,
        ("delete", "/v1/operator/keys/{key_id}") => Operator,
        ("get", "/v1/limits") => TenantOwn,
        ("get" | "post", "/v1/users") => TenantOwn,
        ("patch", "/v1/users/{user_id}") => TenantById,
        ("get" | "post", "/v1/agents") => TenantOwn,
        ("delete", "/v1/agents/{agent_id}") => TenantById,
        ("get" | "post", "/v1/keys") => TenantOwn,
        ("delete", "/v1/keys/{key_id}") => TenantById,
        ("get" | "post", "/v1/installs") => TenantOwn,
        ("get" | "patch" | "delete", "/v1/installs/{install_id}") => TenantById,
        ("post", "/v1/installs/{install_id}/version") => TenantById,
        ("get", "/v1/installs/{install_id}/secrets") => TenantById,
        ("put" | "delete", "/v1/installs/{install_id}/secrets/{name}") => TenantById,
        ("get", "/v1/bindings") => TenantOwn,
        ("put" | "delete", "/v1/agents/{agent_id}/installs/{install_id}") => TenantById,
        ("get", "/v1/audit" | "/v1/audit/verify") => TenantOwn,
        ("get", "/v1/usage") => TenantOwn,
        ("get", "/v1/usage/summary") => TenantOwn,
        ("get", "/v1/usage/export") => TenantOwn,
        ("post", "/v1/installs/{install_id}/invoke") => TenantById,
        ("post", "/v1/executions") => TenantOwn,
        ("get", "/v1/executions/{execution_id}") => TenantById,
        _ => return None,
    })
}

/// A well-formed id (UUIDv7 layout) that exists in no org.
fn random_id() -> String {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).expect("random bytes");
    b[6] = (b[6] & 0x0f) | 0x70;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// A plausible body for each write route, aimed at A's resources where it has ids.
fn body(method: &str, path: &str, a: &Snapshot) -> Option<Value> {
    Some(match (method, path) {
        ("post", "/v1/orgs") => json!({"name": "probe-org"}),
        ("post", "/v1/operator/keys") => json!({"name": "probe"}),
        ("patch", "/v1/orgs/{org_id}") => json!({"tier": "enterprise"}),
        ("put", "/v1/orgs/{org_id}/limits") => json!({"executions_per_day": 1}),
        ("post", "/v1/orgs/{org_id}/suspend") => json!({"reason": "probe"}),
        ("post", "/v1/orgs/{org_id}/breakglass") => json!({"ticket": "probe", "reason": "probe"}),
        ("post", "/v1/orgs/{org_id}/users") => json!({"name": "probe", "role": "owner"}),
        ("post", "/v1/orgs/{org_id}/keys") => {
            json!({"owner": {"kind": "user", "id": a.owner_user_id}, "name": "probe"})
        }
        ("post", "/v1/publishers") => json!({"name": "probe", "public_key": "ed25519:AAAA"}),
        ("post", "/v1/publishers/{publisher}/keys") => json!({"public_key": "ed25519:AAAA"}),
        ("post", "/v1/plugins") => {
            json!({"manifest": "{}", "artifact_base64": "", "signature": {"key_id": "x", "created": "2026-01-01T00:00:00Z", "signature": "x"}})
        }
        ("put", "/v1/plugins/{scope}/{name}/review") => json!({"rating": 1, "body": "probe"}),
        ("post", "/v1/users") => json!({"name": "probe-user", "role": "viewer"}),
        ("patch", "/v1/users/{user_id}") => json!({"role": "viewer"}),
        ("post", "/v1/agents") => {
            json!({"name": "probe-agent", "on_behalf_of": a.owner_user_id, "grants": ["invoke"]})
        }
        ("post", "/v1/keys") => {
            json!({"owner": {"kind": "agent", "id": a.agent_id}, "name": "probe"})
        }
        ("post", "/v1/installs") => {
            json!({"plugin": "@acme/weather", "config": {"greeting": "probe"}})
        }
        ("patch", "/v1/installs/{install_id}") => {
            json!({"enabled": false, "config": {"greeting": "pwned"}})
        }
        ("post", "/v1/installs/{install_id}/version") => json!({"version": "1.0.0"}),
        ("put", "/v1/installs/{install_id}/secrets/{name}") => {
            json!({"value": "overwritten-by-probe"})
        }
        ("post", "/v1/installs/{install_id}/invoke") => json!({"action": "run", "input": {}}),
        // A's plugin, by name, from B's script.
        ("post", "/v1/executions") => json!({"language": "javascript",
            "code": "return await callTool('@acme/weather.run', {})"}),
        _ => return None,
    })
}

/// What org A has, as A's owner sees it.
struct Snapshot {
    org_id: String,
    owner_user_id: String,
    agent_id: String,
    install_id: String,
    key_id: String,
    /// A break-glass grant the operator opened in A.
    grant_id: String,
    state: Vec<Value>,
}

async fn snapshot(s: &Server, a: &Org) -> Snapshot {
    let k = a.owner.as_str();
    let install_id = id_of(&s.get("/v1/installs", k).await[0]);
    let keys = s.get("/v1/keys", k).await;
    let mut state = Vec::new();
    for path in [
        "/v1/org",
        "/v1/users",
        "/v1/agents",
        "/v1/keys",
        "/v1/installs",
        "/v1/bindings",
    ] {
        state.push(s.get(path, k).await);
    }
    state.push(
        s.get(&format!("/v1/installs/{install_id}/secrets"), k)
            .await,
    );
    for v in state.iter_mut() {
        strip_volatile(v);
    }
    Snapshot {
        org_id: a.id.clone(),
        owner_user_id: a.owner_user_id.clone(),
        agent_id: a.agent_id.clone(),
        install_id,
        key_id: id_of(&keys[0]),
        grant_id: id_of(&s.get("/v1/breakglass", k).await[0]),
        state,
    }
}

/// Drops fields that change without a write (last-used times).
fn strip_volatile(v: &mut Value) {
    match v {
        Value::Array(a) => a.iter_mut().for_each(strip_volatile),
        Value::Object(o) => {
            o.remove("last_used_at");
            o.values_mut().for_each(strip_volatile);
        }
        _ => {}
    }
}

on_both_stores!(
    every_route_refuses_another_orgs_resources,
    every_route_refuses_another_orgs_resources_pooled,
    every_route_refuses_another_orgs_resources_on
);

async fn every_route_refuses_another_orgs_resources_on(s: Server) {
    acme_publishes(&s, "weather", "w").await;
    let a = org(&s, "victim").await;
    let b = org(&s, "attacker").await;
    let iid = s
        .install(&a.admin, json!({"plugin": "@acme/weather", "config": {"greeting": "victim-config-canary"}, "grants": {"secrets": ["api_token"]}}))
        .await;
    s.set_secret(&a.owner, &iid, "api_token", "victim-secret-canary")
        .await;
    s.bind(&a, &iid).await;
    let grant = json!({"ticket": "T-1", "reason": "support"});
    s.create(
        &format!("/v1/orgs/{}/breakglass", a.id),
        &s.operator_key,
        grant,
    )
    .await;
    let script =
        json!({"language": "javascript", "code": "return await callTool('@acme/weather.run', {})"});
    let execution = s
        .ok("POST", "/v1/executions", Some(&a.agent), Some(script), 200)
        .await["execution_id"]
        .as_str()
        .expect("execution id")
        .to_string();
    let before = snapshot(&s, &a).await;

    // Everything that identifies A and must never reach B.
    let mut a_markers = vec![
        a.id.clone(),
        before.install_id.clone(),
        before.agent_id.clone(),
        before.owner_user_id.clone(),
        before.key_id.clone(),
        before.grant_id.clone(),
        execution.clone(),
    ];
    a_markers.push("victim-config-canary".into());
    a_markers.push("victim-secret-canary".into());

    let doc = s.ok("GET", "/openapi.json", None, None, 200).await;
    let paths = doc["paths"].as_object().expect("paths");
    let mut probed = 0;
    let mut unclassified = Vec::new();
    for (path, item) in paths {
        for (method, _) in item.as_object().unwrap() {
            if !["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                continue;
            }
            let Some(class) = classify(method, path) else {
                unclassified.push(format!("{} {path}", method.to_uppercase()));
                continue;
            };
            let fill = |[org, user, agent, install, key, grant, execution]: [&str; 7]| {
                path.replace("{org_id}", org)
                    .replace("{grant_id}", grant)
                    .replace("{execution_id}", execution)
                    .replace("{user_id}", user)
                    .replace("{agent_id}", agent)
                    .replace("{install_id}", install)
                    .replace("{key_id}", key)
                    .replace("{publisher}", "acme")
                    .replace("{scope}", "@acme")
                    .replace(
                        "{name}",
                        if path.contains("secrets") {
                            "api_token"
                        } else {
                            "weather"
                        },
                    )
            };
            let concrete = fill([
                &before.org_id,
                &before.owner_user_id,
                &before.agent_id,
                &before.install_id,
                &before.key_id,
                &before.grant_id,
                &execution,
            ]);
            let random: [String; 7] = std::array::from_fn(|_| random_id());
            let nowhere = fill(random.each_ref().map(String::as_str));
            let body = body(method, path, &before);
            for (role, key) in b.keys() {
                let (status, resp) = s
                    .call(&method.to_uppercase(), &concrete, Some(key), body.clone())
                    .await;
                probed += 1;
                let text = resp.to_string();
                for m in &a_markers {
                    assert!(
                        !text.contains(m.as_str()),
                        "{role} of B: {method} {path} leaked {m}: {text}"
                    );
                }
                let ok = match class {
                    Class::Public => status == 200,
                    Class::Operator => status == 403,
                    Class::TenantById => {
                        let (st, missing) = s
                            .call(&method.to_uppercase(), &nowhere, Some(key), body.clone())
                            .await;
                        let answer = |st: u16, v: &Value| {
                            (
                                st,
                                v["error"]["code"].clone(),
                                v["error"]["message"].clone(),
                            )
                        };
                        assert_eq!(
                            answer(status, &resp),
                            answer(st, &missing),
                            "{role} of B: {} {path}: A's ids must answer exactly like ids that exist nowhere",
                            method.to_uppercase()
                        );
                        status == 404 || status == 403
                    }
                    Class::TenantOwn | Class::Registry => status < 500,
                };
                assert!(
                    ok,
                    "{role} of B: {} {path} ({class:?}) answered {status}: {text}",
                    method.to_uppercase()
                );
                if status >= 400 {
                    assert!(
                        resp["error"]["code"].is_string()
                            && resp["error"]["request_id"].is_string(),
                        "error shape: {text}"
                    );
                }
            }
        }
    }
    assert!(
        unclassified.is_empty(),
        "routes without probe coverage (add them to classify()): {unclassified:?}"
    );
    assert!(probed > 100, "probed only {probed} requests");

    let after = snapshot(&s, &a).await;
    assert_eq!(before.state, after.state, "org A changed during the probe");
    // A's secret still opens only for A (checked via a fresh list and audit: no probe write landed).
    let audit = s.get("/v1/audit?limit=1000", &a.owner).await;
    assert!(
        !audit.to_string().contains("probe"),
        "a probe write reached A's audit: {audit}"
    );
}
