//! The attack suite: one test per attack. Each asserts the exact outcome code, that
//! the runtime still serves afterwards, and that a concurrent invocation of another
//! org is unaffected.

mod support;

use serde_json::json;
use std::time::Duration;
use support::*;
use tenantry_core::Outcome;
use tenantry_core::manifest::Grants;
use tenantry_runtime::*;

fn limits() -> Limits {
    Limits {
        memory_bytes: 32 << 20,
        fuel: 500_000_000,
        wall_time: Duration::from_secs(2),
        max_host_calls: 50,
        max_input_bytes: 64 << 10,
        max_output_bytes: 100 << 10,
    }
}

/// Runs `action` of `plugin` for `install` with no grants, under [`limits`].
async fn ungranted(
    w: &World,
    plugin: &std::sync::Arc<LoadedPlugin>,
    install: InstallRef,
    action: &str,
    input: &str,
) -> InvocationResult {
    w.run(plugin, install, action, input, &Grants::default(), limits())
        .await
}

/// Runs the attack while another org invokes echo concurrently; checks the
/// attack's outcome, the neighbour's success, and that the runtime still works.
async fn attack(
    w: &World,
    action: &str,
    input: serde_json::Value,
    grants: Grants,
    want: Outcome,
) -> InvocationResult {
    let attacks = w.load("attacks");
    let echo = w.load("echo");
    let victim = install();
    let neighbour = async {
        let mut all_ok = true;
        for _ in 0..5 {
            let r = ungranted(w, &echo, victim, "echo", "{\"n\": 1}").await;
            all_ok &= r.outcome == Outcome::Ok;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        all_ok
    };
    let input = input.to_string();
    let (r, neighbour_ok) = tokio::join!(
        w.run(&attacks, install(), action, &input, &grants, limits()),
        neighbour
    );
    assert_eq!(r.outcome, want, "{action}: {r:?}");
    assert!(
        neighbour_ok,
        "{action}: the other org's invocation was disturbed"
    );
    let after = ungranted(w, &echo, install(), "echo", "{}").await;
    assert_eq!(
        after.outcome,
        Outcome::Ok,
        "runtime unusable after {action}"
    );
    r
}

/// [`attack`] without grants.
async fn attack_ungranted(
    w: &World,
    action: &str,
    input: serde_json::Value,
    want: Outcome,
) -> InvocationResult {
    attack(w, action, input, Grants::default(), want).await
}

fn w() -> World {
    world(RuntimeConfig::default())
}

/// The attacks plugin installed as `@test/attacks`, granted to call itself as a tool.
fn attacks_calling_itself(w: &World) -> (std::sync::Arc<LoadedPlugin>, InstallRef, Grants) {
    let attacks = w.load("attacks");
    let me = install();
    let grants = Grants {
        tools: vec!["@test/attacks".into()],
        ..Grants::default()
    };
    w.tools.installs.lock().unwrap().insert(
        "@test/attacks".into(),
        (me, attacks.clone(), grants.clone()),
    );
    (attacks, me, grants)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn infinite_loop_runs_out_of_fuel() {
    attack_ungranted(&w(), "loop", json!({}), Outcome::OutOfFuel).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn infinite_loop_with_large_fuel_hits_the_wall_time() {
    let w = w();
    let attacks = w.load("attacks");
    let l = Limits {
        fuel: u64::MAX / 2,
        wall_time: Duration::from_millis(300),
        ..limits()
    };
    let t = std::time::Instant::now();
    let r = w
        .run(&attacks, install(), "loop", "{}", &Grants::default(), l)
        .await;
    assert_eq!(r.outcome, Outcome::Timeout, "{r:?}");
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "stopped late: {:?}",
        t.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_growth_bomb_hits_the_memory_limit() {
    let r = attack_ungranted(&w(), "memory", json!({}), Outcome::MemoryLimit).await;
    assert!(r.stats.peak_memory_bytes <= 32 << 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_recursion_overflows_the_stack_and_traps() {
    attack_ungranted(&w(), "recurse", json!({}), Outcome::PluginTrap).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_over_the_limit_is_refused() {
    attack_ungranted(
        &w(),
        "output",
        json!({"bytes": 200_000}),
        Outcome::OutputTooLarge,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_call_flood_stops_at_the_host_call_limit() {
    let flood = json!({"n": 100_000});
    let r = attack(&w(), "host-flood", flood, kv_grant(), Outcome::MaxHostCalls).await;
    assert_eq!(r.stats.host_calls, 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_of_another_install_or_not_granted_is_denied() {
    let w = w();
    let other = install();
    w.secrets
        .0
        .lock()
        .unwrap()
        .insert((other.install_id, "api_token".into()), "theirs".into());
    // Not granted: refused and recorded.
    let r = attack_ungranted(
        &w,
        "secret",
        json!({"name": "api_token"}),
        Outcome::PermissionDenied,
    )
    .await;
    assert_eq!(r.denied, vec!["secret:api_token".to_string()]);
    // Granted the name, but the value belongs to another install: this install sees none.
    let g = Grants {
        secrets: vec!["api_token".into()],
        ..Grants::default()
    };
    let r = attack(&w, "secret", json!({"name": "api_token"}), g, Outcome::Ok).await;
    assert_eq!(r.output.as_deref(), Some("null"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv_key_of_another_install_is_unreachable() {
    let w = w();
    let attacks = w.load("attacks");
    let g = kv_grant();
    let victim = install();
    let planted = json!({"key": "token", "value": "victim-data"}).to_string();
    w.run(&attacks, victim, "kv-set", &planted, &g, limits())
        .await;
    let me = install();
    for key in [
        "token".to_string(),
        "../token".to_string(),
        format!("{}/token", victim.install_id),
        format!("../{}/{}/token", victim.org_id, victim.install_id),
        "%2e%2e/token".to_string(),
    ] {
        let input = json!({"key": key}).to_string();
        let r = w.run(&attacks, me, "kv-get", &input, &g, limits()).await;
        assert_eq!(
            (r.outcome, r.output.as_deref()),
            (Outcome::Ok, Some("null")),
            "{key}"
        );
    }
    // Without the kv grant, even its own keys are refused.
    let r = attack_ungranted(
        &w,
        "kv-get",
        json!({"key": "token"}),
        Outcome::PermissionDenied,
    )
    .await;
    assert_eq!(r.denied, vec!["kv".to_string()]);
}

fn egress(hosts: &[&str]) -> Grants {
    Grants {
        egress: hosts.iter().map(|h| h.to_string()).collect(),
        ..Grants::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn egress_to_a_host_not_granted_is_denied() {
    attack(
        &w(),
        "fetch",
        json!({"url": "https://evil.example/"}),
        egress(&["api.example.com"]),
        Outcome::EgressDenied,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn egress_to_loopback_private_and_metadata_addresses_is_denied() {
    let w = w();
    for (url, grant) in [
        ("https://127.0.0.1:9/", "127.0.0.1"),
        ("https://10.0.0.1/", "10.0.0.1"),
        ("https://192.168.1.1/", "192.168.1.1"),
        (
            "https://169.254.169.254/latest/meta-data/",
            "169.254.169.254",
        ),
        ("https://100.64.0.1/", "100.64.0.1"),
    ] {
        let r = attack(
            &w,
            "fetch",
            json!({"url": url}),
            egress(&[grant]),
            Outcome::EgressDenied,
        )
        .await;
        assert!(r.error.unwrap_or_default().contains("not allowed"), "{url}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn egress_via_a_name_that_resolves_to_loopback_is_denied() {
    attack(
        &w(),
        "fetch",
        json!({"url": "https://localhost:9/"}),
        egress(&["localhost"]),
        Outcome::EgressDenied,
    )
    .await;
}

/// A tiny HTTP server on loopback: `/redirect` → a private address, `/slow` sleeps,
/// `/` answers "hello".
async fn local_server() -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let n = s.read(&mut buf).await.unwrap_or(0);
                let req = String::from_utf8_lossy(&buf[..n]).to_string();
                let resp = if req.starts_with("GET /redirect") {
                    "HTTP/1.1 302 Found\r\nLocation: http://10.1.2.3/\r\nContent-Length: 0\r\n\r\n"
                        .to_string()
                } else if req.starts_with("GET /slow") {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nslow".to_string()
                } else {
                    "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello".to_string()
                };
                let _ = s.write_all(resp.as_bytes()).await;
            });
        }
    });
    addr
}

fn loopback_allowed() -> RuntimeConfig {
    let mut c = RuntimeConfig::default();
    c.egress.allow_cidrs = vec!["127.0.0.0/8".parse().unwrap()];
    c.egress.allow_http = true;
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn egress_allowed_by_the_operator_works_and_a_redirect_to_a_private_address_is_denied() {
    let w = world(loopback_allowed());
    let addr = local_server().await;
    let r = attack(
        &w,
        "fetch",
        json!({"url": format!("http://127.0.0.1:{}/", addr.port())}),
        egress(&["127.0.0.1"]),
        Outcome::Ok,
    )
    .await;
    assert!(r.output.unwrap().contains("hello"));
    let r = attack(
        &w,
        "fetch",
        json!({"url": format!("http://127.0.0.1:{}/redirect", addr.port())}),
        egress(&["127.0.0.1", "10.1.2.3"]),
        Outcome::EgressDenied,
    )
    .await;
    assert!(r.error.unwrap().contains("10.1.2.3"));
}

/// The platform's connector list (`[pilot] egress`) caps every install's grants at
/// run time: a host the install was granted but the list does not hold is refused
/// before any connection, and recorded as denied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn egress_granted_but_outside_the_platforms_connector_list_is_denied() {
    let mut c = loopback_allowed();
    c.egress.connectors = Some(vec!["api.example.com".into()]);
    let w = world(c);
    let addr = local_server().await;
    let r = attack(
        &w,
        "fetch",
        json!({"url": format!("http://127.0.0.1:{}/", addr.port())}),
        egress(&["127.0.0.1"]),
        Outcome::EgressDenied,
    )
    .await;
    assert_eq!(r.denied, vec!["egress:127.0.0.1".to_string()]);
    let mut c = loopback_allowed();
    c.egress.connectors = Some(vec!["127.0.0.1".into()]);
    let r = attack(
        &world(c),
        "fetch",
        json!({"url": format!("http://127.0.0.1:{}/", addr.port())}),
        egress(&["127.0.0.1"]),
        Outcome::Ok,
    )
    .await;
    assert!(r.output.unwrap_or_default().contains("hello"));
}

/// A refused scheme (plain `http://` unless the operator allows it, anything that
/// is not HTTP) is recorded as denied, like every other egress refusal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn egress_with_an_unsupported_scheme_is_denied_and_recorded() {
    for (url, denied) in [
        ("http://api.example.com/", "egress-scheme:http"),
        ("ftp://api.example.com/", "egress-scheme:ftp"),
    ] {
        let r = attack(
            &w(),
            "fetch",
            json!({"url": url}),
            egress(&["api.example.com"]),
            Outcome::EgressDenied,
        )
        .await;
        assert_eq!(r.denied, vec![denied.to_string()]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guest_blocked_in_a_slow_host_call_is_stopped_at_its_wall_time() {
    let w = world(loopback_allowed());
    let addr = local_server().await;
    let t = std::time::Instant::now();
    attack(
        &w,
        "fetch",
        json!({"url": format!("http://127.0.0.1:{}/slow", addr.port())}),
        egress(&["127.0.0.1"]),
        Outcome::Timeout,
    )
    .await;
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "took {:?}",
        t.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_input_is_refused_before_running() {
    let big = json!({"x": "y".repeat(100 << 10)});
    attack_ungranted(&w(), "ok", big, Outcome::InvalidInput).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_json_input_is_refused() {
    let w = w();
    let r = ungranted(&w, &w.load("echo"), install(), "echo", "{not json").await;
    assert_eq!(r.outcome, Outcome::InvalidInput);
}

#[test]
fn malformed_component_is_refused() {
    let w = w();
    assert!(matches!(
        w.rt.load("bad", b"\0asm\x0d\0\x01\0garbage"),
        Err(LoadError::Malformed(_))
    ));
    assert!(matches!(
        w.rt.load("core", &wat::parse_str("(module)").unwrap()),
        Err(LoadError::Malformed(_))
    ));
}

#[test]
fn component_missing_the_export_is_refused() {
    let w = w();
    let c = wat::parse_str("(component)").unwrap();
    assert!(matches!(
        w.rt.load("empty", &c),
        Err(LoadError::MissingExport(_))
    ));
}

#[test]
fn component_importing_an_interface_we_do_not_provide_is_refused() {
    let w = w();
    let c = wat::parse_str(
        r#"(component (import "acme:evil/backdoor@1.0.0" (instance (export "open" (func)))))"#,
    )
    .unwrap();
    assert!(matches!(
        w.rt.load("evil", &c),
        Err(LoadError::UnsupportedImport(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tool_call_recursion_is_bounded() {
    let w = w();
    // The attacks plugin calls itself through the tools capability, forever.
    let (attacks, me, grants) = attacks_calling_itself(&w);
    let mut input = json!({});
    for _ in 0..10 {
        input = json!({"plugin": "@test/attacks", "action": "tool", "input": input});
    }
    let r = w
        .run(&attacks, me, "tool", &input.to_string(), &grants, limits())
        .await;
    assert_eq!(r.outcome, Outcome::PluginError, "{r:?}");
    assert!(
        r.error.unwrap_or_default().contains("nest at most"),
        "bounded by depth"
    );
    // A tool not granted is refused.
    let other = json!({"plugin": "@other/x", "action": "run"}).to_string();
    let r = w.run(&attacks, me, "tool", &other, &grants, limits()).await;
    assert_eq!(r.outcome, Outcome::PermissionDenied);
}

/// A plugin that hands its CPU-heavy work to a tool call does not get a second
/// budget: the nested loop runs on what is left of the caller's fuel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tool_call_cannot_spend_more_than_the_callers_cpu_budget() {
    let w = w();
    let (attacks, me, grants) = attacks_calling_itself(&w);
    // The nested install's own tier would allow the default 2·10⁹; the caller has
    // 5·10⁷ for the whole execution.
    let budget = 50_000_000;
    let caller = Limits {
        fuel: budget,
        wall_time: Duration::from_secs(10),
        ..limits()
    };
    let input = json!({"plugin": "@test/attacks", "action": "loop", "input": {}});
    let t = std::time::Instant::now();
    let r = w
        .run(&attacks, me, "tool", &input.to_string(), &grants, caller)
        .await;
    // The nested loop spends the rest of the budget; back in the caller, the
    // execution has none left.
    assert_eq!(r.outcome, Outcome::OutOfFuel, "{r:?}");
    let nested = w.tools.nested_stats.lock().unwrap()[0].fuel;
    assert!(
        nested + r.stats.fuel <= budget && nested >= budget * 95 / 100,
        "caller {} + tool call {nested} against a budget of {budget}",
        r.stats.fuel
    );
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "ran for {:?}",
        t.elapsed()
    );
}

/// Pool slots are reused (and, with `PAGEMAP_SCAN`, their dirty pages are reset in
/// place rather than discarded): whatever one invocation wrote (static data, heap,
/// stack, a grown page) must be gone for the next one, of the same install or of
/// another org.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reading_a_previous_invocations_memory_finds_nothing() {
    let w = w();
    let planted = attack_ungranted(
        &w,
        "plant",
        json!({"secret": "org-a-remnant-7f3c"}),
        Outcome::Ok,
    )
    .await;
    // The scanner sees what was planted in its own invocation (static, heap ×64,
    // stack, grown page), so a zero below means the memory really was reset.
    let seen: serde_json::Value = serde_json::from_str(planted.output.as_deref().unwrap()).unwrap();
    assert!(seen["found"].as_u64().unwrap() >= 66, "{seen}");
    let attacks = w.load("attacks");
    let (org_a, org_b) = (install(), install());
    for round in 0..20 {
        let input = json!({"secret": "org-a-remnant-7f3c"}).to_string();
        let p = ungranted(&w, &attacks, org_a, "plant", &input).await;
        assert_eq!(p.outcome, Outcome::Ok);
        for reader in [org_a, org_b] {
            let r = ungranted(&w, &attacks, reader, "find", &input).await;
            assert_eq!(r.outcome, Outcome::Ok, "{r:?}");
            let v: serde_json::Value = serde_json::from_str(r.output.as_deref().unwrap()).unwrap();
            assert_eq!(v["found"], 0, "round {round}: a remnant was readable: {v}");
        }
    }
}

/// A guest that answers with a result string pointing outside its memory: the
/// host cannot lift it. The outcome keeps the reason for the plugin's author.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_out_of_bounds_result_pointer_says_why_it_failed() {
    let w = w();
    let echo = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/plugins-wat/echo.wat"
    ))
    .unwrap();
    let bad = echo.replace(
        "(i32.store (i32.const 4) (local.get 2))",
        "(i32.store (i32.const 4) (i32.const 0x7ffffff0))",
    );
    assert_ne!(
        bad, echo,
        "the fixture's pointer store moved; update the test"
    );
    let plugin =
        w.rt.load("oob-result", &wat::parse_str(&bad).unwrap())
            .unwrap();
    let r = ungranted(&w, &plugin, install(), "echo", "{\"n\": 1}").await;
    assert_eq!(r.outcome, Outcome::PluginTrap, "{r:?}");
    let msg = r.error.unwrap_or_default();
    assert!(msg.contains("out of bounds"), "the reason is lost: {msg:?}");
}
