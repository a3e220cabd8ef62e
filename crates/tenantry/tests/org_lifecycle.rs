//! The org lifecycle the operator drives: suspend (every key of the org refused with
//! `ORG_SUSPENDED`, data kept, other orgs untouched) and resume, audited in the org.

mod common;

use common::*;
use serde_json::json;

on_both_stores!(
    a_suspended_orgs_keys_are_refused_until_it_is_resumed,
    a_suspended_orgs_keys_are_refused_until_it_is_resumed_pooled,
    suspension_on
);

async fn suspension_on(s: Server) {
    publish_examples(&s).await;
    let op = s.operator_key.clone();
    let (o, install) = org_with_install(&s, "acme", echo_install()).await;
    let (other, other_install) = org_with_install(&s, "globex", echo_install()).await;
    s.bind(&o, &install).await;
    s.run(&o.member, &install, "echo", json!({"x": 1})).await;
    let suspend = format!("/v1/orgs/{}/suspend", o.id);

    // Bad input changes nothing.
    for bad in [
        json!({"reason": ""}),
        json!({"reason": "  "}),
        json!({"reason": "x".repeat(501)}),
        json!({"reason": "a\u{0}b"}),
        json!({}),
        json!({"reason": "t", "extra": 1}),
    ] {
        let (st, v) = s.call("POST", &suspend, Some(&op), Some(bad.clone())).await;
        assert!((400..500).contains(&st), "{bad}: {st} {v}");
    }
    s.ok("GET", "/v1/org", Some(&o.member), None, 200).await;
    // Only the operator suspends.
    for key in [&o.owner, &other.owner] {
        s.refused(
            "POST",
            &suspend,
            Some(key),
            Some(json!({"reason": "T-1"})),
            (403, "PERMISSION_DENIED"),
        )
        .await;
    }
    s.refused(
        "POST",
        &format!(
            "/v1/orgs/{}/suspend",
            "0190f000-0000-7000-8000-000000000001"
        ),
        Some(&op),
        Some(json!({"reason": "T-1"})),
        (404, "NOT_FOUND"),
    )
    .await;

    let org = s
        .ok(
            "POST",
            &suspend,
            Some(&op),
            Some(json!({"reason": "ticket T-42: unpaid"})),
            200,
        )
        .await;
    assert!(org["suspended_at"].is_string(), "{org}");
    // Every key of the org, every route: refused with a clear code.
    for (role, key) in o.keys() {
        for (method, path) in [
            ("GET", "/v1/org".to_string()),
            ("GET", "/v1/audit".to_string()),
            ("POST", invoke_path(&install)),
        ] {
            let body = (method == "POST").then(|| json!({"action": "echo", "input": {}}));
            let v = s
                .refused(method, &path, Some(key), body, (403, "ORG_SUSPENDED"))
                .await;
            assert!(
                v["error"]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("resume")),
                "{role}: says what to do: {v}"
            );
        }
    }
    // The other org works; the operator still sees and manages the suspended one.
    s.run(&other.member, &other_install, "echo", json!({}))
        .await;
    let orgs = s.get("/v1/orgs", &op).await;
    let listed = orgs
        .as_array()
        .and_then(|a| a.iter().find(|x| x["id"] == o.id.as_str()))
        .cloned()
        .expect("listed");
    assert_eq!(listed["suspended_at"], org["suspended_at"], "{listed}");
    assert!(
        orgs.as_array()
            .and_then(|a| a.iter().find(|x| x["id"] == other.id.as_str()))
            .is_some_and(|x| x.get("suspended_at").is_none()),
        "{orgs}"
    );
    s.get(&format!("/v1/orgs/{}/audit/verify", o.id), &op).await;
    // Suspending again keeps the first time.
    let again = s
        .ok(
            "POST",
            &suspend,
            Some(&op),
            Some(json!({"reason": "T-43"})),
            200,
        )
        .await;
    assert_eq!(again["suspended_at"], org["suspended_at"]);

    // The CLI resumes it; everything works again, data kept.
    cli_ok(s.cli(Some(&op)).args(["org", "resume", "acme"]));
    s.run(&o.member, &install, "echo", json!({"x": 2})).await;
    let audit = s.get("/v1/audit?limit=1000", &o.admin).await;
    let actions = strs(&audit, "action");
    assert!(
        actions.contains(&"org.suspend") && actions.contains(&"org.resume"),
        "{actions:?}"
    );
    let text = audit.to_string();
    assert!(
        text.contains("ticket T-42: unpaid"),
        "the reason is audited: {text}"
    );
    let me = s.get("/v1/org", &o.member).await;
    assert!(me.get("suspended_at").is_none(), "{me}");
    // And the CLI suspends.
    cli_ok(
        s.cli(Some(&op))
            .args(["org", "suspend", "acme", "--reason", "T-44"]),
    );
    s.refused(
        "GET",
        "/v1/org",
        Some(&o.agent),
        None,
        (403, "ORG_SUSPENDED"),
    )
    .await;
    let v = s.get("/v1/audit/verify", &other.admin).await;
    assert_eq!(v["intact"], true, "{v}");
}
