//! Plugins' outbound HTTPS over `wasi:http`, against a loopback HTTPS server with a
//! test CA (allowed through an operator CIDR and CA setting, as an operator would
//! allow an internal API). One test per attack or failure, each naming it.

mod support;

use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::*;
use tenantry_core::Outcome;
use tenantry_core::manifest::Grants;
use tenantry_runtime::*;
use tenantry_test_services::https::{self, Cert, HttpsServer, TestCa};

const BOTH: &[&[u8]] = &[b"h2", b"http/1.1"];
const HTTP1: &[&[u8]] = &[b"http/1.1"];

fn limits() -> Limits {
    Limits {
        memory_bytes: 32 << 20,
        fuel: 500_000_000,
        wall_time: Duration::from_secs(5),
        max_host_calls: 50,
        max_input_bytes: 64 << 10,
        max_output_bytes: 1 << 20,
    }
}

/// The operator's setup for the tests: loopback allowed, the test CA trusted.
fn trusting(ca: &TestCa) -> RuntimeConfig {
    let mut c = RuntimeConfig::default();
    c.egress.allow_cidrs = vec!["127.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()];
    c.egress.ca_certs = tenantry_tls::certificates_in_pem(ca.pem().as_bytes()).unwrap();
    c
}

fn egress(hosts: &[&str]) -> Grants {
    Grants {
        egress: hosts.iter().map(|h| h.to_string()).collect(),
        ..Grants::default()
    }
}

async fn run(
    w: &World,
    plugin: &str,
    action: &str,
    input: Value,
    grants: &Grants,
) -> InvocationResult {
    let p = w.load(plugin);
    w.run(&p, install(), action, &input.to_string(), grants, limits())
        .await
}

/// GETs `url` with the `get` action of `plugin` (http-fetch and its kin), for a new
/// install granted egress to `hosts`.
async fn get(w: &World, plugin: &Arc<LoadedPlugin>, url: &str, hosts: &[&str]) -> InvocationResult {
    w.run(
        plugin,
        install(),
        "get",
        &json!({"url": url}).to_string(),
        &egress(hosts),
        limits(),
    )
    .await
}

/// [`get`] with the Rust `http-fetch` example.
async fn fetch(w: &World, url: &str, hosts: &[&str]) -> InvocationResult {
    get(w, &w.load("http-fetch"), url, hosts).await
}

async fn server(ca: &TestCa, cert: Cert, alpn: &[&[u8]]) -> HttpsServer {
    https::serve(ca, cert, alpn, "test-token").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_gets_and_posts_over_https_with_http2_and_http1() {
    let ca = TestCa::new();
    let w = world(trusting(&ca));
    let g = egress(&["localhost"]);
    for (alpn, version) in [(BOTH, "HTTP/2.0"), (HTTP1, "HTTP/1.1")] {
        let s = server(&ca, Cert::Valid, alpn).await;
        let r = run(
            &w,
            "http-fetch",
            "get",
            json!({"url": format!("{}/json", s.base())}),
            &g,
        )
        .await;
        let o = out(&r);
        assert_eq!(o["status"], 200, "{o}");
        assert_eq!(o["body"], r#"{"hello":"world"}"#);
        let r = run(
            &w,
            "http-fetch",
            "request",
            json!({"method": "POST", "url": format!("{}/echo", s.base()),
                   "headers": {"content-type": "text/plain"}, "body": "ping"}),
            &g,
        )
        .await;
        let o = out(&r);
        assert_eq!(o["status"], 201, "{o}");
        let echoed: Value = serde_json::from_str(o["body"].as_str().unwrap()).unwrap();
        assert_eq!(echoed["body"], "ping");
        assert_eq!(echoed["method"], "POST");
        assert_eq!(echoed["version"], version, "ALPN {alpn:?}");
        assert_eq!(r.stats.host_calls, 1, "one request is one host call");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_are_reused_across_invocations() {
    let ca = TestCa::new();
    let w = world(trusting(&ca));
    let s = server(&ca, Cert::Valid, BOTH).await;
    for _ in 0..5 {
        let r = fetch(&w, &format!("{}/json", s.base()), &["localhost"]).await;
        out(&r);
    }
    assert_eq!(
        s.connections(),
        1,
        "five requests over one pooled connection"
    );
}

/// Every certificate the server could present that must not be trusted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_to_a_server_with_an_untrusted_certificate_is_refused() {
    let ca = TestCa::new();
    let w = world(trusting(&ca));
    for cert in [Cert::OtherName, Cert::Expired, Cert::UnknownCa] {
        let s = server(&ca, cert, BOTH).await;
        let r = fetch(&w, &format!("{}/json", s.base()), &["localhost"]).await;
        assert_eq!(r.outcome, Outcome::PluginError, "{cert:?}: {r:?}");
        let e = r.error.unwrap_or_default();
        assert!(e.contains("tls-certificate-error"), "{cert:?}: {e}");
    }
    // Without the operator's CA setting, the test CA itself is unknown.
    let mut c = trusting(&ca);
    c.egress.ca_certs.clear();
    let s = server(&ca, Cert::Valid, BOTH).await;
    let r = fetch(&world(c), &format!("{}/json", s.base()), &["localhost"]).await;
    assert!(
        r.error
            .unwrap_or_default()
            .contains("tls-certificate-error")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn egress_to_a_host_outside_the_grants_is_refused_before_any_connection() {
    let ca = TestCa::new();
    let w = world(trusting(&ca));
    let s = server(&ca, Cert::Valid, BOTH).await;
    let r = fetch(&w, &format!("{}/json", s.base()), &["api.example.com"]).await;
    assert_eq!(r.outcome, Outcome::EgressDenied, "{r:?}");
    assert_eq!(r.denied, vec!["egress:localhost".to_string()]);
    assert_eq!(s.connections(), 0, "refused before connecting");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn egress_via_a_name_that_resolves_to_a_private_address_is_refused() {
    let ca = TestCa::new();
    let mut c = trusting(&ca);
    c.egress.allow_cidrs.clear();
    let s = server(&ca, Cert::Valid, BOTH).await;
    for url in [
        format!("{}/json", s.base()),
        format!("https://127.0.0.1:{}/json", s.addr.port()),
    ] {
        let r = fetch(&world(c.clone()), &url, &["localhost", "127.0.0.1"]).await;
        assert_eq!(r.outcome, Outcome::EgressDenied, "{url}: {r:?}");
        assert!(r.denied[0].starts_with("egress:"), "{:?}", r.denied);
    }
    assert_eq!(s.connections(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_to_a_private_address_is_refused_when_the_guest_follows_it() {
    let ca = TestCa::new();
    let w = world(trusting(&ca));
    let s = server(&ca, Cert::Valid, BOTH).await;
    let url = format!("{}/redirect?to=https://10.1.2.3/secrets", s.base());
    let r = fetch(&w, &url, &["localhost", "10.1.2.3"]).await;
    assert_eq!(r.outcome, Outcome::EgressDenied, "{r:?}");
    assert!(r.error.unwrap_or_default().contains("10.1.2.3"));
    assert_eq!(r.denied, vec!["egress:10.1.2.3".to_string()]);
    assert_eq!(
        r.stats.host_calls, 2,
        "the redirect was a second, checked request"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_over_the_cap_is_cut() {
    let ca = TestCa::new();
    let mut c = trusting(&ca);
    c.egress.max_response_bytes = 64 << 10;
    let s = server(&ca, Cert::Valid, BOTH).await;
    let r = fetch(
        &world(c),
        &format!("{}/big/{}", s.base(), 200_000),
        &["localhost"],
    )
    .await;
    assert_eq!(r.outcome, Outcome::PluginError, "{r:?}");
    let e = r.error.unwrap_or_default();
    assert!(e.contains("body size exceeds limit: 65536 bytes"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_trickles_bytes_hits_the_timeout_without_holding_a_thread() {
    let ca = TestCa::new();
    let mut c = trusting(&ca);
    c.egress.request_timeout = Duration::from_millis(800);
    let w = world(c);
    let s = server(&ca, Cert::Valid, BOTH).await;
    let echo = w.load("echo");
    let t = Instant::now();
    let g = egress(&["localhost"]);
    let slow = run(
        &w,
        "http-fetch",
        "get",
        json!({"url": format!("{}/trickle", s.base())}),
        &g,
    );
    let others = async {
        // Meanwhile the runtime serves other invocations on the same two threads.
        let mut ok = 0;
        for _ in 0..20 {
            if w.run_fresh(&echo, "echo", "{}").await.outcome == Outcome::Ok {
                ok += 1;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        ok
    };
    let (r, ok) = tokio::join!(slow, others);
    assert_eq!(r.outcome, Outcome::PluginError, "{r:?}");
    assert!(
        r.error.as_deref().unwrap_or_default().contains("timeout"),
        "{r:?}"
    );
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    assert_eq!(ok, 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_requests_hits_the_host_call_limit() {
    let ca = TestCa::new();
    let w = world(trusting(&ca));
    let s = server(&ca, Cert::Valid, BOTH).await;
    let r = run(
        &w,
        "attacks",
        "fetch-many",
        json!({"url": format!("{}/json", s.base()), "n": 1000}),
        &egress(&["localhost"]),
    )
    .await;
    assert_eq!(r.outcome, Outcome::MaxHostCalls, "{r:?}");
    assert_eq!(r.stats.host_calls, 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_is_refused_unless_the_operator_allows_it() {
    let ca = TestCa::new();
    let g = egress(&["localhost"]);
    let r = run(
        &world(trusting(&ca)),
        "http-fetch",
        "get",
        json!({"url": "http://localhost:9/"}),
        &g,
    )
    .await;
    assert_eq!(r.outcome, Outcome::EgressDenied, "{r:?}");
    assert_eq!(r.denied, vec!["egress-scheme:http".to_string()]);
    let mut c = trusting(&ca);
    c.egress.allow_http = true;
    let r = run(
        &world(c),
        "http-fetch",
        "get",
        json!({"url": "http://localhost:9/"}),
        &g,
    )
    .await;
    assert_eq!(
        r.outcome,
        Outcome::PluginError,
        "allowed, then refused by the closed port: {r:?}"
    );
    assert!(r.denied.is_empty());
}

/// The frozen-version promise: components built against `tenantry:plugin@0.1.0`
/// (committed in `examples/plugins-0.1.0/`) keep working unchanged, and their
/// `http.fetch` now reaches HTTPS through the same policy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn components_built_against_0_1_0_keep_working() {
    let ca = TestCa::new();
    let w = world(trusting(&ca));
    let load = |name: &str| {
        let path = format!(
            "{}/../../examples/plugins-0.1.0/{name}.wasm",
            env!("CARGO_MANIFEST_DIR")
        );
        w.rt.load(&format!("{name}-0.1.0"), &std::fs::read(&path).unwrap())
            .unwrap()
    };
    let counter = load("kv-counter");
    let me = install();
    for want in [1, 2] {
        let r = w
            .run(&counter, me, "increment", "{}", &kv_grant(), limits())
            .await;
        assert_eq!(out(&r)["value"], want);
    }
    let s = server(&ca, Cert::Valid, BOTH).await;
    let fetch = load("http-fetch");
    let url = format!("{}/json", s.base());
    let r = get(&w, &fetch, &url, &["localhost"]).await;
    let o = out(&r);
    assert_eq!(o["status"], 200);
    assert_eq!(o["body"], r#"{"hello":"world"}"#);
    let r = get(&w, &fetch, &url, &["example.com"]).await;
    assert_eq!(r.outcome, Outcome::EgressDenied);
    let s = server(&ca, Cert::Expired, BOTH).await;
    let r = get(&w, &fetch, &format!("{}/json", s.base()), &["localhost"]).await;
    let e = r.error.unwrap_or_default();
    assert!(
        e.contains("certificate is not trusted"),
        "0.1.0 sees the reason: {e}"
    );
}

/// A JavaScript plugin's `fetch()` (componentize-js with its HTTP support on)
/// goes through the same wasi:http egress path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_javascript_plugin_fetches_over_https_with_fetch() {
    let ca = TestCa::new();
    let w = world(trusting(&ca));
    let path = format!(
        "{}/../../examples/plugins-js/fetch-js/plugin.wasm",
        env!("CARGO_MANIFEST_DIR")
    );
    let plugin =
        w.rt.load("fetch-js", &std::fs::read(&path).unwrap())
            .unwrap();
    let s = server(&ca, Cert::Valid, BOTH).await;
    let url = format!("{}/json", s.base());
    let r = get(&w, &plugin, &url, &["localhost"]).await;
    let o = out(&r);
    assert_eq!(o["status"], 200, "{o}");
    assert_eq!(o["body"], r#"{"hello":"world"}"#);
    let r = get(&w, &plugin, &url, &["example.com"]).await;
    assert_ne!(r.outcome, Outcome::Ok, "{r:?}");
    assert_eq!(r.denied, vec!["egress:localhost".to_string()]);
}
