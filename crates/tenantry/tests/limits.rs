//! Tiers, quotas and rate limits on one node, over HTTP: each quota's (N+1)th use is
//! refused with its code and reset time, windows roll over on an injected clock,
//! failed-before-start invocations are refunded, and the 429s carry the headers.

mod common;

use common::*;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use time::OffsetDateTime;
use time::macros::datetime;

/// A clock the test moves by hand.
#[derive(Clone)]
struct TestClock(Arc<Mutex<OffsetDateTime>>);

impl TestClock {
    fn at(t: OffsetDateTime) -> Self {
        Self(Arc::new(Mutex::new(t)))
    }
    fn set(&self, t: OffsetDateTime) {
        *self.0.lock().unwrap() = t;
    }
    fn now_fn(&self) -> tenantry_service::limits::NowFn {
        let c = self.0.clone();
        Arc::new(move || *c.lock().unwrap())
    }
}

/// A server in the test process whose quota clock starts at `t`.
async fn start_at(t: OffsetDateTime) -> (TestClock, Server) {
    let clock = TestClock::at(t);
    let s = Server::start_in_process(clock.now_fn()).await;
    (clock, s)
}

/// Publishes the examples, creates a starter org with `echo`, `attacks` and
/// `tool-caller` installed, and applies `overrides` as the operator.
async fn setup(s: &Server, overrides: Value) -> (Org, String, String, String) {
    publish_examples(s).await;
    let (o, echo) = org_with_install(s, "acme", echo_install()).await;
    let attacks = s
        .install(&o.admin, json!({"plugin": "@examples/attacks"}))
        .await;
    let tools = s
        .install(
            &o.admin,
            json!({"plugin": "@examples/tool-caller", "grants": {"tools": ["@examples/echo"]}}),
        )
        .await;
    s.set_limits(&o.id, overrides).await;
    (o, echo, attacks, tools)
}

/// Invokes `action` of `install` as the org's member, with an empty input.
async fn invoke(s: &Server, o: &Org, install: &str, action: &str) -> (u16, Value) {
    s.invoke(&o.member, install, action, json!({})).await
}

/// Like [`invoke`], also returning the response headers.
async fn invoke_with_headers(
    s: &Server,
    key: &str,
    install: &str,
    action: &str,
) -> (u16, std::collections::HashMap<String, String>, Value) {
    let body = json!({"action": action, "input": {}});
    s.call_with_headers("POST", &invoke_path(install), Some(key), Some(body))
        .await
}

async fn quota(s: &Server, o: &Org, name: &str) -> Value {
    let v = s.get("/v1/limits", &o.viewer).await;
    quota_in(&v, name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn executions_per_day_refuses_the_n_plus_first_until_the_next_utc_day() {
    let (clock, s) = start_at(datetime!(2030-01-30 23:59:00 UTC)).await;
    let (o, echo, _, _) = setup(&s, json!({"executions_per_day": 3})).await;
    for _ in 0..3 {
        assert_outcome(invoke(&s, &o, &echo, "echo").await, "OK");
    }
    let (st, h, v) = invoke_with_headers(&s, &o.member, &echo, "echo").await;
    assert_eq!(st, 429, "{v}");
    assert_eq!(v["error"]["code"], "QUOTA_EXCEEDED");
    assert_eq!(v["error"]["details"]["quota"], "executions_per_day");
    assert_eq!(v["error"]["details"]["limit"], 3);
    assert_eq!(v["error"]["details"]["resets_at"], "2030-01-31T00:00:00Z");
    assert_eq!(h.get("retry-after").map(String::as_str), Some("60"));
    let q = quota(&s, &o, "executions_per_day").await;
    assert_eq!(
        (q["used"].as_u64(), q["limit"].as_u64()),
        (Some(3), Some(3))
    );
    assert_eq!(q["resets_at"], "2030-01-31T00:00:00Z");

    clock.set(datetime!(2030-01-31 00:00:01 UTC));
    assert_outcome(invoke(&s, &o, &echo, "echo").await, "OK");
    assert_eq!(quota(&s, &o, "executions_per_day").await["used"], 1);
    // The month counted all four.
    assert_eq!(quota(&s, &o, "executions_per_month").await["used"], 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn executions_per_month_refuses_until_the_first_of_the_next_month() {
    let (clock, s) = start_at(datetime!(2030-03-15 12:00:00 UTC)).await;
    let (o, echo, _, _) = setup(&s, json!({"executions_per_month": 2})).await;
    for _ in 0..2 {
        assert_eq!(invoke(&s, &o, &echo, "echo").await.0, 200);
    }
    let (st, v) = invoke(&s, &o, &echo, "echo").await;
    assert_eq!(st, 429, "{v}");
    assert_eq!(v["error"]["code"], "QUOTA_EXCEEDED");
    assert_eq!(v["error"]["details"]["quota"], "executions_per_month");
    assert_eq!(v["error"]["details"]["resets_at"], "2030-04-01T00:00:00Z");
    // A new day in the same month does not help; a new month does.
    clock.set(datetime!(2030-03-31 23:59:59 UTC));
    assert_eq!(invoke(&s, &o, &echo, "echo").await.0, 429);
    clock.set(datetime!(2030-04-01 00:00:00 UTC));
    assert_outcome(invoke(&s, &o, &echo, "echo").await, "OK");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_before_start_invocations_are_refunded_but_runs_that_fail_are_not() {
    let (_clock, s) = start_at(datetime!(2030-06-01 08:00:00 UTC)).await;
    let (o, echo, attacks, _) = setup(
        &s,
        json!({"executions_per_day": 2, "max_wall_time_ms": 200}),
    )
    .await;
    // An unknown action is refused before the sandbox starts: refunded, every time.
    for _ in 0..4 {
        let (_, v) = invoke(&s, &o, &echo, "no-such-action").await;
        assert_ne!(v["outcome"], "OK", "{v}");
        assert_ne!(v["error"]["code"], "QUOTA_EXCEEDED", "{v}");
    }
    assert_eq!(quota(&s, &o, "executions_per_day").await["used"], 0);
    // A run that fails (stopped by its CPU budget or wall time) ran, so it counts.
    let (st, v) = invoke(&s, &o, &attacks, "loop").await;
    assert_stopped(st, &v);
    assert_eq!(quota(&s, &o, "executions_per_day").await["used"], 1);
    assert_eq!(invoke(&s, &o, &echo, "echo").await.0, 200);
    assert_refused(invoke(&s, &o, &echo, "echo").await, 429, "QUOTA_EXCEEDED");
}

/// Invokes `tool-caller` (install `tools`) to call `@examples/echo` as a tool; the
/// response body (the HTTP status is 200 whatever the plugin's outcome).
async fn call_echo_as_tool(s: &Server, o: &Org, tools: &str) -> Value {
    let call = json!({"plugin": "@examples/echo", "action": "echo", "input": {"n": 1}});
    s.run(&o.member, tools, "call", call).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tool_calls_per_day_are_counted_and_refused_beyond_the_quota() {
    let (_clock, s) = start_at(datetime!(2030-06-02 08:00:00 UTC)).await;
    let (o, _, _, tools) = setup(&s, json!({"tool_calls_per_day": 1})).await;
    let v = call_echo_as_tool(&s, &o, &tools).await;
    assert_eq!(v["outcome"], "OK", "{v}");
    let v = call_echo_as_tool(&s, &o, &tools).await;
    assert_ne!(v["outcome"], "OK", "{v}");
    assert_message_contains(&v, "tool_calls_per_day");
    assert_eq!(quota(&s, &o, "tool_calls_per_day").await["used"], 1);
}

#[tokio::test]
async fn quota_counts_resume_after_a_restart_each_from_its_own_runs() {
    let mut s = Server::start();
    let (o, echo, _, tools) = setup(&s, json!({"tool_calls_per_day": 2})).await;
    let v = call_echo_as_tool(&s, &o, &tools).await;
    assert_eq!(v["outcome"], "OK", "{v}");
    assert_eq!(invoke(&s, &o, &echo, "echo").await.0, 200);
    async fn counts(s: &Server, o: &Org) -> (Value, Value) {
        (
            quota(s, o, "executions_per_day").await["used"].clone(),
            quota(s, o, "tool_calls_per_day").await["used"].clone(),
        )
    }
    assert_eq!(counts(&s, &o).await, (json!(2), json!(1)));

    // The counters lived in this process only; the new one seeds each from the
    // durable usage records: two requested runs, one run started by a tool call.
    s.terminate_and_restart();
    assert_eq!(counts(&s, &o).await, (json!(2), json!(1)));
    // The tool call's own usage event names its caller; the others name none.
    let events = s.get("/v1/usage", &o.admin).await;
    let callers: Vec<&Value> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["caller_id"])
        .collect();
    assert_eq!(callers.len(), 3, "{events}");
    assert_eq!(
        callers
            .iter()
            .filter(|c| **c == &v["invocation_id"])
            .count(),
        1,
        "{events}"
    );
    assert_eq!(callers.iter().filter(|c| c.is_null()).count(), 2);
    let v = call_echo_as_tool(&s, &o, &tools).await;
    assert_eq!(v["outcome"], "OK", "{v}");
    // The third tool call of the day is refused (the caller sees it fail).
    let v = call_echo_as_tool(&s, &o, &tools).await;
    assert_message_contains(&v, "tool_calls_per_day quota (2)");
}

#[tokio::test]
async fn concurrent_executions_beyond_the_limit_are_refused() {
    let s = Server::start();
    // The loop holds the org's one lease until its CPU budget runs out. The budget
    // follows the wall time (fuel per ms), and on a fast, idle machine 1.5 s of it
    // was spent in 35 ms, before the probe arrived: give it 20 s (about half a
    // second of spinning here, longer under a loaded test run).
    let (o, echo, attacks, _) = setup(
        &s,
        json!({"concurrent_executions": 1, "max_wall_time_ms": 20000}),
    )
    .await;
    // The loop and a probe race for the one lease. The probe starts after the loop
    // (a head start, not a synchronisation), then tries until the loop holds the
    // lease (a probe is refused) or the loop has ended. If a probe happened to hold
    // the lease when the loop arrived, the loop was the one refused: try again.
    let mut attempt = 0;
    let ((slow_status, slow_body), (st, h, v)) = loop {
        attempt += 1;
        let slow_done = std::sync::atomic::AtomicBool::new(false);
        let slow = async {
            let r = invoke(&s, &o, &attacks, "loop").await;
            slow_done.store(true, std::sync::atomic::Ordering::SeqCst);
            r
        };
        let probe = async {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            loop {
                let r = invoke_with_headers(&s, &o.member, &echo, "echo").await;
                if r.0 != 200 || slow_done.load(std::sync::atomic::Ordering::SeqCst) {
                    break r;
                }
                // Paced, so the probes stay far below the org's rate limit.
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        };
        let (slow, probe) = tokio::join!(slow, probe);
        let loop_refused = slow.0 == 429;
        if !loop_refused || attempt == 3 {
            break (slow, probe);
        }
    };
    assert_eq!(st, 429, "{v}");
    assert_eq!(v["error"]["code"], "RATE_LIMITED");
    assert_eq!(v["error"]["details"]["limit"], "concurrent_executions");
    assert!(h.contains_key("retry-after"));
    // The loop is stopped by its fuel or its wall time, whichever comes first.
    assert_stopped(slow_status, &slow_body);
    // The lease is back: the next invocation runs.
    assert_outcome(invoke(&s, &o, &echo, "echo").await, "OK");
}

/// A `200` whose run was stopped by its CPU budget or its wall time.
fn assert_stopped(st: u16, v: &Value) {
    assert_eq!(st, 200);
    assert!(
        ["TIMEOUT", "OUT_OF_FUEL"].contains(&v["outcome"].as_str().unwrap_or_default()),
        "{v}"
    );
}

/// A `429 RATE_LIMITED` from the org's rate limit, with a `Retry-After` in whole
/// seconds.
fn assert_org_rate_refusal(st: u16, h: &std::collections::HashMap<String, String>, v: &Value) {
    assert_eq!(st, 429, "{v}");
    assert_eq!(v["error"]["code"], "RATE_LIMITED");
    assert_eq!(v["error"]["details"]["limit"], "org");
    let retry: u64 = h["retry-after"].parse().expect("whole seconds");
    assert!((1..=30).contains(&retry), "retry-after {retry}");
}

#[tokio::test]
async fn org_rate_limit_answers_429_with_retry_after_and_ratelimit_headers() {
    let s = Server::start();
    let (o, echo, attacks, _) = setup(&s, json!({"invocations_per_minute": 2})).await;
    assert_eq!(invoke(&s, &o, &echo, "echo").await.0, 200);
    assert_eq!(invoke(&s, &o, &attacks, "ok").await.0, 200);
    let (st, h, v) = invoke_with_headers(&s, &o.member, &echo, "echo").await;
    assert_org_rate_refusal(st, &h, &v);
    assert!(h["ratelimit-policy"].contains("q=2"), "{h:?}");
    assert!(h["ratelimit-policy"].contains("w=60"), "{h:?}");
    assert!(h["ratelimit"].contains("r=0"), "{h:?}");
    // Another org is not affected.
    assert_eq!(another_orgs_echo(&s).await, 200);
}

/// Status of an echo invocation by a new org (with its own echo install).
async fn another_orgs_echo(s: &Server) -> u16 {
    let body = json!({"plugin": "@examples/echo", "config": {"greeting": "yo"}});
    let (other, echo) = org_with_install(s, "other", body).await;
    invoke(s, &other, &echo, "echo").await.0
}

#[tokio::test]
async fn admitted_invocations_say_where_each_rate_limit_stands() {
    let s = Server::start();
    let (o, echo, _, _) = setup(&s, json!({"invocations_per_minute": 5})).await;
    s.patch(
        &format!("/v1/installs/{echo}"),
        &o.admin,
        json!({"rate_limit_per_minute": 3}),
    )
    .await;
    for remaining in [(4, 2), (3, 1)] {
        let (st, h, v) = invoke_with_headers(&s, &o.member, &echo, "echo").await;
        assert_outcome((st, v), "OK");
        assert_eq!(
            h["ratelimit-policy"], "\"org\";q=5;w=60, \"install\";q=3;w=60",
            "{h:?}"
        );
        let state = &h["ratelimit"];
        let (org_r, install_r) = remaining;
        assert!(
            state.starts_with(&format!("\"org\";r={org_r};t="))
                && state.contains(&format!(", \"install\";r={install_r};t=")),
            "{state}"
        );
        assert!(!h.contains_key("retry-after"), "{h:?}");
    }
}

#[tokio::test]
async fn a_rate_limited_org_is_refused_before_its_install_is_looked_up() {
    let s = Server::start();
    let (o, echo, _, _) = setup(&s, json!({"invocations_per_minute": 1})).await;
    assert_eq!(invoke(&s, &o, &echo, "echo").await.0, 200);
    // Over the limit, even a request for an install that does not exist is counted
    // and refused as rate limited: refusing is cheap.
    let missing = "01a20000-0000-7000-8000-000000000000";
    let (st, v) = invoke(&s, &o, missing, "echo").await;
    assert_eq!(st, 429, "{v}");
    assert_eq!(v["error"]["code"], "RATE_LIMITED");
}

#[tokio::test]
async fn hammering_beyond_the_org_rate_keeps_getting_the_same_refusal_and_spares_others() {
    let s = Server::start();
    let (o, echo, _, _) = setup(&s, json!({"invocations_per_minute": 2})).await;
    for _ in 0..2 {
        assert_eq!(invoke(&s, &o, &echo, "echo").await.0, 200);
    }
    // Every repeat is refused the same way, whether the limiter or the node's
    // memory of the last refusal answers (the second and later ones).
    for _ in 0..20 {
        let (st, h, v) = invoke_with_headers(&s, &o.member, &echo, "echo").await;
        assert_org_rate_refusal(st, &h, &v);
        assert_eq!(h["ratelimit-policy"], "\"org\";q=2;w=60");
        assert!(h["ratelimit"].starts_with("\"org\";r=0;t="), "{h:?}");
    }
    // The org's other keys are refused too (one limit per org), a key that never
    // authenticated is still unauthenticated, and another org is untouched.
    let (st, _) = s.invoke(&o.admin, &echo, "echo", json!({})).await;
    assert_eq!(st, 429);
    let stranger = "tny_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let answer = s.invoke(stranger, &echo, "echo", json!({})).await;
    assert_refused(answer, 401, "UNAUTHENTICATED");
    assert_eq!(another_orgs_echo(&s).await, 200);
    // None of the refusals was metered.
    assert_eq!(quota(&s, &o, "executions_per_day").await["used"], 2);
}

#[tokio::test]
async fn an_install_rate_limit_below_the_orgs_applies_to_that_install_only() {
    let s = Server::start();
    let (o, echo, attacks, _) = setup(&s, json!({})).await;
    let path = format!("/v1/installs/{echo}");
    // Zero is refused and changes nothing.
    s.refused(
        "PATCH",
        &path,
        Some(&o.admin),
        Some(json!({"rate_limit_per_minute": 0})),
        (400, "INVALID_REQUEST"),
    )
    .await;
    let v = s
        .patch(&path, &o.admin, json!({"rate_limit_per_minute": 1}))
        .await;
    assert_eq!(v["rate_limit_per_minute"], 1, "{v}");
    assert_eq!(invoke(&s, &o, &echo, "echo").await.0, 200);
    let (st, v) = invoke(&s, &o, &echo, "echo").await;
    assert_eq!(st, 429, "{v}");
    assert_eq!(v["error"]["details"]["limit"], "install");
    assert_eq!(invoke(&s, &o, &attacks, "ok").await.0, 200);
    // null removes the install's own limit.
    s.patch(&path, &o.admin, json!({"rate_limit_per_minute": null}))
        .await;
    assert_eq!(invoke(&s, &o, &echo, "echo").await.0, 200);
}

#[tokio::test]
async fn standing_quotas_refuse_one_more_install_or_agent() {
    let s = Server::start();
    let (o, _, _, _) = setup(&s, json!({"plugins_installed": 3, "agents": 1})).await;
    let (st, v) = s
        .call(
            "POST",
            "/v1/installs",
            Some(&o.admin),
            Some(json!({"plugin": "@examples/kv-counter", "grants": {"kv": true}})),
        )
        .await;
    assert_eq!(st, 429, "{v}");
    assert_eq!(v["error"]["code"], "QUOTA_EXCEEDED");
    assert_eq!(v["error"]["details"]["quota"], "plugins_installed");
    let list = s.get("/v1/installs", &o.admin).await;
    assert_eq!(list.as_array().unwrap().len(), 3);
    let (st, v) = s
        .call(
            "POST",
            "/v1/agents",
            Some(&o.owner),
            Some(json!({"name": "bot2", "on_behalf_of": o.owner_user_id, "grants": ["invoke"]})),
        )
        .await;
    assert_eq!(
        (st, v["error"]["details"]["quota"].as_str()),
        (429, Some("agents")),
        "{v}"
    );
}

#[tokio::test]
async fn limits_are_visible_to_members_and_only_the_operator_overrides_them() {
    let s = Server::start();
    let (o, _, _, _) = setup(&s, json!({"executions_per_day": 7})).await;
    let v = s.get("/v1/limits", &o.viewer).await;
    assert_eq!(v["effective"]["name"], "starter");
    assert_eq!(v["effective"]["executions_per_day"], 7);
    assert_eq!(v["effective"]["concurrent_executions"], 5);
    assert_eq!(
        v["overrides"],
        json!({
            "executions_per_day": 7, "executions_per_month": null, "max_wall_time_ms": null,
            "concurrent_executions": null, "host_calls_per_execution": null,
            "tool_calls_per_day": null, "memory_bytes": null, "artifact_bytes": null,
            "output_bytes": null, "plugins_installed": null, "storage_bytes": null,
            "agents": null, "invocations_per_minute": null
        })
    );
    assert_eq!(v["limiter"]["backend"], "local");
    let path = format!("/v1/orgs/{}/limits", o.id);
    // The org's own owner cannot raise its limits.
    let (st, _) = s
        .call(
            "PUT",
            &path,
            Some(&o.owner),
            Some(json!({"executions_per_day": 1000000})),
        )
        .await;
    assert!(st == 401 || st == 403, "owner got {st}");
    // Bad overrides are refused and change nothing.
    for bad in [
        json!({"memory_bytes": 5}),
        json!({"bogus": 1}),
        json!({"executions_per_day": -1}),
        json!({"max_wall_time_ms": 0}),
    ] {
        let (st, v) = s
            .call("PUT", &path, Some(&s.operator_key), Some(bad.clone()))
            .await;
        assert_eq!(st, 400, "{bad} -> {v}");
    }
    let v = s.get("/v1/limits", &o.member).await;
    assert_eq!(v["effective"]["executions_per_day"], 7);
    // {} clears the overrides.
    s.set_limits(&o.id, json!({})).await;
    let v = s.get("/v1/limits", &o.member).await;
    assert_eq!(v["effective"]["executions_per_day"], 1000);
}

#[tokio::test]
async fn custom_tiers_come_from_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("tenantry.toml");
    std::fs::write(
        &cfg,
        "[tiers.pro]\nbase = \"starter\"\nexecutions_per_day = 7000\ninvocations_per_minute = 1200\n\n\
         [tiers.free]\nexecutions_per_day = 50\n",
    )
    .unwrap();
    let s = Server::start_configured(&cfg, false).await;
    let op = s.operator_key.as_str();
    for (tier, per_day, concurrent) in [("pro", 7000, 5), ("free", 50, 1)] {
        let org = json!({"name": format!("org-{tier}"), "tier": tier});
        let id = id_of(&s.create("/v1/orgs", op, org).await);
        let (_, key) = provision_user(&s, &id, "v", "viewer", "v").await;
        let v = s.get("/v1/limits", &key).await;
        assert_eq!(v["effective"]["name"], tier);
        assert_eq!(v["effective"]["executions_per_day"], per_day);
        assert_eq!(v["effective"]["concurrent_executions"], concurrent);
    }
    let gold = json!({"name": "x", "tier": "gold"});
    let (st, v) = s.call("POST", "/v1/orgs", Some(op), Some(gold)).await;
    assert_eq!(st, 400);
    assert_message_contains(&v, "pro");
}
