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
        .create("/v1/installs", &a.admin, json!({"plugin": "@acme/weather", "config": {"greeting": "hello from alpha"}, "grants": {"kv": true, "secrets": ["api_token"]}}))
        .await;
    let ib = s
        .create("/v1/installs", &b.admin, json!({"plugin": "@acme/weather", "version": "^1", "config": {"greeting": "hello from beta"}}))
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
    s.set_secret(&a.owner, ia_id, "api_token", "alpha-token")
        .await;
    s.set_secret(&b.owner, ib_id, "api_token", "beta-token")
        .await;
    let list = s
        .get(&format!("/v1/installs/{ia_id}/secrets"), &a.viewer)
        .await;
    assert_eq!(list[0]["name"], "api_token");
    assert!(!list.to_string().contains("alpha-token"));

    // Bindings.
    s.bind(&a, ia_id).await;
    s.bind(&b, ib_id).await;

    // Each org sees only its own installs, config, secrets, bindings and audit.
    for (o, mine, theirs, greeting) in [(&a, ia_id, ib_id, "alpha"), (&b, ib_id, ia_id, "beta")] {
        let installs = s.get("/v1/installs", &o.viewer).await;
        assert_eq!(installs.as_array().unwrap().len(), 1);
        assert_eq!(installs[0]["id"], mine);
        assert!(
            installs[0]["config"]["greeting"]
                .as_str()
                .unwrap()
                .contains(greeting)
        );
        assert!(!installs.to_string().contains(theirs));
        let path = format!("/v1/installs/{theirs}");
        assert_eq!(s.get_status(&path, &o.owner).await, 404);
        let bindings = s.get("/v1/bindings", &o.viewer).await;
        assert_eq!(bindings.as_array().unwrap().len(), 1);
        assert_eq!(bindings[0]["install_id"], mine);
        let audit = s.get("/v1/audit?limit=1000", &o.admin).await;
        let text = audit.to_string();
        assert!(text.contains(mine) && !text.contains(theirs));
        assert!(
            audit
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["action"] == "secret.set")
        );
        let me = s.get("/v1/org", &o.viewer).await;
        assert_eq!(me["id"], o.id.as_str());
    }

    // Registry is global: search finds the plugin, ratings aggregate, orgs stay hidden.
    let found = s.get("/v1/plugins?q=weather", &a.viewer).await;
    assert_eq!(found[0]["name"], "@acme/weather");
    for (key, rating, body) in [
        (&a.admin, 5, "great"),
        (&a.admin, 4, "good"),
        (&b.admin, 2, "meh"),
    ] {
        let review = json!({"rating": rating, "body": body});
        s.review(key, "@acme/weather", review).await;
    }
    let shown = s.get("/v1/plugins/@acme/weather", &b.viewer).await;
    assert_eq!(shown["rating_count"], 2, "one review per org, editable");
    assert_eq!(shown["rating_average"], 3.0);
    let reviews = s.get("/v1/plugins/@acme/weather/reviews", &b.viewer).await;
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
    let p = acme_publishes(&s, "geo", "geo").await;
    let mut app = manifest("acme", "app", "1.0.0");
    app["dependencies"] = json!({"@acme/geo": "^1"});
    app["permissions"]["tools"] = json!(["@acme/geo#run"]);
    s.publish(&p, &app, &component("app-1")).await;
    app["version"] = json!("1.1.0");
    s.publish(&p, &app, &component("app-1.1")).await;

    let o = org(&s, "gamma").await;
    let admin = o.admin.as_str();
    // Missing dependency is named.
    let e = s
        .refused(
            "POST",
            "/v1/installs",
            Some(admin),
            Some(json!({"plugin": "@acme/app", "version": "1.0.0", "config": {"greeting": "x"}})),
            (409, "DEPENDENCY_MISSING"),
        )
        .await;
    assert_message_contains(&e, "@acme/geo");
    let gid = s
        .install(
            admin,
            json!({"plugin": "@acme/geo", "config": {"greeting": "g"}}),
        )
        .await;
    let id = s
        .install(admin, json!({"plugin": "@acme/app", "version": "1.0.0", "config": {"greeting": "x"}, "grants": {"tools": ["@acme/geo#run"]}}))
        .await;
    let version = format!("/v1/installs/{id}/version");
    let up = s
        .ok(
            "POST",
            &version,
            Some(admin),
            Some(json!({"version": "^1.1"})),
            200,
        )
        .await;
    assert_eq!(up["version"], "1.1.0");
    assert_eq!(up["previous_version"], "1.0.0");
    let back = s
        .ok(
            "POST",
            &version,
            Some(admin),
            Some(json!({"version": null})),
            200,
        )
        .await;
    assert_eq!(back["version"], "1.0.0");

    // Disable / enable, config change validated.
    let install = format!("/v1/installs/{id}");
    s.patch(&install, admin, json!({"enabled": false})).await;
    s.refused(
        "PATCH",
        &install,
        Some(admin),
        Some(json!({"config": {"greeting": 5}})),
        (400, "INVALID_CONFIG"),
    )
    .await;

    // A dependency in use cannot be uninstalled; the dependent can.
    let geo = format!("/v1/installs/{gid}");
    s.refused(
        "DELETE",
        &geo,
        Some(admin),
        None,
        (409, "DEPENDENCY_IN_USE"),
    )
    .await;
    s.set_secret(&o.owner, &id, "api_token", "t").await;
    s.delete(&install, admin, 204).await;
    assert_eq!(
        s.rows(Some(&o.id), "secrets").await,
        0,
        "uninstall destroys secrets"
    );
    s.delete(&geo, admin, 204).await;
}

on_both_stores!(
    roles_and_agents_cannot_exceed_their_permissions,
    roles_and_agents_cannot_exceed_their_permissions_pooled,
    roles_and_agents_cannot_exceed_their_permissions_on
);

async fn roles_and_agents_cannot_exceed_their_permissions_on(s: Server) {
    let o = org(&s, "delta").await;
    for (key, path, body) in [
        // Viewers read, cannot install.
        (&o.viewer, "/v1/installs", json!({"plugin": "@x/y"})),
        // An admin cannot mint an owner key or make an owner.
        (
            &o.admin,
            "/v1/keys",
            json!({"owner": {"kind": "user", "id": o.owner_user_id}, "name": "steal"}),
        ),
        (
            &o.admin,
            "/v1/users",
            json!({"name": "mallory", "role": "owner"}),
        ),
    ] {
        let (st, _) = s.call("POST", path, Some(key), Some(body)).await;
        assert_eq!(st, 403, "{path}");
    }
    // An agent's grants must be within its user's role.
    let users = s.get("/v1/users", &o.owner).await;
    let user_id = |role: &str| {
        users
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["role"] == role)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let viewer_id = user_id("viewer");
    s.refused(
        "POST",
        "/v1/agents",
        Some(&o.owner),
        Some(json!({"name": "x", "on_behalf_of": viewer_id, "grants": ["invoke"]})),
        (400, "INVALID_GRANT"),
    )
    .await;
    // A user who loses a permission takes it from their agents, at the next request.
    let member_id = user_id("member");
    let may_invoke = |me: &serde_json::Value| {
        me["permissions"]
            .as_array()
            .unwrap()
            .contains(&json!("invoke"))
    };
    let me = s.get("/v1/org", &o.agent).await;
    assert!(may_invoke(&me));
    s.patch(
        &format!("/v1/users/{member_id}"),
        &o.owner,
        json!({"role": "viewer"}),
    )
    .await;
    let me = s.get("/v1/org", &o.agent).await;
    assert!(!may_invoke(&me), "{me}");
    // Revoked and expired keys stop working.
    let (key_id, key) = s
        .create_key(&o.viewer, json!({"owner": {"kind": "self"}, "name": "tmp"}))
        .await;
    s.get("/v1/org", &key).await;
    s.delete(&format!("/v1/keys/{key_id}"), &o.viewer, 200)
        .await;
    s.refused("GET", "/v1/org", Some(&key), None, (401, "UNAUTHENTICATED"))
        .await;
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
        .create(
            "/v1/users",
            &o.admin,
            json!({"name": "late@x", "role": "member"}),
        )
        .await;
    s.crash_and_restart();
    let users = s.get("/v1/users", &o.viewer).await;
    assert!(
        users.as_array().unwrap().iter().any(|x| x["id"] == u["id"]),
        "{users}"
    );
    s.get("/v1/orgs", &s.operator_key.clone()).await;
}

#[tokio::test]
async fn plugin_author_workflow_is_three_commands() {
    let s = Server::start();
    let dir = plugin_dir(&manifest("author", "hello", "0.1.0"), &component("hello"));
    let key_file = dir.path().join("publisher.key");
    let kg = cli_json(
        s.cli(None)
            .args(["--json", "plugin", "keygen", "--out"])
            .arg(&key_file),
    );
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&key_file).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    cli_ok(s.cli(Some(&s.operator_key)).args([
        "publisher",
        "register",
        "author",
        "--public-key",
        kg["public_key"].as_str().unwrap(),
    ]));
    cli_ok(
        s.cli(None)
            .args(["plugin", "sign"])
            .arg(dir.path())
            .arg("--key")
            .arg(&key_file),
    );
    cli_ok(
        s.cli(Some(&s.operator_key))
            .args(["plugin", "publish"])
            .arg(dir.path()),
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
