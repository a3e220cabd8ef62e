//! Metering end to end: invocations → usage events → list (paged), summary, export
//! (JSON lines and CSV), over HTTP and through the CLI, on both stores.

mod common;

use common::*;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashSet};

const CSV_COLUMNS: [&str; 15] = [
    "id",
    "at",
    "install_id",
    "plugin",
    "action",
    "actor_kind",
    "actor_id",
    "outcome",
    "duration_us",
    "fuel",
    "peak_memory_bytes",
    "host_calls",
    "bytes_in",
    "bytes_out",
    "caller_id",
];

struct Setup {
    o: Org,
    echo: String,
    attacks: String,
}

/// An org with `echo` (bound to its agent) and `attacks` installed.
async fn setup_org(s: &Server, name: &str) -> Setup {
    let (o, echo) = org_with_install(s, name, echo_install()).await;
    let attacks = s
        .install(&o.admin, json!({"plugin": "@examples/attacks"}))
        .await;
    s.bind(&o, &echo).await;
    Setup { o, echo, attacks }
}

async fn invoke(s: &Server, key: &str, install: &str, action: &str, outcome: &str) {
    let r = s.run(key, install, action, json!({"n": 1})).await;
    assert_eq!(r["outcome"], outcome, "{r}");
}

/// Waits until the org holds `n` usage events; returns them.
async fn usage_events(s: &Server, key: &str, n: usize) -> Value {
    eventually(s, key, "/v1/usage", |v| {
        v.as_array().is_some_and(|a| a.len() == n)
    })
    .await
}

/// 5 OK echo calls by the agent, 3 OK echo calls and 1 unknown action by the member,
/// 2 out-of-fuel loops by the member: 11 events, 3 errors.
async fn workload(s: &Server, x: &Setup) -> Vec<Value> {
    for _ in 0..5 {
        invoke(s, &x.o.agent, &x.echo, "echo", "OK").await;
    }
    for _ in 0..3 {
        invoke(s, &x.o.member, &x.echo, "echo", "OK").await;
    }
    invoke(s, &x.o.member, &x.echo, "nope", "NOT_FOUND").await;
    for _ in 0..2 {
        invoke(s, &x.o.member, &x.attacks, "loop", "OUT_OF_FUEL").await;
    }
    let v = usage_events(s, &x.o.admin, 11).await;
    v.as_array().unwrap().clone()
}

/// Publishes the examples, sets up org `acme` and runs the [`workload`] in it.
async fn acme_with_workload(s: &Server) -> (Setup, Vec<Value>) {
    publish_examples(s).await;
    let x = setup_org(s, "acme").await;
    let events = workload(s, &x).await;
    (x, events)
}

fn nearest_rank(mut v: Vec<u64>, p: usize) -> u64 {
    v.sort_unstable();
    let rank = (p * v.len()).div_ceil(100).max(1);
    v[rank - 1]
}

fn row<'a>(summary: &'a Value, key: &str) -> &'a Value {
    summary["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["key"] == key)
        .unwrap_or_else(|| panic!("no row {key} in {summary}"))
}

fn sum(events: &[&Value], field: &str) -> u64 {
    events.iter().map(|e| e[field].as_u64().unwrap()).sum()
}

/// Checks one summary row against the events it should cover.
fn check_row(r: &Value, events: &[&Value]) {
    let errors = events.iter().filter(|e| e["outcome"] != "OK").count() as u64;
    assert_eq!(r["count"], events.len() as u64, "{r}");
    assert_eq!(r["errors"], errors, "{r}");
    for f in ["fuel", "host_calls", "bytes_in", "bytes_out"] {
        assert_eq!(r[f], sum(events, f), "{f} of {r}");
    }
    let durations: Vec<u64> = events
        .iter()
        .map(|e| e["duration_us"].as_u64().unwrap())
        .collect();
    let mut last = 0.0;
    for p in [50, 95, 99] {
        let got = r[format!("p{p}_duration_ms")].as_f64().unwrap();
        let want = nearest_rank(durations.clone(), p) as f64 / 1000.0;
        assert!((got - want).abs() < 1e-9, "p{p}: {got} != {want} in {r}");
        assert!(got >= last, "percentiles not monotonic: {r}");
        last = got;
    }
}

on_both_stores!(
    summary_groups_count_errors_and_percentiles,
    summary_groups_count_errors_and_percentiles_pooled,
    summary_groups_count_errors_and_percentiles_on
);

async fn summary_groups_count_errors_and_percentiles_on(s: Server) {
    let (x, events) = acme_with_workload(&s).await;
    let all: Vec<&Value> = events.iter().collect();
    let k = x.o.admin.as_str();

    let none = s.get("/v1/usage/summary", k).await;
    assert_eq!(none["group_by"], "none");
    assert_eq!(none["rows"].as_array().unwrap().len(), 1);
    check_row(row(&none, "all"), &all);
    assert_eq!(row(&none, "all")["errors"], 3);

    let by_plugin = s.get("/v1/usage/summary?group_by=plugin", k).await;
    for (plugin, count, errors) in [("@examples/echo", 9, 1), ("@examples/attacks", 2, 2)] {
        let r = row(&by_plugin, plugin);
        assert_eq!(
            (r["count"].as_u64(), r["errors"].as_u64()),
            (Some(count), Some(errors))
        );
        let evs: Vec<&Value> = all
            .iter()
            .copied()
            .filter(|e| e["plugin"] == plugin)
            .collect();
        check_row(r, &evs);
    }

    let by_install = s.get("/v1/usage/summary?group_by=install", k).await;
    assert_eq!(by_install["rows"].as_array().unwrap().len(), 2);
    for (install, count) in [(&x.echo, 9), (&x.attacks, 2)] {
        let r = row(&by_install, install);
        assert_eq!(r["count"], count);
        let evs: Vec<&Value> = all
            .iter()
            .copied()
            .filter(|e| e["install_id"] == install.as_str())
            .collect();
        check_row(r, &evs);
    }

    let by_agent = s.get("/v1/usage/summary?group_by=agent", k).await;
    let agent_row = row(&by_agent, &x.o.agent_id);
    assert_eq!(
        (
            agent_row["count"].as_u64(),
            agent_row["actor_kind"].as_str()
        ),
        (Some(5), Some("agent"))
    );
    let users: Vec<&Value> = by_agent["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["actor_kind"] == "user")
        .collect();
    assert_eq!(users.len(), 1, "{by_agent}");
    assert_eq!(
        (users[0]["count"].as_u64(), users[0]["errors"].as_u64()),
        (Some(6), Some(3))
    );

    let by_day = s.get("/v1/usage/summary?group_by=day", k).await;
    let mut days: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for e in &all {
        days.entry(e["at"].as_str().unwrap()[..10].to_string())
            .or_default()
            .push(e);
    }
    assert_eq!(by_day["rows"].as_array().unwrap().len(), days.len());
    for (day, evs) in &days {
        check_row(row(&by_day, day), evs);
    }

    // Ranges: since is inclusive, until exclusive.
    let first_at = all[0]["at"].as_str().unwrap();
    let last_at = all[10]["at"].as_str().unwrap();
    let q = format!("/v1/usage/summary?since={}", enc(last_at));
    let r = s.get(&q, k).await;
    let n_last = all.iter().filter(|e| e["at"] == last_at).count() as u64;
    assert_eq!(row(&r, "all")["count"], n_last);
    let q = format!("/v1/usage/summary?until={}", enc(first_at));
    let r = s.get(&q, k).await;
    assert!(r["rows"].as_array().unwrap().is_empty(), "{r}");
    let q = format!(
        "/v1/usage/summary?since={}&until={}&group_by=day",
        enc(first_at),
        enc("2999-01-01T00:00:00Z")
    );
    let r = s.get(&q, k).await;
    assert_eq!(
        r["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["count"].as_u64().unwrap())
            .sum::<u64>(),
        11
    );
    // An offset is accepted (when URL-encoded) and means the same instant.
    let q = format!(
        "/v1/usage/summary?since={}",
        enc("2999-01-01T02:00:00+02:00")
    );
    let r = s.get(&q, k).await;
    assert!(r["rows"].as_array().unwrap().is_empty());

    // Viewers read usage (read_org); the CLI renders the same summary.
    s.get("/v1/usage/summary?group_by=plugin", &x.o.viewer)
        .await;
    let cli = cli_json(
        s.cli(Some(k))
            .args(["--json", "usage", "summary", "--group-by", "plugin"]),
    );
    assert_eq!(cli["rows"], by_plugin["rows"]);
    let out = s
        .cli(Some(&x.o.admin))
        .args(["usage", "summary", "--group-by", "day"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("P95_DURATION_MS"));
}

on_both_stores!(
    paging_with_after_returns_each_event_once,
    paging_with_after_returns_each_event_once_pooled,
    paging_with_after_returns_each_event_once_on
);

async fn paging_with_after_returns_each_event_once_on(s: Server) {
    let (x, events) = acme_with_workload(&s).await;
    let k = x.o.admin.as_str();
    let all_ids: Vec<&str> = events.iter().map(|e| e["id"].as_str().unwrap()).collect();

    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let path = match &after {
            Some(a) => format!("/v1/usage?limit=3&after={a}"),
            None => "/v1/usage?limit=3".to_string(),
        };
        let page = s.get(&path, k).await;
        let page = page.as_array().unwrap();
        assert!(page.len() <= 3);
        if page.is_empty() {
            break;
        }
        seen.extend(page.iter().map(|e| e["id"].as_str().unwrap().to_string()));
        after = page.last().map(|e| e["id"].as_str().unwrap().to_string());
    }
    assert_eq!(seen, all_ids, "pages in order, each event once");
    // Time order.
    let ats: Vec<&str> = events.iter().map(|e| e["at"].as_str().unwrap()).collect();
    let mut sorted = ats.clone();
    sorted.sort();
    assert_eq!(ats, sorted);
    // A cursor that is no event of this org reads nothing.
    let stranger = "0190a000-0000-7000-8000-000000000000";
    let page = s.get(&format!("/v1/usage?after={stranger}"), k).await;
    assert_eq!(page, json!([]));
    // since/until on the list.
    let mid = events[5]["at"].as_str().unwrap();
    let later = s.get(&format!("/v1/usage?since={}", enc(mid)), k).await;
    assert!(
        later
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["at"].as_str().unwrap() >= mid)
    );
    let earlier = s.get(&format!("/v1/usage?until={}", enc(mid)), k).await;
    assert_eq!(
        later.as_array().unwrap().len() + earlier.as_array().unwrap().len(),
        11
    );

    // The CLI: `tenantry usage` lists, `usage list --after` pages.
    let v = cli_json(s.cli(Some(k)).args(["--json", "usage", "--limit", "4"]));
    assert_eq!(v.as_array().unwrap().len(), 4);
    let v = cli_json(
        s.cli(Some(k))
            .args(["--json", "usage", "list", "--after", all_ids[8]]),
    );
    assert_eq!(strs(&v, "id"), all_ids[9..]);
}

on_both_stores!(
    export_jsonl_and_csv_hold_exactly_the_orgs_events,
    export_jsonl_and_csv_hold_exactly_the_orgs_events_pooled,
    export_jsonl_and_csv_hold_exactly_the_orgs_events_on
);

async fn export_jsonl_and_csv_hold_exactly_the_orgs_events_on(s: Server) {
    let (x, events) = acme_with_workload(&s).await;
    let k = x.o.admin.as_str();

    // JSON lines: the same objects as the list, in the same order.
    let (st, body, ctype) = raw_get(&s, "/v1/usage/export?format=jsonl", &x.o.admin).await;
    assert_eq!(st, 200, "{body}");
    assert!(ctype.starts_with("application/x-ndjson"), "{ctype}");
    let lines: Vec<Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines, events);
    assert!(body.ends_with('\n'));

    // CSV: header row, one record per event, the same values.
    let (st, body, ctype) = raw_get(&s, "/v1/usage/export?format=csv", &x.o.admin).await;
    assert_eq!(st, 200, "{body}");
    assert!(ctype.starts_with("text/csv"), "{ctype}");
    let mut r = csv::Reader::from_reader(body.as_bytes());
    let header: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(header, CSV_COLUMNS);
    let recs: Vec<csv::StringRecord> = r.records().map(|x| x.unwrap()).collect();
    assert_eq!(recs.len(), events.len());
    for (rec, e) in recs.iter().zip(&events) {
        for (i, col) in CSV_COLUMNS.iter().enumerate() {
            let want = match &e[*col] {
                Value::String(v) => v.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            };
            if *col == "at" {
                assert_eq!(instant(&rec[i]), instant(&want));
            } else {
                assert_eq!(rec[i], want, "{col}");
            }
        }
    }

    // A range and an install filter.
    let mid = events[5]["at"].as_str().unwrap();
    let q = format!(
        "/v1/usage/export?since={}&install_id={}",
        enc(mid),
        x.attacks
    );
    let (_, body, _) = raw_get(&s, &q, k).await;
    let want = events
        .iter()
        .filter(|e| e["at"].as_str().unwrap() >= mid && e["install_id"] == x.attacks.as_str())
        .count();
    assert_eq!(body.lines().count(), want);
    // An empty range: CSV is just the header; JSON lines is empty.
    let q = "/v1/usage/export?format=csv&since=2999-01-01T00:00:00Z";
    let (_, body, _) = raw_get(&s, q, k).await;
    assert_eq!(body.trim_end(), CSV_COLUMNS.join(","));
    let (_, body, _) = raw_get(&s, "/v1/usage/export?since=2999-01-01T00:00:00Z", k).await;
    assert_eq!(body, "");

    // The CLI writes the same file.
    let file = s.data_dir().join("usage-export.csv");
    cli_ok(
        s.cli(Some(k))
            .args(["usage", "export", "--format", "csv", "--output"])
            .arg(&file),
    );
    let text = std::fs::read_to_string(&file).unwrap();
    let mut r = csv::Reader::from_reader(text.as_bytes());
    assert_eq!(r.records().count(), 11);
    let out = s.cli(Some(k)).args(["usage", "export"]).output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 11);
}

on_both_stores!(
    export_and_summary_never_include_another_orgs_usage,
    export_and_summary_never_include_another_orgs_usage_pooled,
    export_and_summary_never_include_another_orgs_usage_on
);

/// The attack: org B exports, summarises and pages usage (also with a cursor taken
/// from org A's events) hoping to read A's metering. B sees exactly its own events.
async fn export_and_summary_never_include_another_orgs_usage_on(s: Server) {
    publish_examples(&s).await;
    let a = setup_org(&s, "victim").await;
    let b = setup_org(&s, "attacker").await;
    let a_events = workload(&s, &a).await;
    invoke(&s, &b.o.member, &b.echo, "echo", "OK").await;
    invoke(&s, &b.o.member, &b.echo, "echo", "OK").await;
    let b_events = usage_events(&s, &b.o.admin, 2).await;
    let b_ids: HashSet<String> = strs(&b_events, "id")
        .into_iter()
        .map(String::from)
        .collect();

    let mut a_markers: Vec<String> = a_events
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    a_markers.extend([
        a.o.id.clone(),
        a.echo.clone(),
        a.attacks.clone(),
        a.o.agent_id.clone(),
    ]);

    for (role, key) in b.o.keys() {
        let mut bodies = Vec::new();
        for path in [
            "/v1/usage/export?format=jsonl",
            "/v1/usage/export?format=csv",
        ] {
            let (st, body, _) = raw_get(&s, path, key).await;
            bodies.push((path.to_string(), st, body));
        }
        for q in ["none", "day", "plugin", "install", "agent"] {
            let path = format!("/v1/usage/summary?group_by={q}");
            let (st, body, _) = raw_get(&s, &path, key).await;
            bodies.push((path, st, body));
        }
        // A's event ids as cursors, and A's install as a filter.
        for path in [
            format!("/v1/usage?after={}", a_markers[0]),
            format!("/v1/usage/export?after={}", a_markers[3]),
            format!("/v1/usage?install_id={}", a.echo),
            format!("/v1/usage/export?format=csv&install_id={}", a.echo),
            format!("/v1/usage/summary?install_id={}", a.echo),
        ] {
            let (st, body, _) = raw_get(&s, &path, key).await;
            bodies.push((path, st, body));
        }
        for (path, st, body) in &bodies {
            // Every principal of B holds `read_org` (the agent by its grant).
            assert_eq!(*st, 200, "{role}: {path} -> {st}: {body}");
            for m in &a_markers {
                assert!(
                    !body.contains(m.as_str()),
                    "{role} of B: {path} leaked {m}: {body}"
                );
            }
        }
        let (st, body, _) = raw_get(&s, "/v1/usage/export", key).await;
        assert_eq!(st, 200, "{role}: export -> {st}: {body}");
        let ids: HashSet<String> = body
            .lines()
            .map(|l| {
                serde_json::from_str::<Value>(l).unwrap()["id"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(ids, b_ids, "{role}: export holds exactly B's events");
    }
    // B's summary counts only B's two invocations.
    let r = s.get("/v1/usage/summary", &b.o.admin).await;
    assert_eq!(row(&r, "all")["count"], 2);
    // A still sees all of its own.
    let r = s.get("/v1/usage/summary", &a.o.admin).await;
    assert_eq!(row(&r, "all")["count"], 11);
}

on_both_stores!(
    bad_usage_parameters_are_400_and_change_nothing,
    bad_usage_parameters_are_400_and_change_nothing_pooled,
    bad_usage_parameters_are_400_and_change_nothing_on
);

async fn bad_usage_parameters_are_400_and_change_nothing_on(s: Server) {
    publish_examples(&s).await;
    let x = setup_org(&s, "acme").await;
    invoke(&s, &x.o.member, &x.echo, "echo", "OK").await;
    usage_events(&s, &x.o.admin, 1).await;
    let usage_before = s.rows(Some(&x.o.id), "usage_events").await;
    let audit_before = s.rows(Some(&x.o.id), "audit").await;
    for path in [
        "/v1/usage/summary?group_by=week",
        "/v1/usage/summary?group_by=",
        "/v1/usage/summary?since=yesterday",
        "/v1/usage/summary?until=2026-13-01T00:00:00Z",
        "/v1/usage/summary?since=2026-02-01T00:00:00Z&until=2026-01-01T00:00:00Z",
        "/v1/usage/export?format=xml",
        "/v1/usage/export?format=CSV",
        "/v1/usage/export?since=2026-01-01",
        "/v1/usage/export?after=not-an-id",
        "/v1/usage?since=1700000000",
        "/v1/usage?after=42",
        "/v1/usage?limit=-1",
        "/v1/usage?since=2026-02-01T00:00:00Z&until=2026-01-01T00:00:00Z",
    ] {
        let v = s
            .refused(
                "GET",
                path,
                Some(&x.o.admin),
                None,
                (400, "INVALID_REQUEST"),
            )
            .await;
        assert!(v["error"]["request_id"].is_string(), "{v}");
    }
    // Authentication is checked before parameters.
    let (st, _) = s
        .call("GET", "/v1/usage/summary?group_by=week", None, None)
        .await;
    assert_eq!(st, 401);
    assert_eq!(s.rows(Some(&x.o.id), "usage_events").await, usage_before);
    assert_eq!(s.rows(Some(&x.o.id), "audit").await, audit_before);
    // The CLI refuses unknown values before sending anything.
    let out = s
        .cli(Some(&x.o.admin))
        .args(["usage", "summary", "--group-by", "week"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let out = s
        .cli(Some(&x.o.admin))
        .args(["usage", "export", "--since", "yesterday"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("INVALID_REQUEST"));
}

/// Percent-encodes a query value (RFC 3339 times carry `:` and maybe `+`).
fn enc(v: &str) -> String {
    v.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// An RFC 3339 instant.
fn instant(t: &str) -> time::OffsetDateTime {
    time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).unwrap()
}

/// GET returning status, raw body text and content type.
async fn raw_get(s: &Server, path: &str, key: &str) -> (u16, String, String) {
    let res = common::http()
        .get(format!("{}{path}", s.url))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    let st = res.status().as_u16();
    let ct = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    (st, res.text().await.unwrap(), ct)
}
