//! Limits across nodes: two `tenantry serve` processes sharing one PostgreSQL database
//! and one Redis enforce one org's rate limit and daily quota globally; and a Redis
//! that dies mid-test degrades rate limits to local decisions while billing quotas
//! refuse, with recovery when it returns.
//!
//! Redis: the test Redis (`tenantry_test_services::redis_url`) for the shared test;
//! the outage test starts its own `redis-server` on a free port.

mod common;

use base64::Engine;
use common::*;
use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn redis_url() -> String {
    tenantry_test_services::redis_url()
}

/// Fails with one line if Redis is unreachable.
async fn require_redis(url: &str) -> tenantry_limits::RedisConn {
    let conn = tenantry_limits::RedisConn::connect(url, tenantry_limits::RedisOptions::default())
        .await
        .unwrap_or_else(|e| {
            panic!("Redis unreachable at {url} ({e}); start Redis or set TENANTRY_TEST_REDIS_URL")
        });
    conn.ping().await.unwrap_or_else(|e| {
        panic!("Redis unreachable at {url} ({e}); start Redis or set TENANTRY_TEST_REDIS_URL")
    });
    conn
}

/// A fresh master key both nodes share (base64 of 32 random bytes).
fn master_key() -> String {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).expect("random bytes");
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// An org on `s` with `echo` installed and `overrides` applied; returns (org, install).
async fn org_with_echo(s: &Server, name: &str, overrides: Value) -> (Org, String) {
    let (o, echo) = org_with_install(s, name, echo_install()).await;
    s.set_limits(&o.id, overrides).await;
    (o, echo)
}

/// Two nodes on one new PostgreSQL database sharing a master key (and whatever
/// else `args` says); node A owns the database, and both use its operator key.
async fn two_nodes(args: Vec<String>) -> (Server, Server) {
    let db = Server::migrated_db().await;
    let launch = Launch {
        database_url: Some(db.app_url.clone()),
        args,
        env: vec![("TENANTRY_MASTER_KEY".into(), master_key())],
    };
    let a = Server::start_with(launch.clone(), Some(db));
    let mut b = Server::start_with(launch, None);
    b.operator_key = a.operator_key.clone();
    (a, b)
}

/// The echo invocation the tests send, with an empty input.
fn echo_call() -> Value {
    json!({"action": "echo", "input": {}})
}

/// Sends `n` invocations alternating between the nodes, all in flight at once;
/// returns the statuses and error codes per node.
async fn hammer(
    nodes: [&Server; 2],
    o: &Org,
    install: &str,
    n: usize,
) -> Vec<(usize, u16, String)> {
    let path = format!("/v1/installs/{install}/invoke");
    let calls = (0..n).map(|i| {
        let node = nodes[i % 2];
        let path = path.clone();
        async move {
            let (st, v) = node
                .call(
                    "POST",
                    &path,
                    Some(&o.member),
                    Some(json!({"action": "echo", "input": {"i": i}})),
                )
                .await;
            (
                i % 2,
                st,
                v["error"]["code"].as_str().unwrap_or("").to_string(),
            )
        }
    });
    futures::future::join_all(calls).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_one_rate_limit_and_one_daily_quota() {
    let redis = redis_url();
    let conn = require_redis(&redis).await;
    let (a, b) = two_nodes(vec!["--redis-url".into(), redis.clone()]).await;
    publish_examples(&a).await;

    // Rate limit: 10 per minute for the org, whichever node serves.
    let (o1, echo1) = org_with_echo(
        &a,
        "rate",
        json!({"invocations_per_minute": 10, "concurrent_executions": 100}),
    )
    .await;
    // Node A uses 6 of the 10; node B, which alone would admit 10, admits only what
    // is left; then both nodes at once admit (almost) nothing more.
    let path = invoke_path(&echo1);
    for _ in 0..6 {
        a.ok("POST", &path, Some(&o1.member), Some(echo_call()), 200)
            .await;
    }
    let mut on_b = Vec::new();
    for _ in 0..10 {
        let (st, v) = b
            .call("POST", &path, Some(&o1.member), Some(echo_call()))
            .await;
        on_b.push((st, v["error"]["details"]["limit"].clone()));
    }
    let b_admitted = on_b.iter().filter(|r| r.0 == 200).count();
    assert!(
        (4..=5).contains(&b_admitted),
        "node B admitted {b_admitted} after node A used 6 of 10: {on_b:?}"
    );
    assert!(
        on_b.iter()
            .all(|r| r.0 == 200 || (r.0 == 429 && r.1 == "org")),
        "{on_b:?}"
    );
    let results = hammer([&a, &b], &o1, &echo1, 20).await;
    let late = results.iter().filter(|r| r.1 == 200).count();
    assert!(
        6 + b_admitted + late <= 11,
        "admitted {} in all (limit 10/min, one token per 6 s): {results:?}",
        6 + b_admitted + late
    );
    assert!(
        results.iter().all(|r| r.1 == 200 || r.2 == "RATE_LIMITED"),
        "{results:?}"
    );

    // Daily quota: 12 executions, whichever node serves.
    let (o2, echo2) = org_with_echo(
        &b,
        "quota",
        json!({"executions_per_day": 12, "invocations_per_minute": 6000, "concurrent_executions": 100}),
    )
    .await;
    let results = hammer([&a, &b], &o2, &echo2, 30).await;
    let admitted = results.iter().filter(|r| r.1 == 200).count();
    let refused = results.iter().filter(|r| r.2 == "QUOTA_EXCEEDED").count();
    assert_eq!((admitted, refused), (12, 18), "{results:?}");
    for s in [&a, &b] {
        let v = s.get("/v1/limits", &o2.viewer).await;
        assert_eq!(v["limiter"]["backend"], "redis");
        let day = quota_in(&v, "executions_per_day");
        assert_eq!(
            (day["used"].as_u64(), day["limit"].as_u64()),
            (Some(12), Some(12))
        );
    }
    for o in [&o1, &o2] {
        conn.purge_org(&o.id).await.expect("purge test keys");
    }
}

/// A `redis-server` of the test's own on a free port, keeping nothing on disk.
struct OwnRedis {
    port: u16,
    child: Child,
}

impl OwnRedis {
    fn start(port: u16) -> OwnRedis {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run redis-server ({e}); install Redis (Debian package redis-server)")
            });
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        OwnRedis { port, child }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_rate_limits_fall_back_to_local_and_billing_quotas_refuse_then_recover() {
    let mut redis = OwnRedis::start(free_port());
    require_redis(&redis.url()).await;
    let s = Server::start_with(
        Launch {
            args: vec!["--redis-url".into(), redis.url()],
            ..Launch::default()
        },
        None,
    );
    publish_examples(&s).await;
    let (o, echo) = org_with_echo(&s, "acme", json!({"invocations_per_minute": 4})).await;
    let path = invoke_path(&echo);
    let v = s
        .ok("POST", &path, Some(&o.member), Some(echo_call()), 200)
        .await;
    assert_eq!(v["outcome"], "OK");

    redis.kill();
    // Billing quotas fail closed: metered work is refused, not run unrecorded. The
    // rate limit is still enforced, by this node alone: of 8 more requests, the local
    // limiter (4 per minute, fresh) admits 4 to the quota check and refuses the rest.
    let mut codes = Vec::new();
    for _ in 0..8 {
        let (st, v) = s
            .call("POST", &path, Some(&o.member), Some(echo_call()))
            .await;
        codes.push((st, v["error"]["code"].as_str().unwrap_or("").to_string()));
    }
    let unavailable = codes
        .iter()
        .filter(|c| c.0 == 503 && c.1 == "UNAVAILABLE")
        .count();
    let limited = codes
        .iter()
        .filter(|c| c.0 == 429 && c.1 == "RATE_LIMITED")
        .count();
    assert_eq!((unavailable, limited), (4, 4), "{codes:?}");
    let v = s.get("/v1/limits", &o.viewer).await;
    assert_eq!(v["limiter"]["degraded"], true, "{v}");
    assert!(
        v["limiter"]["fallback_decisions"].as_u64().unwrap() > 0,
        "{v}"
    );
    assert!(v["quotas_error"].is_string(), "{v}");
    s.ok("GET", "/healthz", None, None, 200).await;

    // Redis returns (empty: it kept nothing): the node recovers on its own.
    let _redis = OwnRedis::start(redis.port);
    let mut recovered = None;
    for _ in 0..100 {
        let (st, v) = s
            .call("POST", &path, Some(&o.member), Some(echo_call()))
            .await;
        if st == 200 {
            recovered = Some(v);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let v = recovered.expect("invocations work again once Redis is back");
    assert_eq!(v["outcome"], "OK");
    let v = s.get("/v1/limits", &o.viewer).await;
    assert_eq!(v["limiter"]["degraded"], false, "{v}");
    // The day's counter was re-seeded from durable usage (the first run, and this one).
    let day = quota_in(&v, "executions_per_day");
    assert!(day["used"].as_u64().unwrap() >= 2, "{v}");
    let logs = s.logs();
    assert!(!logs.contains("panicked"), "the server panicked:\n{logs}");
    assert!(
        logs.contains("Redis unavailable"),
        "no log line says the limiter degraded"
    );
    assert!(
        logs.contains("shared limits restored"),
        "no log line says it recovered"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publisher_key_revoked_on_one_node_stops_the_version_on_every_node() {
    let (a, b) = two_nodes(vec![]).await;
    let p = publish_examples(&a).await;
    let (o, install) = org_with_echo(&a, "revoked", json!({})).await;
    let path = invoke_path(&install);
    // Both nodes have verified, compiled and cached the version.
    for node in [&a, &b] {
        node.ok("POST", &path, Some(&o.member), Some(echo_call()), 200)
            .await;
    }
    a.revoke_publisher_key(&p).await;
    // Every node must refuse at once.
    for node in [&a, &b] {
        node.refused(
            "POST",
            &path,
            Some(&o.member),
            Some(echo_call()),
            (400, "KEY_NOT_VALID"),
        )
        .await;
    }
}

/// Two nodes on one database: a key revoked and an install disabled through node A
/// are refused by node B at its very next request, though B has just served both.
#[tokio::test]
async fn a_key_revoked_or_an_install_disabled_on_one_node_stops_on_every_node_at_once() {
    let (a, b) = two_nodes(vec![]).await;
    publish_examples(&a).await;
    let (o, install) = org_with_echo(&a, "nodes", json!({})).await;
    let (key_id, key) = a
        .create_key(
            &o.owner,
            json!({"owner": {"kind": "self"}, "name": "short-lived"}),
        )
        .await;
    let path = invoke_path(&install);
    for node in [&a, &b] {
        for k in [&key, &o.member] {
            node.ok("POST", &path, Some(k), Some(echo_call()), 200)
                .await;
        }
    }
    a.delete(&format!("/v1/keys/{key_id}"), &o.owner, 200).await;
    b.refused(
        "POST",
        &path,
        Some(&key),
        Some(echo_call()),
        (401, "UNAUTHENTICATED"),
    )
    .await;
    a.patch(
        &format!("/v1/installs/{install}"),
        &o.admin,
        json!({"enabled": false}),
    )
    .await;
    b.refused(
        "POST",
        &path,
        Some(&o.member),
        Some(echo_call()),
        (409, "INSTALL_DISABLED"),
    )
    .await;
}

/// Two nodes on one database: a lowered role, a removed binding and a tier change
/// made through node A apply at node B's next request, though B has just served the
/// same keys (and keeps their rows in memory).
#[tokio::test]
async fn a_role_binding_or_tier_changed_on_one_node_applies_on_every_node_at_once() {
    let (a, b) = two_nodes(vec![]).await;
    publish_examples(&a).await;
    let (o, install) = org_with_echo(&a, "changes", json!({})).await;
    a.bind(&o, &install).await;
    let path = invoke_path(&install);
    let user = json!({"name": "demoted", "role": "member"});
    let uid = id_of(&a.create("/v1/users", &o.owner, user).await);
    let (_, demoted) = a
        .create_key(
            &o.owner,
            json!({"owner": {"kind": "user", "id": uid}, "name": "demoted"}),
        )
        .await;
    for k in [&demoted, &o.agent, &o.member] {
        b.ok("POST", &path, Some(k), Some(echo_call()), 200).await;
    }
    a.patch(
        &format!("/v1/users/{uid}"),
        &o.owner,
        json!({"role": "viewer"}),
    )
    .await;
    b.refused(
        "POST",
        &path,
        Some(&demoted),
        Some(echo_call()),
        (403, "PERMISSION_DENIED"),
    )
    .await;
    let binding = format!("/v1/agents/{}/installs/{install}", o.agent_id);
    a.delete(&binding, &o.admin, 204).await;
    b.refused(
        "POST",
        &path,
        Some(&o.agent),
        Some(echo_call()),
        (403, "PERMISSION_DENIED"),
    )
    .await;
    a.set_limits(&o.id, json!({"invocations_per_minute": 1}))
        .await;
    let mut codes = Vec::new();
    for _ in 0..2 {
        let (st, _) = b
            .call("POST", &path, Some(&o.member), Some(echo_call()))
            .await;
        codes.push(st);
    }
    assert_eq!(codes[1], 429, "B applies A's new limit of 1/min: {codes:?}");
    // A suspension on A refuses the org's keys on B at once; a resume on B lets them
    // in on A.
    let suspend = format!("/v1/orgs/{}/suspend", o.id);
    a.ok(
        "POST",
        &suspend,
        Some(&a.operator_key),
        Some(json!({"reason": "T-1"})),
        200,
    )
    .await;
    b.refused(
        "GET",
        "/v1/org",
        Some(&o.member),
        None,
        (403, "ORG_SUSPENDED"),
    )
    .await;
    b.ok(
        "POST",
        &format!("/v1/orgs/{}/resume", o.id),
        Some(&b.operator_key),
        Some(json!({})),
        200,
    )
    .await;
    a.ok("GET", "/v1/org", Some(&o.member), None, 200).await;
}
