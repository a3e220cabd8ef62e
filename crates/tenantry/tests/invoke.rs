//! The invoke path end to end over HTTP with the example plugins.

mod common;

use common::*;
use serde_json::json;

async fn setup(s: Server) -> (Server, Org, std::collections::HashMap<&'static str, String>) {
    publish_examples(&s).await;
    let o = org(&s, "acme").await;
    let mut ids = std::collections::HashMap::new();
    for (name, body) in [
        (
            "echo",
            json!({"plugin": "@examples/echo", "config": {"greeting": "hi"}}),
        ),
        (
            "kv-counter",
            json!({"plugin": "@examples/kv-counter", "grants": {"kv": true}}),
        ),
        (
            "secret-user",
            json!({"plugin": "@examples/secret-user", "grants": {"secrets": ["api_token"]}}),
        ),
        ("attacks", json!({"plugin": "@examples/attacks"})),
        (
            "tool-caller",
            json!({"plugin": "@examples/tool-caller", "grants": {"tools": ["@examples/echo"]}}),
        ),
    ] {
        ids.insert(name, s.install(&o.admin, body).await);
    }
    (s, o, ids)
}

on_both_stores!(
    agents_invoke_only_bound_enabled_installs,
    agents_invoke_only_bound_enabled_installs_pooled,
    agents_invoke_only_bound_enabled_installs_on
);

async fn agents_invoke_only_bound_enabled_installs_on(s: Server) {
    let (s, o, ids) = setup(s).await;
    let echo = ids["echo"].as_str();
    let input = || json!({"x": 1});
    // An unbound agent.
    let answer = s.invoke(&o.agent, echo, "echo", input()).await;
    assert_refused(answer, 403, "PERMISSION_DENIED");
    s.bind(&o, echo).await;
    let r = s.run(&o.agent, echo, "echo", input()).await;
    assert_eq!(r["outcome"], "OK");
    assert_eq!(r["output"], json!({"echo": {"x": 1}, "greeting": "hi"}));
    assert!(
        r["stats"]["fuel"].as_u64().unwrap() > 0 && r["stats"]["duration_us"].as_u64().unwrap() > 0
    );
    // Members invoke; viewers do not.
    s.run(&o.member, echo, "echo", input()).await;
    let (st, _) = s.invoke(&o.viewer, echo, "echo", input()).await;
    assert_eq!(st, 403);
    // Disabled installs refuse.
    s.patch(
        &format!("/v1/installs/{echo}"),
        &o.admin,
        json!({"enabled": false}),
    )
    .await;
    let answer = s.invoke(&o.agent, echo, "echo", input()).await;
    assert_refused(answer, 409, "INSTALL_DISABLED");
}

on_both_stores!(
    outcomes_usage_and_audit_are_recorded,
    outcomes_usage_and_audit_are_recorded_pooled,
    outcomes_usage_and_audit_are_recorded_on
);

async fn outcomes_usage_and_audit_are_recorded_on(s: Server) {
    let (s, o, ids) = setup(s).await;
    let inv = |plugin: &str, action: &'static str, input: serde_json::Value| {
        s.run(&o.member, &ids[plugin], action, input)
    };
    assert_eq!(
        inv("kv-counter", "increment", json!({"by": 2})).await["output"]["value"],
        2
    );
    assert_eq!(
        inv("kv-counter", "increment", json!({"by": -1})).await["outcome"],
        "INVALID_INPUT"
    );
    assert_eq!(inv("echo", "nope", json!({})).await["outcome"], "NOT_FOUND");
    let r = inv("attacks", "secret", json!({"name": "api_token"})).await;
    assert_eq!(r["outcome"], "PERMISSION_DENIED");
    assert_eq!(
        inv("attacks", "loop", json!({})).await["outcome"],
        "OUT_OF_FUEL"
    );
    // Secrets reach the sandbox only for the granted install.
    s.set_secret(&o.owner, &ids["secret-user"], "api_token", "abc")
        .await;
    assert_eq!(
        inv("secret-user", "check", json!({})).await["output"]["length"],
        3
    );
    // Tool calls go to the same org's install.
    let t = inv(
        "tool-caller",
        "call",
        json!({"plugin": "@examples/echo", "action": "echo", "input": {"y": 2}}),
    )
    .await;
    assert_eq!(t["output"]["output"]["echo"], json!({"y": 2}), "{t}");

    let usage = eventually(&s, &o.admin, "/v1/usage?limit=100", |v| {
        v.as_array().is_some_and(|a| a.len() >= 8)
    })
    .await;
    let outcomes = strs(&usage, "outcome");
    for want in [
        "OK",
        "INVALID_INPUT",
        "NOT_FOUND",
        "PERMISSION_DENIED",
        "OUT_OF_FUEL",
    ] {
        assert!(outcomes.contains(&want), "{want} missing from {outcomes:?}");
    }
    let audit = eventually(&s, &o.admin, "/v1/audit?action=invoke&limit=100", |v| {
        v.as_array().is_some_and(|a| a.len() >= 8)
    })
    .await;
    let denied = audit
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["outcome"] == "PERMISSION_DENIED")
        .expect("denied entry");
    assert_eq!(
        denied["details"]["denied"],
        json!(["secret:api_token"]),
        "the refused capability is audited"
    );
    assert!(denied["details"]["artifact_sha256"].is_string());
}

on_both_stores!(
    clean_shutdown_loses_no_usage_records,
    clean_shutdown_loses_no_usage_records_pooled,
    clean_shutdown_loses_no_usage_records_on
);

async fn clean_shutdown_loses_no_usage_records_on(s: Server) {
    let (mut s, o, ids) = setup(s).await;
    let path = invoke_path(&ids["echo"]);
    for _ in 0..20 {
        s.ok(
            "POST",
            &path,
            Some(&o.member),
            Some(json!({"action": "echo"})),
            200,
        )
        .await;
    }
    s.terminate_and_restart();
    let usage = s.get("/v1/usage?limit=1000", &o.admin).await;
    assert_eq!(usage.as_array().unwrap().len(), 20);
}

#[tokio::test]
async fn tampered_artifact_is_refused_at_invoke() {
    let (mut s, o, ids) = setup(Server::start()).await;
    let i = s
        .get(&format!("/v1/installs/{}", ids["echo"]), &o.admin)
        .await;
    let file = s
        .data_dir()
        .join("artifacts/sha256")
        .join(format!("{}.wasm", i["artifact_sha256"].as_str().unwrap()));
    let mut bytes = std::fs::read(&file).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&file, bytes).unwrap();
    s.crash_and_restart();
    s.refused(
        "POST",
        &invoke_path(&ids["echo"]),
        Some(&o.member),
        Some(json!({"action": "echo"})),
        (400, "ARTIFACT_TAMPERED"),
    )
    .await;
}

#[tokio::test]
async fn cli_invoke_and_usage() {
    let (s, o, ids) = setup(Server::start()).await;
    let out = cli_ok(s.cli(Some(&o.member)).args([
        "invoke",
        "@examples/echo",
        "echo",
        "--input",
        r#"{"cli": true}"#,
    ]));
    assert!(String::from_utf8_lossy(&out.stdout).contains("outcome: OK"));
    let out = s
        .cli(Some(&o.member))
        .args(["--json", "invoke", &ids["attacks"], "loop"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "a failed outcome exits non-zero");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["outcome"], "OUT_OF_FUEL");
}

#[test]
fn demo_runs_and_checks_itself() {
    let out = std::process::Command::new(BIN)
        .arg("demo")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("All checks passed"), "{text}");
    assert!(!text.contains('\u{2717}'), "{text}");
}

/// `Server-Timing: app;dur=<ms>` on every response, refusals included: the server's
/// part of what the client waited for (the rest is network and queueing).
#[tokio::test]
async fn every_response_says_how_long_the_server_spent_on_it() {
    let (s, o, ids) = setup(Server::start()).await;
    let dur = |h: &std::collections::HashMap<String, String>| -> f64 {
        let t = &h["server-timing"];
        t.strip_prefix("app;dur=")
            .and_then(|d| d.parse().ok())
            .unwrap_or_else(|| panic!("server-timing {t:?}"))
    };
    let path = invoke_path(&ids["echo"]);
    let start = std::time::Instant::now();
    let (st, h, v) = s
        .call_with_headers(
            "POST",
            &path,
            Some(&o.member),
            Some(json!({"action": "echo", "input": {"x": 1}})),
        )
        .await;
    let waited = start.elapsed().as_secs_f64() * 1e3;
    assert_eq!(st, 200, "{v}");
    let sandbox = v["stats"]["duration_us"].as_f64().unwrap() / 1e3;
    let server = dur(&h);
    assert!(
        sandbox <= server && server <= waited,
        "sandbox {sandbox} ms, server {server} ms, client {waited} ms"
    );
    let (st, h, _) = s.call_with_headers("POST", &path, None, None).await;
    assert_eq!(st, 401);
    assert!(dur(&h) >= 0.0);
}
