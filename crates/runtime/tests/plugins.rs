//! Happy paths of every example plugin.

mod support;

use serde_json::json;
use support::*;
use tenantry_core::Outcome;
use tenantry_core::manifest::Grants;
use tenantry_runtime::*;

#[tokio::test]
async fn echo_returns_input_and_config() {
    let w = world(RuntimeConfig::default());
    let r = w.run_fresh(&w.load("echo"), "echo", r#"{"a": 1}"#).await;
    assert_eq!(out(&r), json!({"echo": {"a": 1}, "greeting": "hi"}));
    assert!(r.stats.fuel > 0 && r.stats.peak_memory_bytes > 0 && r.stats.bytes_out > 0);
}

/// The hand-written WAT component (the benchmark's trivial plugin) is a valid
/// plugin: it describes itself and returns its input unchanged.
#[tokio::test]
async fn wat_echo_returns_its_input() {
    let w = world(RuntimeConfig::default());
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/plugins-wat/echo.wat"
    );
    let p =
        w.rt.load("wat-echo", &wat::parse_file(path).unwrap())
            .unwrap();
    let input = r#"{"message":"hello","n":42}"#;
    let r = w.run_fresh(&p, "echo", input).await;
    assert_eq!(r.outcome, Outcome::Ok, "{r:?}");
    assert_eq!(r.output.as_deref(), Some(input));
    assert_eq!(r.stats.bytes_out, input.len() as u64);
}

#[tokio::test]
async fn kv_counter_keeps_state_per_install() {
    let w = world(RuntimeConfig::default());
    let p = w.load("kv-counter");
    let g = kv_grant();
    let (a, b) = (install(), install());
    for _ in 0..3 {
        w.run(&p, a, "increment", "{}", &g, Limits::default()).await;
    }
    assert_eq!(
        out(&w.run(&p, a, "get", "{}", &g, Limits::default()).await)["value"],
        3
    );
    assert_eq!(
        out(&w.run(&p, b, "get", "{}", &g, Limits::default()).await)["value"],
        0
    );
}

#[tokio::test]
async fn secret_user_reads_its_granted_secret() {
    let w = world(RuntimeConfig::default());
    let i = install();
    w.secrets
        .0
        .lock()
        .unwrap()
        .insert((i.install_id, "api_token".into()), "abcd".into());
    let g = Grants {
        secrets: vec!["api_token".into()],
        ..Grants::default()
    };
    let v = out(&w
        .run(
            &w.load("secret-user"),
            i,
            "check",
            "{}",
            &g,
            Limits::default(),
        )
        .await);
    assert_eq!(
        (v["set"].clone(), v["length"].clone()),
        (json!(true), json!(4))
    );
    assert!(!v.to_string().contains("abcd"));
}

#[tokio::test]
async fn tool_caller_calls_another_plugin() {
    let w = world(RuntimeConfig::default());
    let me = install();
    let echo = InstallRef {
        org_id: me.org_id,
        install_id: tenantry_core::InstallId::new(),
    };
    w.tools.installs.lock().unwrap().insert(
        "@acme/echo".into(),
        (echo, w.load("echo"), Grants::default()),
    );
    let g = Grants {
        tools: vec!["@acme/echo#echo".into()],
        ..Grants::default()
    };
    let input = json!({"plugin": "@acme/echo", "action": "echo", "input": {"x": 1}}).to_string();
    let v = out(&w
        .run(
            &w.load("tool-caller"),
            me,
            "call",
            &input,
            &g,
            Limits::default(),
        )
        .await);
    assert_eq!(v["output"]["echo"], json!({"x": 1}));
}

#[tokio::test]
async fn unknown_action_is_not_found() {
    let w = world(RuntimeConfig::default());
    let r = w.run_fresh(&w.load("echo"), "nope", "{}").await;
    assert_eq!(r.outcome, Outcome::NotFound);
}
