//! Pilot guardrails (`[pilot]` in `tenantry.toml`): an org cap, a list of plugins
//! orgs may install, and a connector list that caps every install's egress grants.
//! Refusals are `403 POLICY_DENIED` naming the policy, and change nothing.

mod common;

use common::*;
use serde_json::{Value, json};

const PILOT: &str = r#"
[pilot]
max_orgs = 2
plugins = ["@examples/echo", "@examples/http-fetch"]
egress = ["*.example.com"]
"#;

fn refused_by(answer: (u16, Value), policy: &str) -> Value {
    let v = assert_refused(answer, 403, "POLICY_DENIED");
    assert_eq!(v["error"]["details"]["policy"], policy, "{v}");
    v
}

#[tokio::test]
async fn a_plugin_outside_the_allow_list_cannot_be_installed_nor_egress_outside_the_connector_list_granted()
 {
    let config = tempfile::tempdir().expect("tempdir");
    let path = config.path().join("tenantry.toml");
    std::fs::write(&path, PILOT).expect("write config");
    let mut s = Server::start_configured(&path, false).await;
    let op = s.operator_key.clone();
    publish_examples(&s).await;
    let o = org(&s, "acme").await;

    // Every member sees the platform's guardrails.
    let limits = s.get("/v1/limits", &o.member).await;
    assert_eq!(
        limits["pilot"],
        json!({"max_orgs": 2, "plugins": ["@examples/echo", "@examples/http-fetch"], "egress": ["*.example.com"]}),
        "{limits}"
    );

    // The org cap.
    s.create("/v1/orgs", &op, json!({"name": "globex"})).await;
    let third = s
        .call(
            "POST",
            "/v1/orgs",
            Some(&op),
            Some(json!({"name": "initech"})),
        )
        .await;
    refused_by(third, "max_orgs");
    let orgs = s.get("/v1/orgs", &op).await;
    assert_eq!(orgs.as_array().map(Vec::len), Some(2), "{orgs}");

    // The plugin list: refused before anything is written.
    let kv = s
        .call(
            "POST",
            "/v1/installs",
            Some(&o.owner),
            Some(json!({"plugin": "@examples/kv-counter", "grants": {"kv": true}})),
        )
        .await;
    let v = refused_by(kv, "plugins");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("pilot.plugins")),
        "says what to do: {v}"
    );
    let installs = s.get("/v1/installs", &o.owner).await;
    assert_eq!(installs, json!([]));

    // The connector list: every egress grant must fall within it.
    for grants in [
        json!(["example.com"]),
        json!(["localhost"]),
        json!(["api.example.com", "127.0.0.1"]),
    ] {
        let answer = s
            .call(
                "POST",
                "/v1/installs",
                Some(&o.owner),
                Some(json!({"plugin": "@examples/http-fetch", "grants": {"egress": grants}})),
            )
            .await;
        refused_by(answer, "egress");
    }
    let fetch = s
        .install(
            &o.owner,
            json!({"plugin": "@examples/http-fetch", "grants": {"egress": ["api.example.com", "*.example.com"]}}),
        )
        .await;
    // Widening the grants later is held to the same list; the install is unchanged.
    let widen = s
        .call(
            "PATCH",
            &format!("/v1/installs/{fetch}"),
            Some(&o.owner),
            Some(json!({"grants": {"egress": ["localhost"]}})),
        )
        .await;
    refused_by(widen, "egress");
    let got = s.get(&format!("/v1/installs/{fetch}"), &o.owner).await;
    assert_eq!(
        got["grants"]["egress"],
        json!(["api.example.com", "*.example.com"]),
        "{got}"
    );
    // An allowed plugin with no egress installs as usual.
    let echo = s.install(&o.owner, echo_install()).await;
    s.run(&o.member, &echo, "echo", json!({})).await;
    s.get(&format!("/v1/orgs/{}/audit/verify", o.id), &op).await;

    // Narrowing the list stops the installs made before, at their next invocation.
    std::fs::write(&path, PILOT.replace("\"@examples/echo\", ", "")).expect("write config");
    s.terminate_and_restart();
    let answer = s
        .call(
            "POST",
            &invoke_path(&echo),
            Some(&o.member),
            Some(json!({"action": "echo", "input": {}})),
        )
        .await;
    refused_by(answer, "plugins");
}

/// A bad `[pilot]` entry stops the server at startup with a message naming it.
#[test]
fn a_bad_pilot_entry_is_refused_at_startup() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (bad, names) in [
        ("[pilot]\nplugins = [\"examples/*\"]\n", "pilot.plugins"),
        (
            "[pilot]\negress = [\"https://x.example\"]\n",
            "pilot.egress",
        ),
        ("[pilot]\nmax_org = 3\n", "max_org"),
    ] {
        let path = dir.path().join("tenantry.toml");
        std::fs::write(&path, bad).expect("write");
        let out = std::process::Command::new(BIN)
            .args(["serve", "--config"])
            .arg(&path)
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(["--listen", "127.0.0.1:0"])
            .env_remove("TENANTRY_DATABASE_URL")
            .output()
            .expect("run tenantry serve");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{bad}: {stderr}");
        assert!(stderr.contains(names), "{bad}: {stderr}");
    }
}
