//! Documented sandbox behaviour, checked end to end over HTTP with the real stores
//! behind the capabilities (issue 14's "untested documented behaviour").

mod common;

use common::*;
use serde_json::{Value, json};

/// Installs `plugin` (greeting `hi`) with `grants`, as the org's admin.
async fn install(s: &Server, o: &Org, plugin: &str, grants: Value) -> String {
    let body = json!({"plugin": plugin, "config": {"greeting": "hi"}, "grants": grants});
    s.install(&o.admin, body).await
}

/// Runs `action` of `install` as the org's member (`200`); returns the result.
async fn run(s: &Server, o: &Org, install: &str, action: &str, input: Value) -> Value {
    s.run(&o.member, install, action, input).await
}

on_both_stores!(
    another_install_of_the_same_org_cannot_read_or_overwrite_its_kv_or_secrets,
    another_install_of_the_same_org_cannot_read_or_overwrite_its_kv_or_secrets_pooled,
    another_install_of_the_same_org_cannot_read_or_overwrite_its_kv_or_secrets_on
);

async fn another_install_of_the_same_org_cannot_read_or_overwrite_its_kv_or_secrets_on(s: Server) {
    publish_examples(&s).await;
    let o = org(&s, "one-org").await;
    let counter = install(&s, &o, "@examples/kv-counter", json!({"kv": true})).await;
    let kv_and_secret = json!({"kv": true, "secrets": ["api_token"]});
    let attacks = install(&s, &o, "@examples/attacks", kv_and_secret).await;
    let secret = json!({"secrets": ["api_token"]});
    let victim = install(&s, &o, "@examples/secret-user", secret).await;
    let attack = |action: &'static str, input: Value| run(&s, &o, &attacks, action, input);
    let r = run(&s, &o, &counter, "increment", json!({"name": "x"})).await;
    assert_eq!(r["output"]["value"], 1, "the victim's own write: {r}");
    s.set_secret(&o.owner, &victim, "api_token", "victim-secret")
        .await;

    // The attacker install of the same org reads the victim's key: nothing.
    let r = attack("kv-get", json!({"key": "counter/x"})).await;
    assert_eq!(
        (&r["outcome"], &r["output"]),
        (&json!("OK"), &Value::Null),
        "{r}"
    );
    // It writes the same key: only into its own namespace.
    let r = attack("kv-set", json!({"key": "counter/x", "value": "999"})).await;
    assert_eq!(r["outcome"], "OK", "{r}");
    let r = run(&s, &o, &counter, "get", json!({"name": "x"})).await;
    assert_eq!(r["output"]["value"], 1, "the victim's value survived: {r}");
    // The same secret name on the attacker's install holds nothing of the victim's.
    let r = attack("secret", json!({"name": "api_token"})).await;
    assert_eq!(
        (&r["outcome"], &r["output"]),
        (&json!("OK"), &Value::Null),
        "{r}"
    );
    let r = run(&s, &o, &victim, "check", json!({})).await;
    assert_eq!(r["output"]["length"], "victim-secret".len(), "{r}");

    // Deleting the secret takes it out of the sandbox at once.
    let secret = format!("/v1/installs/{victim}/secrets/api_token");
    s.delete(&secret, &o.owner, 204).await;
    let r = run(&s, &o, &victim, "check", json!({})).await;
    assert_ne!(r["output"]["length"], "victim-secret".len(), "{r}");
}

on_both_stores!(
    tier_overrides_of_memory_host_calls_output_and_storage_reach_the_sandbox,
    tier_overrides_of_memory_host_calls_output_and_storage_reach_the_sandbox_pooled,
    tier_overrides_of_memory_host_calls_output_and_storage_reach_the_sandbox_on
);

async fn tier_overrides_of_memory_host_calls_output_and_storage_reach_the_sandbox_on(s: Server) {
    publish_examples(&s).await;
    let o = org(&s, "overridden").await;
    let attacks = install(&s, &o, "@examples/attacks", json!({"kv": true})).await;
    s.set_limits(
        &o.id,
        json!({
            "memory_bytes": 4 << 20,
            "host_calls_per_execution": 3,
            "output_bytes": 100,
            "storage_bytes": 64,
        }),
    )
    .await;
    let attack = |action: &'static str, input: Value| run(&s, &o, &attacks, action, input);

    let r = attack("memory", json!({})).await;
    assert_eq!(r["outcome"], "MEMORY_LIMIT", "{r}");
    let peak = r["stats"]["peak_memory_bytes"].as_u64().unwrap_or(u64::MAX);
    assert!(peak <= 4 << 20, "peak {peak} over the 4 MiB override");

    let r = attack("host-flood", json!({"n": 2})).await;
    assert_eq!(r["outcome"], "OK", "{r}");
    let r = attack("host-flood", json!({"n": 5})).await;
    assert_eq!(r["outcome"], "MAX_HOST_CALLS", "{r}");

    let r = attack("output", json!({"bytes": 50})).await;
    assert_eq!(r["outcome"], "OK", "{r}");
    let r = attack("output", json!({"bytes": 200})).await;
    assert_eq!(r["outcome"], "OUTPUT_TOO_LARGE", "{r}");

    // The kv storage quota (64 bytes for the org): a small write fits, a larger one
    // is refused inside the sandbox and stores nothing.
    let r = attack("kv-set", json!({"key": "k", "value": "small"})).await;
    assert_eq!(r["outcome"], "OK", "{r}");
    let big = "x".repeat(100);
    let r = attack("kv-set", json!({"key": "big", "value": big})).await;
    assert_ne!(r["outcome"], "OK", "{r}");
    assert_message_contains(&r, "storage quota");
    let r = attack("kv-get", json!({"key": "big"})).await;
    assert_eq!(r["output"], Value::Null, "{r}");
}

on_both_stores!(
    operator_provisioning_leaves_an_audit_entry_in_the_org,
    operator_provisioning_leaves_an_audit_entry_in_the_org_pooled,
    operator_provisioning_leaves_an_audit_entry_in_the_org_on
);

async fn operator_provisioning_leaves_an_audit_entry_in_the_org_on(s: Server) {
    // `org()` provisions the users and their keys with the operator key.
    let o = org(&s, "provisioned").await;
    let audit = s.get("/v1/audit?limit=1000", &o.owner).await;
    let by_operator: Vec<&Value> = audit
        .as_array()
        .expect("audit")
        .iter()
        .filter(|e| e["actor_kind"] == "operator")
        .collect();
    for action in ["user.create", "key.create"] {
        assert!(
            by_operator.iter().any(|e| e["action"] == action),
            "no operator {action} in the org's audit: {audit}"
        );
    }
}

/// Pooled mode: a manifest changed in the database behind the registry's back (say,
/// widening its permissions) is refused before any use.
#[tokio::test]
async fn a_manifest_tampered_in_the_database_is_refused_before_use_pooled() {
    use sqlx::Connection;
    let s = Server::start_pooled().await;
    acme_publishes(&s, "tool", "tamper").await;
    let db = s.db.as_ref().expect("pooled");
    let mut c = sqlx::PgConnection::connect(&db.owner_url)
        .await
        .expect("connect as owner");
    let n = sqlx::query(
        "UPDATE plugin_versions SET manifest_json = replace(manifest_json, 'api.example.com', 'evil.example.com') WHERE plugin = '@acme/tool'",
    )
    .execute(&mut c)
    .await
    .expect("tamper")
    .rows_affected();
    assert_eq!(n, 1);
    install_is_refused_as_tampered(&s, "tampered").await;
}

on_both_stores!(
    a_nested_tool_call_shares_its_callers_host_call_budget,
    a_nested_tool_call_shares_its_callers_host_call_budget_pooled,
    a_nested_tool_call_shares_its_callers_host_call_budget_on
);

/// A tool call is part of its caller's execution: the caller's host calls and the
/// callee's together are bounded by the one budget of the tier.
async fn a_nested_tool_call_shares_its_callers_host_call_budget_on(s: Server) {
    let p = publish_examples(&s).await;
    // The tool-caller example, republished to call the kv counter (2 host calls).
    let (mut m, wasm) = example_plugin("tool-caller");
    m["version"] = json!("0.2.0");
    m["dependencies"] = json!({"@examples/kv-counter": "*"});
    m["permissions"]["tools"] = json!(["@examples/kv-counter"]);
    s.publish(&p, &m, &wasm).await;
    let o = org(&s, "nested").await;
    install(&s, &o, "@examples/kv-counter", json!({"kv": true})).await;
    let caller = install(
        &s,
        &o,
        "@examples/tool-caller",
        json!({"tools": ["@examples/kv-counter"]}),
    )
    .await;
    let input =
        json!({"plugin": "@examples/kv-counter", "action": "increment", "input": {"name": "n"}});
    let r = run(&s, &o, &caller, "call", input.clone()).await;
    assert_eq!(r["outcome"], "OK", "{r}");
    let total = r["stats"]["host_calls"].as_u64().expect("host_calls");
    assert!(
        total >= 3,
        "the tool call plus the counter's kv get and set: {r}"
    );
    for (budget, ok) in [(total - 1, false), (total, true)] {
        s.set_limits(&o.id, json!({"host_calls_per_execution": budget}))
            .await;
        let r = run(&s, &o, &caller, "call", input.clone()).await;
        // Where the budget runs out decides whether the caller sees a failed tool
        // call or the whole execution ends: either way it is not OK.
        assert_eq!(r["outcome"] == "OK", ok, "budget {budget} of {total}: {r}");
    }
}
