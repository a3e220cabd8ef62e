//! Operating a server: `/metrics` (who may scrape it, and that it parses as
//! Prometheus text with the figures the invocations produced), `/readyz` (measured
//! checks; a lost Redis named as degraded) and `/healthz`.

mod common;

use common::*;
use serde_json::json;

/// Scrapes `/metrics` with `key` and returns status and body text.
async fn scrape(s: &Server, key: Option<&str>) -> (u16, String) {
    let mut req = common::http().get(format!("{}/metrics", s.url));
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    let res = req.send().await.expect("scrape");
    (res.status().as_u16(), res.text().await.expect("body"))
}

/// The value of one sample, by metric name and label subset (0 if absent).
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    let lines = text.lines().map(|l| Ok(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("Prometheus text parses");
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name)
        .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => 0.0,
        })
        .sum()
}

on_both_stores!(
    metrics_count_invocations_by_outcome_and_routes_by_template,
    metrics_count_invocations_by_outcome_and_routes_by_template_pooled,
    metrics_on
);

async fn metrics_on(s: Server) {
    publish_examples(&s).await;
    let (o, install) = org_with_install(&s, "acme", echo_install()).await;
    for _ in 0..3 {
        s.run(&o.member, &install, "echo", json!({"x": 1})).await;
    }
    // An action the plugin does not have: refused before its sandbox starts.
    s.run(&o.member, &install, "nope", json!({})).await;

    let (status, text) = scrape(&s, Some(&s.operator_key)).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(
        sample(&text, "tenantry_invocations_total", &[("outcome", "OK")]),
        3.0,
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "tenantry_invocations_total",
            &[("outcome", "NOT_FOUND")]
        ),
        1.0
    );
    assert!(
        text.lines()
            .any(|l| l == "tenantry_invocation_duration_seconds_count 3"),
        "only sandboxes that ran are timed: {text}"
    );
    assert_eq!(
        sample(
            &text,
            "tenantry_limiter_decisions_total",
            &[("decision", "admitted")]
        ),
        4.0
    );
    // Routes are templates: no install id (or any id) becomes a label value.
    // (Checked on the text: `prometheus-parse` does not accept `{` inside a label
    // value, which the exposition format allows.)
    assert!(
        text.lines().any(|l| l
            == r#"tenantry_http_requests_total{route="/v1/installs/{install_id}/invoke",method="POST",status="200"} 4"#),
        "{text}"
    );
    assert!(!text.contains(&install), "an id leaked into a label");
    assert!(!text.contains(&o.id), "an org id leaked into a label");
    assert!(text.contains("tenantry_sandboxes_live"), "{text}");
    assert!(text.contains("tenantry_recorder_queue_depth"), "{text}");
    assert!(text.contains("tenantry_tenant_stores_open"), "{text}");
}

#[tokio::test]
async fn metrics_refuse_no_key_a_wrong_key_and_an_org_key() {
    let s = Server::start();
    let o = org(&s, "acme").await;
    let (status, _) = scrape(&s, None).await;
    assert_eq!(status, 401);
    let (status, _) = scrape(&s, Some("tny_not_a_key")).await;
    assert_eq!(status, 401);
    for (role, key) in o.keys() {
        let (status, body) = scrape(&s, Some(key)).await;
        assert_eq!(status, 403, "{role}: {body}");
    }
}

#[tokio::test]
async fn metrics_are_open_to_an_allowed_scraper_address_only() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tenantry.toml");
    std::fs::write(&config, "metrics_allow_cidrs = [\"127.0.0.0/8\"]\n").unwrap();
    let s = Server::start_configured(&config, false).await;
    let (status, text) = scrape(&s, None).await;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("# EOF"), "OpenMetrics text ends with # EOF");
}

#[tokio::test]
async fn readyz_measures_each_check_and_healthz_answers() {
    let s = Server::start();
    let v = s.ok("GET", "/readyz", None, None, 200).await;
    assert_eq!(v["status"], "ok", "{v}");
    for check in ["store", "limiter", "runtime", "recorder"] {
        assert_eq!(v["checks"][check]["status"], "ok", "{check}: {v}");
        assert!(v["checks"][check]["took_ms"].is_number(), "{check}: {v}");
    }
    let h = s.ok("GET", "/healthz", None, None, 200).await;
    assert_eq!(h["status"], "ok");
}

#[tokio::test]
async fn readyz_names_a_lost_redis_as_degraded_and_stays_ready() {
    // A port nothing listens on: the limiters connect lazily and fall back.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let s = Server::start_with(
        Launch {
            args: vec!["--redis-url".into(), format!("redis://127.0.0.1:{port}")],
            ..Launch::default()
        },
        None,
    );
    let v = s.ok("GET", "/readyz", None, None, 200).await;
    assert_eq!(v["status"], "degraded", "{v}");
    assert_eq!(v["checks"]["limiter"]["status"], "degraded", "{v}");
    assert!(
        v["checks"]["limiter"]["detail"]
            .as_str()
            .unwrap()
            .contains("redis unreachable"),
        "{v}"
    );
    assert_eq!(v["checks"]["store"]["status"], "ok", "{v}");
}
