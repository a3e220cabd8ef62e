//! The whole flow over the real HTTP API: the operator registers a publisher, the
//! publisher signs and publishes, two orgs install the same plugin with different
//! config and secrets, and each sees only its own.

mod common;

use common::*;
use serde_json::json;

on_both_stores!(
    two_orgs_install_the_same_plugin_and_see_only_their_own,
    two_orgs_install_the_same_plugin_and_see_only_their_own_pooled,
    two_orgs_install_the_same_plugin_and_see_only_their_own_on
);

async fn two_orgs_install_the_same_plugin_and_see_only_their_own_on(s: Server) {
    let p = publisher(&s, "acme").await;
    let m = manifest("acme", "weather", "1.0.0");
    let v = s.publish(&p, &m, &component("weather-1")).await;
    assert_eq!(v["version"], "1.0.0");

    let a = org(&s, "alpha").await;
    let b = org(&s, "beta").await;

    // Same plugin, different config, in each org.
    let ia = s
        .ok("POST", "/v1/installs", Some(&a.admin), Some(json!({"plugin": "@acme/weather", "config": {"greeting": "hello from alpha"}, "grants": {"kv": true, "secrets": ["api_token"]}})), 201)
        .await;
    let ib = s
        .ok("POST", "/v1/installs", Some(&b.admin), Some(json!({"plugin": "@acme/weather", "version": "^1", "config": {"greeting": "hello from beta"}})), 201)
        .await;
    assert_eq!(ia["requested"]["secrets"], json!(["api_token"]));
    assert_eq!(ia["grants"]["secrets"], json!(["api_token"]));
    assert_eq!(ib["grants"]["kv"], json!(false));
    let (ia_id, ib_id) = (ia["id"].as_str().unwrap(), ib["id"].as_str().unwrap());

    // Secrets: owners only; write-only.
    let (st, _) = s
        .call(
            "PUT",
            &format!("/v1/installs/{ia_id}/secrets/api_token"),
            Some(&a.admin),
            Some(json!({"value": "alpha-token"})),
        )
        .await;
    assert_eq!(st, 403, "admins cannot set secrets");
    s.ok(
        "PUT",
        &format!("/v1/installs/{ia_id}/secrets/api_token"),
        Some(&a.owner),
        Some(json!({"value": "alpha-token"})),
        200,
    )
    .await;
    s.ok(
        "PUT",
        &format!("/v1/installs/{ib_id}/secrets/api_token"),
        Some(&b.owner),
        Some(json!({"value": "beta-token"})),
        200,
    )
    .await;
    let list = s
        .ok(
            "GET",
            &format!("/v1/installs/{ia_id}/secrets"),
            Some(&a.viewer),
            None,
            200,
        )
        .await;
    assert_eq!(list[0]["name"], "api_token");
    assert!(!list.to_string().contains("alpha-token"));

    // Bindings.
    s.ok(
        "PUT",
        &format!("/v1/agents/{}/installs/{ia_id}", a.agent_id),
        Some(&a.admin),
        None,
        201,
    )
    .await;
    s.ok(
        "PUT",
        &format!("/v1/agents/{}/installs/{ib_id}", b.agent_id),
        Some(&b.admin),
        None,
        201,
    )
    .await;

    // Each org sees only its own installs, config, secrets, bindings and audit.
    for (o, mine, theirs, greeting) in [(&a, ia_id, ib_id, "alpha"), (&b, ib_id, ia_id, "beta")] {
        let installs = s
            .ok("GET", "/v1/installs", Some(&o.viewer), None, 200)
            .await;
        assert_eq!(installs.as_array().unwrap().len(), 1);
        assert_eq!(installs[0]["id"], mine);
        assert!(
            installs[0]["config"]["greeting"]
                .as_str()
                .unwrap()
                .contains(greeting)
        );
        assert!(!installs.to_string().contains(theirs));
        let (st, _) = s
            .call(
                "GET",
                &format!("/v1/installs/{theirs}"),
                Some(&o.owner),
                None,
            )
            .await;
        assert_eq!(st, 404);
        let bindings = s
            .ok("GET", "/v1/bindings", Some(&o.viewer), None, 200)
            .await;
        assert_eq!(bindings.as_array().unwrap().len(), 1);
        assert_eq!(bindings[0]["install_id"], mine);
        let audit = s
            .ok("GET", "/v1/audit?limit=1000", Some(&o.admin), None, 200)
            .await;
        let text = audit.to_string();
        assert!(text.contains(mine) && !text.contains(theirs));
        assert!(
            audit
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["action"] == "secret.set")
        );
        let me = s.ok("GET", "/v1/org", Some(&o.viewer), None, 200).await;
        assert_eq!(me["id"], o.id.as_str());
    }

    // Registry is global: search finds the plugin, ratings aggregate, orgs stay hidden.
    let found = s
        .ok("GET", "/v1/plugins?q=weather", Some(&a.viewer), None, 200)
        .await;
    assert_eq!(found[0]["name"], "@acme/weather");
    s.ok(
        "PUT",
        "/v1/plugins/@acme/weather/review",
        Some(&a.admin),
        Some(json!({"rating": 5, "body": "great"})),
        200,
    )
    .await;
    s.ok(
        "PUT",
        "/v1/plugins/@acme/weather/review",
        Some(&a.admin),
        Some(json!({"rating": 4, "body": "good"})),
        200,
    )
    .await;
    s.ok(
        "PUT",
        "/v1/plugins/@acme/weather/review",
        Some(&b.admin),
        Some(json!({"rating": 2, "body": "meh"})),
        200,
    )
    .await;
    let shown = s
        .ok(
            "GET",
            "/v1/plugins/@acme/weather",
            Some(&b.viewer),
            None,
            200,
        )
        .await;
    assert_eq!(shown["rating_count"], 2, "one review per org, editable");
    assert_eq!(shown["rating_average"], 3.0);
    let reviews = s
        .ok(
            "GET",
            "/v1/plugins/@acme/weather/reviews",
            Some(&b.viewer),
            None,
            200,
        )
        .await;
    assert!(!reviews.to_string().contains(&a.id) && !reviews.to_string().contains(&b.id));
    assert_eq!(
        reviews
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["mine"] == true)
            .count(),
        1
    );
}

on_both_stores!(
    upgrade_rollback_dependencies_and_uninstall,
    upgrade_rollback_dependencies_and_uninstall_pooled,
    upgrade_rollback_dependencies_and_uninstall_on
);

async fn upgrade_rollback_dependencies_and_uninstall_on(s: Server) {
    let p = publisher(&s, "acme").await;
    let geo = manifest("acme", "geo", "1.0.0");
    s.publish(&p, &geo, &component("geo")).await;
    let mut app = manifest("acme", "app", "1.0.0");
    app["dependencies"] = json!({"@acme/geo": "^1"});
    app["permissions"]["tools"] = json!(["@acme/geo#run"]);
    s.publish(&p, &app, &component("app-1")).await;
    app["version"] = json!("1.1.0");
    s.publish(&p, &app, &component("app-1.1")).await;

    let o = org(&s, "gamma").await;
    let admin = Some(o.admin.as_str());
    // Missing dependency is named.
    let (st, e) = s
        .call(
            "POST",
            "/v1/installs",
            admin,
            Some(json!({"plugin": "@acme/app", "version": "1.0.0", "config": {"greeting": "x"}})),
        )
        .await;
    assert_eq!(st, 409, "{e}");
    assert_eq!(e["error"]["code"], "DEPENDENCY_MISSING");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("@acme/geo")
    );
    let g = s
        .ok(
            "POST",
            "/v1/installs",
            admin,
            Some(json!({"plugin": "@acme/geo", "config": {"greeting": "g"}})),
            201,
        )
        .await;
    let i = s
        .ok("POST", "/v1/installs", admin, Some(json!({"plugin": "@acme/app", "version": "1.0.0", "config": {"greeting": "x"}, "grants": {"tools": ["@acme/geo#run"]}})), 201)
        .await;
    let id = i["id"].as_str().unwrap();
    let up = s
        .ok(
            "POST",
            &format!("/v1/installs/{id}/version"),
            admin,
            Some(json!({"version": "^1.1"})),
            200,
        )
        .await;
    assert_eq!(up["version"], "1.1.0");
    assert_eq!(up["previous_version"], "1.0.0");
    let back = s
        .ok(
            "POST",
            &format!("/v1/installs/{id}/version"),
            admin,
            Some(json!({"version": null})),
            200,
        )
        .await;
    assert_eq!(back["version"], "1.0.0");

    // Disable / enable, config change validated.
    s.ok(
        "PATCH",
        &format!("/v1/installs/{id}"),
        admin,
        Some(json!({"enabled": false})),
        200,
    )
    .await;
    let (st, e) = s
        .call(
            "PATCH",
            &format!("/v1/installs/{id}"),
            admin,
            Some(json!({"config": {"greeting": 5}})),
        )
        .await;
    assert_eq!(
        (st, e["error"]["code"].as_str()),
        (400, Some("INVALID_CONFIG")),
        "{e}"
    );

    // A dependency in use cannot be uninstalled; the dependent can.
    let gid = g["id"].as_str().unwrap();
    let (st, e) = s
        .call("DELETE", &format!("/v1/installs/{gid}"), admin, None)
        .await;
    assert_eq!(
        (st, e["error"]["code"].as_str()),
        (409, Some("DEPENDENCY_IN_USE")),
        "{e}"
    );
    s.ok(
        "PUT",
        &format!("/v1/installs/{id}/secrets/api_token"),
        Some(&o.owner),
        Some(json!({"value": "t"})),
        200,
    )
    .await;
    s.ok("DELETE", &format!("/v1/installs/{id}"), admin, None, 204)
        .await;
    assert_eq!(
        s.rows(Some(&o.id), "secrets").await,
        0,
        "uninstall destroys secrets"
    );
    s.ok("DELETE", &format!("/v1/installs/{gid}"), admin, None, 204)
        .await;
}

on_both_stores!(
    roles_and_agents_cannot_exceed_their_permissions,
    roles_and_agents_cannot_exceed_their_permissions_pooled,
    roles_and_agents_cannot_exceed_their_permissions_on
);

async fn roles_and_agents_cannot_exceed_their_permissions_on(s: Server) {
    let o = org(&s, "delta").await;
    // Viewers read, cannot install.
    let (st, _) = s
        .call(
            "POST",
            "/v1/installs",
            Some(&o.viewer),
            Some(json!({"plugin": "@x/y"})),
        )
        .await;
    assert_eq!(st, 403);
    // An admin cannot mint an owner key or make an owner.
    let (st, _) = s
        .call(
            "POST",
            "/v1/keys",
            Some(&o.admin),
            Some(json!({"owner": {"kind": "user", "id": o.owner_user_id}, "name": "steal"})),
        )
        .await;
    assert_eq!(st, 403);
    let (st, _) = s
        .call(
            "POST",
            "/v1/users",
            Some(&o.admin),
            Some(json!({"name": "mallory", "role": "owner"})),
        )
        .await;
    assert_eq!(st, 403);
    // An agent's grants must be within its user's role.
    let users = s.ok("GET", "/v1/users", Some(&o.owner), None, 200).await;
    let viewer_id = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["role"] == "viewer")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (st, e) = s
        .call(
            "POST",
            "/v1/agents",
            Some(&o.owner),
            Some(json!({"name": "x", "on_behalf_of": viewer_id, "grants": ["invoke"]})),
        )
        .await;
    assert_eq!(
        (st, e["error"]["code"].as_str()),
        (400, Some("INVALID_GRANT")),
        "{e}"
    );
    // A user who loses a permission takes it from their agents, at the next request.
    let member_id = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["role"] == "member")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let me = s.ok("GET", "/v1/org", Some(&o.agent), None, 200).await;
    assert!(
        me["permissions"]
            .as_array()
            .unwrap()
            .contains(&json!("invoke"))
    );
    s.ok(
        "PATCH",
        &format!("/v1/users/{member_id}"),
        Some(&o.owner),
        Some(json!({"role": "viewer"})),
        200,
    )
    .await;
    let me = s.ok("GET", "/v1/org", Some(&o.agent), None, 200).await;
    assert!(
        !me["permissions"]
            .as_array()
            .unwrap()
            .contains(&json!("invoke")),
        "{me}"
    );
    // Revoked and expired keys stop working.
    let k = s
        .ok(
            "POST",
            "/v1/keys",
            Some(&o.viewer),
            Some(json!({"owner": {"kind": "self"}, "name": "tmp"})),
            201,
        )
        .await;
    let key = k["key"].as_str().unwrap();
    s.ok("GET", "/v1/org", Some(key), None, 200).await;
    s.ok(
        "DELETE",
        &format!("/v1/keys/{}", k["id"].as_str().unwrap()),
        Some(&o.viewer),
        None,
        200,
    )
    .await;
    let (st, e) = s.call("GET", "/v1/org", Some(key), None).await;
    assert_eq!(
        (st, e["error"]["code"].as_str()),
        (401, Some("UNAUTHENTICATED"))
    );
    // The last owner cannot be demoted.
    let (st, _) = s
        .call(
            "PATCH",
            &format!("/v1/users/{}", o.owner_user_id),
            Some(&o.owner),
            Some(json!({"role": "admin"})),
        )
        .await;
    assert_eq!(st, 409);
}

on_both_stores!(
    data_survives_kill_9_after_201,
    data_survives_kill_9_after_201_pooled,
    data_survives_kill_9_after_201_on
);

async fn data_survives_kill_9_after_201_on(mut s: Server) {
    let o = org(&s, "epsilon").await;
    let u = s
        .ok(
            "POST",
            "/v1/users",
            Some(&o.admin),
            Some(json!({"name": "late@x", "role": "member"})),
            201,
        )
        .await;
    s.crash_and_restart();
    let users = s.ok("GET", "/v1/users", Some(&o.viewer), None, 200).await;
    assert!(
        users.as_array().unwrap().iter().any(|x| x["id"] == u["id"]),
        "{users}"
    );
    s.ok("GET", "/v1/orgs", Some(&s.operator_key.clone()), None, 200)
        .await;
}

#[tokio::test]
async fn plugin_author_workflow_is_three_commands() {
    let s = Server::start();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("tenantry.json"),
        serde_json::to_vec_pretty(&manifest("author", "hello", "0.1.0")).unwrap(),
    )
    .unwrap();
    std::fs::write(dir.path().join("plugin.wasm"), component("hello")).unwrap();
    let key_file = dir.path().join("publisher.key");
    let out = s
        .cli(None)
        .args(["--json", "plugin", "keygen", "--out"])
        .arg(&key_file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let kg: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&key_file).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    let out = s
        .cli(Some(&s.operator_key))
        .args([
            "publisher",
            "register",
            "author",
            "--public-key",
            kg["public_key"].as_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = s
        .cli(None)
        .args(["plugin", "sign"])
        .arg(dir.path())
        .arg("--key")
        .arg(&key_file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = s
        .cli(Some(&s.operator_key))
        .args(["plugin", "publish"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = s
        .cli(Some(&s.operator_key))
        .args(["--json", "plugin", "show", "@author/hello"])
        .output()
        .unwrap();
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["latest_version"], "0.1.0");
    // An unknown command argument gives a clear error and non-zero exit.
    let out = s.cli(None).args(["install", "list"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("UNAUTHENTICATED"));
}
