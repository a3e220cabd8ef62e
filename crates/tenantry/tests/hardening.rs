//! Defects found from the outside (issue 14), each as the attack or mistake that
//! reached it, on both stores. Every test here failed before its fix.

mod common;

use common::*;
use serde_json::{Value, json};

fn echo_wat() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/plugins-wat/echo.wat"
    ))
    .expect("examples/plugins-wat/echo.wat")
}

/// An org with `@<publisher>/<plugin>` installed; returns (org, install id).
async fn installed(s: &Server, org_name: &str, plugin: &str) -> (Org, String) {
    org_with_install(
        s,
        org_name,
        json!({"plugin": plugin, "config": {"greeting": "hi"}}),
    )
    .await
}

/// Publisher `acme` with `@acme/tool` 1.0.0 (the WAT echo, tagged), installed in a
/// new org; returns (org, install id).
async fn tool_installed(s: &Server, org_name: &str, tag: &str) -> (Org, String) {
    acme_publishes(s, "tool", tag).await;
    installed(s, org_name, "@acme/tool").await
}

/// Runs the tool's `run` action as `key`.
async fn invoke(s: &Server, key: &str, install: &str) -> (u16, Value) {
    s.invoke(key, install, "run", json!({"n": 1})).await
}

on_both_stores!(
    a_revoked_publisher_key_stops_an_already_running_version,
    a_revoked_publisher_key_stops_an_already_running_version_pooled,
    a_revoked_publisher_key_stops_an_already_running_version_on
);

async fn a_revoked_publisher_key_stops_an_already_running_version_on(s: Server) {
    let p = acme_publishes(&s, "tool", "revoked").await;
    let (o, install) = installed(&s, "victim", "@acme/tool").await;
    // The version is verified, compiled and cached by a first invocation.
    assert_outcome(invoke(&s, &o.member, &install).await, "OK");

    s.revoke_publisher_key(&p).await;
    // The next invocation after a revocation must be refused.
    assert_refused(invoke(&s, &o.member, &install).await, 400, "KEY_NOT_VALID");
}

on_both_stores!(
    publishing_a_component_that_cannot_run_is_refused_and_stores_nothing,
    publishing_a_component_that_cannot_run_is_refused_and_stores_nothing_pooled,
    publishing_a_component_that_cannot_run_is_refused_and_stores_nothing_on
);

async fn publishing_a_component_that_cannot_run_is_refused_and_stores_nothing_on(s: Server) {
    let p = publisher(&s, "acme").await;
    let whole = component("whole");
    let cut_in_half = whole[..whole.len() / 2].to_vec();
    let backdoor = wat::parse_str(echo_wat().replacen(
        "(component",
        r#"(component (import "tenantry:plugin/backdoor@0.1.0" (instance (export "open" (func))))"#,
        1,
    ))
    .expect("backdoor wat");
    // 40,000 pages = 2.4 GiB of initial memory: more than any tier grants.
    let huge_memory = wat::parse_str(echo_wat().replace(
        r#"(memory (export "memory") 1)"#,
        r#"(memory (export "memory") 40000)"#,
    ))
    .expect("huge memory wat");
    let exports_nothing = wat::parse_str("(component)").expect("empty component");
    for (i, (what, artifact)) in [
        ("a component cut in half", cut_in_half),
        ("an import outside the plugin world", backdoor),
        ("initial memory beyond every tier", huge_memory),
        ("no exports", exports_nothing),
    ]
    .into_iter()
    .enumerate()
    {
        let m = manifest("acme", &format!("broken{i}"), "1.0.0");
        s.refused(
            "POST",
            "/v1/plugins",
            Some(&s.operator_key),
            Some(p.publish_body(&m, &artifact)),
            (400, "INVALID_ARTIFACT"),
        )
        .await;
        let path = format!("/v1/plugins/@acme/broken{i}");
        let st = s.get_status(&path, &s.operator_key).await;
        assert_eq!(st, 404, "{what}: nothing may be stored");
    }
    assert_eq!(s.rows(None, "plugin_versions").await, 0);
}

on_both_stores!(
    a_publisher_cannot_publish_into_another_publishers_scope,
    a_publisher_cannot_publish_into_another_publishers_scope_pooled,
    a_publisher_cannot_publish_into_another_publishers_scope_on
);

async fn a_publisher_cannot_publish_into_another_publishers_scope_on(s: Server) {
    acme_publishes(&s, "tool", "a").await;
    let mallory = publisher(&s, "mallory").await;
    let op = Some(s.operator_key.as_str());
    // Mallory signs as herself a plugin named in acme's scope: a new name, and a
    // higher version of acme's own plugin (shadowing it).
    for (name, version) in [("@acme/secret-user", "1.0.0"), ("@acme/tool", "2.0.0")] {
        let mut m = manifest("mallory", "x", version);
        m["name"] = json!(name);
        let body = mallory.publish_body(&m, &component(name));
        let e = s
            .refused(
                "POST",
                "/v1/plugins",
                op,
                Some(body),
                (400, "INVALID_MANIFEST"),
            )
            .await;
        assert_message_contains(&e, "scope");
    }
    let v = s.get("/v1/plugins/@acme/tool", &s.operator_key).await;
    assert_eq!(v["latest_version"], "1.0.0");
    let (st, _) = s
        .call(
            "GET",
            "/v1/plugins/@acme/secret-user",
            Some(&s.operator_key),
            None,
        )
        .await;
    assert_eq!(st, 404);
}

on_both_stores!(
    an_override_the_rate_limiters_cannot_represent_is_refused,
    an_override_the_rate_limiters_cannot_represent_is_refused_pooled,
    an_override_the_rate_limiters_cannot_represent_is_refused_on
);

async fn an_override_the_rate_limiters_cannot_represent_is_refused_on(s: Server) {
    let (o, install) = tool_installed(&s, "big", "o").await;
    let path = format!("/v1/orgs/{}/limits", o.id);
    for body in [
        json!({"invocations_per_minute": 1_000_000_000u64}),
        json!({"memory_bytes": 1u64 << 40}),
    ] {
        s.refused(
            "PUT",
            &path,
            Some(&s.operator_key),
            Some(body),
            (400, "INVALID_REQUEST"),
        )
        .await;
    }
    // The highest representable rate is accepted, and invocations keep working.
    s.set_limits(&o.id, json!({"invocations_per_minute": 60_000_000u64}))
        .await;
    assert_outcome(invoke(&s, &o.member, &install).await, "OK");
}

on_both_stores!(
    an_upgrade_that_makes_a_dependency_cycle_is_refused,
    an_upgrade_that_makes_a_dependency_cycle_is_refused_pooled,
    an_upgrade_that_makes_a_dependency_cycle_is_refused_on
);

async fn an_upgrade_that_makes_a_dependency_cycle_is_refused_on(s: Server) {
    let p = publisher(&s, "acme").await;
    s.publish(&p, &manifest("acme", "pong", "1.0.0"), &component("pong1"))
        .await;
    let mut ping = manifest("acme", "ping", "1.0.0");
    ping["dependencies"] = json!({"@acme/pong": "*"});
    s.publish(&p, &ping, &component("ping")).await;
    let mut pong2 = manifest("acme", "pong", "2.0.0");
    pong2["dependencies"] = json!({"@acme/ping": "*"});
    s.publish(&p, &pong2, &component("pong2")).await;

    let o = org(&s, "loops").await;
    let admin = o.admin.as_str();
    let pong = s
        .install(
            admin,
            json!({"plugin": "@acme/pong", "version": "1.0.0", "config": {"greeting": "x"}}),
        )
        .await;
    s.install(
        admin,
        json!({"plugin": "@acme/ping", "config": {"greeting": "x"}}),
    )
    .await;
    let e = s
        .refused(
            "POST",
            &format!("/v1/installs/{pong}/version"),
            Some(admin),
            Some(json!({"version": "2.0.0"})),
            (409, "DEPENDENCY_CYCLE"),
        )
        .await;
    assert_message_contains(&e, "@acme/pong → @acme/ping → @acme/pong");
    // Nothing changed, and the org can still get back to a clean state.
    let v = s.get(&format!("/v1/installs/{pong}"), admin).await;
    assert_eq!(v["version"], "1.0.0");
    let installs = s.get("/v1/installs", admin).await;
    for i in installs.as_array().expect("installs") {
        if i["plugin"] == "@acme/ping" {
            s.delete(&format!("/v1/installs/{}", id_of(i)), admin, 204)
                .await;
        }
    }
    s.delete(&format!("/v1/installs/{pong}"), admin, 204).await;
}

on_both_stores!(
    nul_characters_are_refused_at_the_edge_and_other_text_round_trips,
    nul_characters_are_refused_at_the_edge_and_other_text_round_trips_pooled,
    nul_characters_are_refused_at_the_edge_and_other_text_round_trips_on
);

async fn nul_characters_are_refused_at_the_edge_and_other_text_round_trips_on(s: Server) {
    let p = publisher(&s, "ex").await;
    s.publish(&p, &manifest("ex", "tool", "1.0.0"), &component("nul"))
        .await;
    let (o, install) = installed(&s, "texts", "@ex/tool").await;
    let op = s.operator_key.clone();
    let cases: Vec<(&str, String, Option<&str>, Option<Value>)> = vec![
        ("GET", "/v1/plugins?q=%00".into(), Some(&o.owner), None),
        ("GET", "/v1/audit?target=%00".into(), Some(&o.owner), None),
        ("GET", "/v1/audit?action=a%00b".into(), Some(&o.owner), None),
        (
            "DELETE",
            format!("/v1/installs/{install}/secrets/%00"),
            Some(&o.owner),
            None,
        ),
        (
            "PATCH",
            format!("/v1/installs/{install}"),
            Some(&o.admin),
            Some(json!({"config": {"greeting": "a\u{0}b"}})),
        ),
        (
            "PUT",
            "/v1/plugins/@ex/tool/review".into(),
            Some(&o.owner),
            Some(json!({"rating": 5, "body": "good\u{0}"})),
        ),
        ("DELETE", "/v1/publisher-keys/%00".into(), Some(&op), None),
        (
            "POST",
            "/v1/publishers/ex%00/keys".into(),
            Some(&op),
            Some(json!({"public_key": p.key.public_key().to_string()})),
        ),
    ];
    for (method, path, key, body) in cases {
        let e = s
            .refused(method, &path, key, body, (400, "INVALID_REQUEST"))
            .await;
        assert_message_contains(&e, "NUL");
    }
    // Every other character round-trips the same on both stores.
    let text = "a\u{1}b\t\u{7f} é 😀 \\u0000";
    let path = format!("/v1/installs/{install}");
    s.patch(&path, &o.admin, json!({"config": {"greeting": text}}))
        .await;
    let v = s.get(&path, &o.admin).await;
    assert_eq!(v["config"]["greeting"], text);
    s.review(&o.owner, "@ex/tool", json!({"rating": 4, "body": text}))
        .await;
    let r = s.get("/v1/plugins/@ex/tool/reviews", &o.owner).await;
    assert_eq!(r[0]["body"], text, "{r}");
}

/// Walks every operation in `/openapi.json` with a query parameter that is not a
/// free string, sends a value that cannot parse, and checks the answer names it.
#[tokio::test]
async fn a_bad_query_parameter_is_named_on_every_route() {
    let s = Server::start();
    let o = org(&s, "queries").await;
    let doc = s.ok("GET", "/openapi.json", None, None, 200).await;
    let mut checked = Vec::new();
    for (path, ops) in doc["paths"].as_object().expect("paths") {
        let Some(get) = ops.get("get") else { continue };
        for param in get["parameters"].as_array().into_iter().flatten() {
            if param["in"] != "query" {
                continue;
            }
            let name = param["name"].as_str().expect("name");
            let schema = &param["schema"];
            let ty = schema["type"].as_str().unwrap_or_else(|| {
                schema["type"]
                    .as_array()
                    .and_then(|t| t.iter().find(|t| *t != "null"))
                    .and_then(Value::as_str)
                    .unwrap_or("")
            });
            let parses = ty == "integer"
                || schema["format"].is_string()
                || schema.get("enum").is_some()
                || schema.get("$ref").is_some()
                || schema.get("oneOf").is_some();
            if !parses {
                continue;
            }
            let url = format!("{path}?{name}=%E2%9C%97not-a-value");
            let key = if path.starts_with("/v1/operator/") {
                &s.operator_key
            } else {
                &o.owner
            };
            let e = s
                .refused("GET", &url, Some(key), None, (400, "INVALID_REQUEST"))
                .await;
            let msg = e["error"]["message"].as_str().unwrap_or_default();
            assert!(
                msg.contains(name),
                "{url}: the message must name '{name}': {msg}"
            );
            checked.push(format!("{path}?{name}"));
        }
    }
    for must in ["/v1/audit?limit", "/v1/plugins?limit", "/v1/usage?limit"] {
        assert!(
            checked.iter().any(|c| c == must),
            "{must} not walked: {checked:?}"
        );
    }
}

#[tokio::test]
async fn an_unauthenticated_request_is_told_the_scheme() {
    let s = Server::start();
    for key in [None, Some("tny_not-a-real-key")] {
        let (st, h, _) = s.call_with_headers("GET", "/v1/org", key, None).await;
        assert_eq!(st, 401);
        assert_eq!(
            h.get("www-authenticate").map(String::as_str),
            Some(r#"Bearer realm="tenantry""#)
        );
    }
}

on_both_stores!(
    an_unknown_action_lists_the_plugins_actions,
    an_unknown_action_lists_the_plugins_actions_pooled,
    an_unknown_action_lists_the_plugins_actions_on
);

async fn an_unknown_action_lists_the_plugins_actions_on(s: Server) {
    let p = publisher(&s, "acme").await;
    let mut m = manifest("acme", "tool", "1.0.0");
    m["actions"] = json!([{"name": "run"}, {"name": "stop"}]);
    s.publish(&p, &m, &component("actions")).await;
    let (o, install) = installed(&s, "acts", "@acme/tool").await;
    let v = s.run(&o.member, &install, "nope", json!({})).await;
    assert_eq!(v["outcome"], "NOT_FOUND", "{v}");
    let msg = v["error"]["message"].as_str().unwrap_or_default();
    assert!(msg.contains("run, stop"), "{msg}");
}

on_both_stores!(
    an_expired_api_key_is_refused_end_to_end,
    an_expired_api_key_is_refused_end_to_end_pooled,
    an_expired_api_key_is_refused_end_to_end_on
);

/// A key that expires is refused at its first request after `expires_at`, with a
/// message that tells its holder what to do. (Waiting for the clock is the
/// behaviour under test here.)
async fn an_expired_api_key_is_refused_end_to_end_on(s: Server) {
    let o = org(&s, "expiring").await;
    let at = time::OffsetDateTime::now_utc() + time::Duration::seconds(2);
    let (_, key) = s
        .create_key(
            &o.owner,
            json!({
                "owner": {"kind": "user", "id": o.owner_user_id},
                "name": "short-lived",
                "expires_at": rfc3339(at),
            }),
        )
        .await;
    s.get("/v1/org", &key).await;
    let left = at - time::OffsetDateTime::now_utc();
    tokio::time::sleep(std::time::Duration::from_millis(
        u64::try_from(left.whole_milliseconds()).unwrap_or(0) + 300,
    ))
    .await;
    let e = s
        .refused("GET", "/v1/org", Some(&key), None, (401, "UNAUTHENTICATED"))
        .await;
    assert_message_contains(&e, "expired");
}

on_both_stores!(
    a_deleted_agent_s_keys_stop_and_an_unbound_agent_cannot_invoke,
    a_deleted_agent_s_keys_stop_and_an_unbound_agent_cannot_invoke_pooled,
    a_deleted_agent_s_keys_stop_and_an_unbound_agent_cannot_invoke_on
);

async fn a_deleted_agent_s_keys_stop_and_an_unbound_agent_cannot_invoke_on(s: Server) {
    let (o, install) = tool_installed(&s, "agents", "agent").await;
    s.bind(&o, &install).await;
    assert_outcome(invoke(&s, &o.agent, &install).await, "OK");
    let binding = format!("/v1/agents/{}/installs/{install}", o.agent_id);
    s.delete(&binding, &o.admin, 204).await;
    // Unbound.
    assert_refused(
        invoke(&s, &o.agent, &install).await,
        403,
        "PERMISSION_DENIED",
    );
    s.delete(&format!("/v1/agents/{}", o.agent_id), &o.admin, 204)
        .await;
    s.refused(
        "GET",
        "/v1/org",
        Some(&o.agent),
        None,
        (401, "UNAUTHENTICATED"),
    )
    .await;
}

on_both_stores!(
    an_expired_key_cannot_publish_with_a_backdated_signature,
    an_expired_key_cannot_publish_with_a_backdated_signature_pooled,
    an_expired_key_cannot_publish_with_a_backdated_signature_on
);

/// The signer chooses `created`: an expired key backdates its signature into its
/// old window. At publish the key must be valid now.
async fn an_expired_key_cannot_publish_with_a_backdated_signature_on(s: Server) {
    let old = expired_publisher(&s, "old").await;
    let body = old.publish_body_at(
        &manifest("old", "x", "1.0.0"),
        &component("backdated"),
        time::OffsetDateTime::now_utc() - time::Duration::days(5),
    );
    let e = s
        .refused(
            "POST",
            "/v1/plugins",
            Some(&s.operator_key),
            Some(body),
            (400, "KEY_NOT_VALID"),
        )
        .await;
    assert_message_contains(&e, "expired");
    assert_eq!(s.rows(None, "plugin_versions").await, 0);
}

on_both_stores!(
    a_weak_publisher_key_is_refused_at_registration,
    a_weak_publisher_key_is_refused_at_registration_pooled,
    a_weak_publisher_key_is_refused_at_registration_on
);

async fn a_weak_publisher_key_is_refused_at_registration_on(s: Server) {
    // The identity point: every signature "verifies" under lenient checks.
    let e = s
        .refused(
            "POST",
            "/v1/publishers",
            Some(&s.operator_key),
            Some(json!({
                "name": "weak",
                "public_key": "ed25519:AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
            })),
            (400, "INVALID_REQUEST"),
        )
        .await;
    assert_message_contains(&e, "weak");
    assert_eq!(s.rows(None, "publishers").await, 0);
}

/// Under a steady stream of invocations (never 50 ms apart, far fewer than 512), a
/// `kill -9` loses at most the last moments of usage records: the recorder flushes
/// 50 ms after a batch's first record, not only after a quiet 50 ms or 512 records.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_under_steady_traffic_loses_only_the_last_moments_of_usage() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let mut s = Server::start();
    let (o, install) = tool_installed(&s, "steady", "steady").await;
    s.set_limits(&o.id, json!({"invocations_per_minute": 100000, "executions_per_day": 100000, "executions_per_month": 100000}))
        .await;
    let acked = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let stream = {
        let (acked, stop) = (acked.clone(), stop.clone());
        let url = format!("{}/v1/installs/{install}/invoke", s.url);
        let key = o.member.clone();
        tokio::spawn(async move {
            let http = common::http();
            while !stop.load(Ordering::SeqCst) {
                match send_invoke(&http, &url, &key, "run").await {
                    Ok(r) if r.status() == 200 => {
                        acked.fetch_add(1, Ordering::SeqCst);
                    }
                    _ => break,
                }
                // Paced so that 600 ms stay under one full batch (512) however fast
                // an invocation is, and far under 50 ms apart.
                tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            }
        })
    };
    // Stream until a few batches' worth were acknowledged (and at least 600 ms).
    let started = std::time::Instant::now();
    while acked.load(Ordering::SeqCst) < 40
        || started.elapsed() < std::time::Duration::from_millis(600)
    {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "the stream stalled"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let before_kill = acked.load(Ordering::SeqCst);
    s.crash_and_restart();
    stop.store(true, Ordering::SeqCst);
    let _ = stream.await;
    assert!(
        before_kill < 512,
        "the stream must stay under one full batch"
    );
    let usage = s.get("/v1/usage?limit=10000", &o.admin).await;
    let kept = usage.as_array().map_or(0, Vec::len);
    assert!(
        kept * 2 >= before_kill,
        "only {kept} of {before_kill} acknowledged invocations kept their usage record"
    );
}

on_both_stores!(
    an_invoke_only_agent_lists_just_the_installs_bound_to_it,
    an_invoke_only_agent_lists_just_the_installs_bound_to_it_pooled,
    an_invoke_only_agent_lists_just_the_installs_bound_to_it_on
);

/// An agent that may only invoke can still name the installs it may invoke (the
/// CLI resolves `@scope/name` by listing), and sees no other install of its org.
async fn an_invoke_only_agent_lists_just_the_installs_bound_to_it_on(s: Server) {
    let p = publisher(&s, "acme").await;
    for name in ["bound", "other"] {
        s.publish(&p, &manifest("acme", name, "1.0.0"), &component(name))
            .await;
    }
    let o = org(&s, "narrow").await;
    let mut ids = Vec::new();
    for name in ["bound", "other"] {
        let body = json!({"plugin": format!("@acme/{name}"), "config": {"greeting": "x"}});
        ids.push(s.install(&o.admin, body).await);
    }
    let agent = json!({"name": "invoker", "grants": ["invoke"]});
    let agent = id_of(&s.create("/v1/agents", &o.owner, agent).await);
    let (_, key) = s
        .create_key(
            &o.owner,
            json!({"owner": {"kind": "agent", "id": agent}, "name": "invoker"}),
        )
        .await;
    let key = key.as_str();
    let listed = s.get("/v1/installs", key).await;
    assert_eq!(listed, json!([]), "nothing bound yet");
    let binding = format!("/v1/agents/{agent}/installs/{}", ids[0]);
    s.ok("PUT", &binding, Some(&o.admin), None, 201).await;
    let listed = s.get("/v1/installs", key).await;
    let plugins: Vec<&str> = listed
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|i| i["plugin"].as_str())
        .collect();
    assert_eq!(plugins, ["@acme/bound"]);
    // The org's full list stays behind read_org.
    let (st, _) = s
        .call("GET", &format!("/v1/installs/{}", ids[1]), Some(key), None)
        .await;
    assert_eq!(st, 403);
}

/// JSON Schema's `integer` includes `5.0`; a fraction is refused naming the field.
#[tokio::test]
async fn an_integral_float_is_accepted_where_an_integer_is_expected() {
    let s = Server::start();
    acme_publishes(&s, "tool", "floats").await;
    let o = org(&s, "floats").await;
    let v = s
        .review(
            &o.owner,
            "@acme/tool",
            json!({"rating": 5.0, "body": "fine"}),
        )
        .await;
    assert_eq!(v["rating"], 5);
    let e = s
        .refused(
            "PUT",
            "/v1/plugins/@acme/tool/review",
            Some(&o.owner),
            Some(json!({"rating": 2.5})),
            (400, "INVALID_REQUEST"),
        )
        .await;
    assert_message_contains(&e, "rating");
}
