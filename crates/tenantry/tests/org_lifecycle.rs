//! The org lifecycle the operator drives: suspend (every key of the org refused with
//! `ORG_SUSPENDED`, data kept, other orgs untouched) and resume, audited in the org.

mod common;

use common::*;
use serde_json::{Value, json};
use tenantry_store_postgres::testing::TENANT_TABLES;

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

on_both_stores!(
    a_deleted_org_leaves_nothing_behind_and_other_orgs_are_untouched,
    a_deleted_org_leaves_nothing_behind_and_other_orgs_are_untouched_pooled,
    deletion_on
);

async fn deletion_on(s: Server) {
    publish_examples(&s).await;
    let op = s.operator_key.clone();
    let pooled = s.db.is_some();
    let (o, install) = org_with_secret(&s, "acme", "acme-token").await;
    let (other, other_install) = org_with_install(&s, "globex", echo_install()).await;
    s.bind(&o, &install).await;
    let checked = s.run(&o.member, &install, "check", json!({})).await;
    assert_eq!(checked["output"]["length"], "acme-token".len(), "{checked}");
    let path = format!("/v1/orgs/{}", o.id);

    // Only the operator deletes, and only a suspended org.
    for key in [&o.owner, &other.owner, &o.agent] {
        s.refused("DELETE", &path, Some(key), None, (403, "PERMISSION_DENIED"))
            .await;
    }
    let v = s
        .refused("DELETE", &path, Some(&op), None, (409, "CONFLICT"))
        .await;
    assert_message_contains(&v, "suspend");
    s.run(&o.member, &install, "check", json!({})).await;
    s.refused(
        "DELETE",
        "/v1/orgs/0190f000-0000-7000-8000-000000000001",
        Some(&op),
        None,
        (404, "NOT_FOUND"),
    )
    .await;
    // The CLI asks for --yes before anything else.
    let out = s
        .cli(Some(&op))
        .args(["org", "delete", "acme"])
        .output()
        .expect("cli");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--yes"));

    cli_ok(
        s.cli(Some(&op))
            .args(["org", "suspend", "acme", "--reason", "T-9: offboarding"]),
    );
    let deleted = cli_json(
        s.cli(Some(&op))
            .args(["--json", "org", "delete", "acme", "--yes"]),
    );
    assert_eq!(deleted["id"], o.id.as_str(), "{deleted}");
    assert_eq!(deleted["name"], "acme");
    // Embedded: the vault is in the data directory by default; pooled: no vault
    // unless configured, and the answer says so.
    assert_eq!(deleted["keys_shredded"], !pooled, "{deleted}");

    // Nothing of the org answers: its keys are unknown, the operator sees no org.
    for (role, key) in o.keys() {
        let (st, v) = s.call("GET", "/v1/org", Some(key), None).await;
        assert_eq!(st, 401, "{role}: {v}");
    }
    s.refused("DELETE", &path, Some(&op), None, (404, "NOT_FOUND"))
        .await;
    let orgs = s.get("/v1/orgs", &op).await;
    assert!(!orgs.to_string().contains(&o.id), "{orgs}");
    // Nothing of it is stored.
    if pooled {
        for table in TENANT_TABLES {
            assert_eq!(s.rows(Some(&o.id), table).await, 0, "{table}");
        }
    } else {
        let tenants = s.data_dir().join("tenants");
        let left: Vec<_> = std::fs::read_dir(&tenants)
            .expect("tenants")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(&o.id))
            .collect();
        assert!(left.is_empty(), "{left:?}");
        assert!(
            !s.data_dir()
                .join("org-keys")
                .join(format!("{}.kek", o.id))
                .exists()
        );
    }
    assert_eq!(s.rows(None, "deleted_orgs").await, 1);
    // The operator's trail has it (a chain that still verifies); the name is free.
    let trail = s.get("/v1/operator/audit?limit=1000", &op).await;
    let entry = trail
        .as_array()
        .and_then(|a| a.iter().find(|e| e["action"] == "org.delete"))
        .cloned()
        .expect("org.delete in the operator's trail");
    assert_eq!(entry["target"], o.id.as_str(), "{entry}");
    let v = s.get("/v1/operator/audit/verify", &op).await;
    assert_eq!(v["intact"], true, "{v}");
    // The other org is untouched.
    s.run(&other.member, &other_install, "echo", json!({}))
        .await;
    let v = s.get("/v1/audit/verify", &other.admin).await;
    assert_eq!(v["intact"], true, "{v}");
    let again = org(&s, "acme").await;
    assert_ne!(again.id, o.id);
}

/// The backup attack: a copy of the data directory made before an org's deletion,
/// with the master key (kept elsewhere, as `tenantry doctor` asks) and the key vault
/// as they are after it. The same offline steps that open the secret before the
/// deletion fail after it.
#[tokio::test]
async fn a_deleted_orgs_secrets_cannot_be_decrypted_from_a_copy_of_the_data_directory_made_before_the_deletion()
 {
    let keys = tempfile::tempdir().expect("tempdir");
    let config = keys.path().join("tenantry.toml");
    let master_file = keys.path().join("master.key");
    std::fs::write(
        &config,
        format!("master_key_file = {:?}\n", master_file.to_string_lossy()),
    )
    .expect("config");
    let s = Server::start_configured(&config, false).await;
    publish_examples(&s).await;
    let op = s.operator_key.clone();
    let (o, install) = org_with_secret(&s, "acme", "acme-token").await;
    let vault = keys.path().join("org-keys");
    assert!(
        vault.join(format!("{}.kek", o.id)).exists(),
        "the vault is beside the master key"
    );

    let backup = tempfile::tempdir().expect("tempdir");
    copy_dir(s.data_dir(), backup.path());
    let copied_db = backup.path().join("tenants").join(format!("{}.db", o.id));
    assert_eq!(
        open_secret_offline(&copied_db, &master_file, &vault, &o.id, &install).await,
        Some("acme-token".to_string()),
        "before the deletion the copy opens (the test's own steps work)"
    );

    s.ok(
        "POST",
        &format!("/v1/orgs/{}/suspend", o.id),
        Some(&op),
        Some(json!({"reason": "offboarding"})),
        200,
    )
    .await;
    let d = s
        .ok(
            "DELETE",
            &format!("/v1/orgs/{}", o.id),
            Some(&op),
            None,
            200,
        )
        .await;
    assert_eq!(d["keys_shredded"], true, "{d}");
    assert_eq!(
        open_secret_offline(&copied_db, &master_file, &vault, &o.id, &install).await,
        None,
        "after the deletion the copy does not open"
    );
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir").flatten() {
        let target = to.join(e.file_name());
        if e.file_type().expect("type").is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).expect("copy");
        }
    }
}

/// What an attacker holding the copy, the master key file and the vault folder does:
/// unwrap the org key (under the org's vault KEK, or the master key) and open the
/// secret. `None` when it does not open.
async fn open_secret_offline(
    db: &std::path::Path,
    master_file: &std::path::Path,
    vault: &std::path::Path,
    org: &str,
    install: &str,
) -> Option<String> {
    use sqlx::sqlite::SqliteConnectOptions;
    use sqlx::{ConnectOptions, Row};
    use tenantry_crypto::{KeyVault, MasterKey, OrgKek, SecretAad, open_secret, unwrap_org_key};
    let mut conn = SqliteConnectOptions::new()
        .filename(db)
        .connect()
        .await
        .expect("open the copy");
    let key = sqlx::query("SELECT version, wrapped FROM org_keys ORDER BY version DESC LIMIT 1")
        .fetch_one(&mut conn)
        .await
        .expect("org key row");
    let secret =
        sqlx::query("SELECT key_version, ciphertext FROM secrets WHERE name = 'api_token'")
            .fetch_one(&mut conn)
            .await
            .expect("secret row");
    let org: tenantry_core::OrgId = org.parse().expect("org id");
    let install: tenantry_core::InstallId = install.parse().expect("install id");
    let (master, _) = MasterKey::load_or_create(master_file).expect("master key");
    let version: i64 = key.get("version");
    let version = u32::try_from(version).expect("version");
    let wrapped: Vec<u8> = key.get("wrapped");
    let keks = [
        KeyVault::open(vault)
            .expect("vault")
            .get(&master, org)
            .expect("vault read"),
        Some(OrgKek::legacy(&master)),
    ];
    let org_key = keks
        .iter()
        .flatten()
        .find_map(|kek| unwrap_org_key(kek, org, version, &wrapped).ok())?;
    let key_version: i64 = secret.get("key_version");
    let blob: Vec<u8> = secret.get("ciphertext");
    let aad = SecretAad {
        org,
        install,
        name: "api_token",
        key_version: u32::try_from(key_version).expect("key version"),
    };
    let value = open_secret(&org_key, &aad, &blob).ok()?;
    Some(String::from_utf8(value.expose().to_vec()).expect("utf-8"))
}

on_both_stores!(
    an_org_export_holds_everything_it_owns_but_no_secret_value_or_key_hash,
    an_org_export_holds_everything_it_owns_but_no_secret_value_or_key_hash_pooled,
    export_on
);

/// The export's lines, parsed; the text as a whole for leak checks.
async fn export_lines(s: &Server, key: &str) -> (Vec<Value>, String) {
    let (status, headers, body) = s
        .call_with_headers("GET", "/v1/org/export", Some(key), None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["content-type"], "application/x-ndjson");
    let text = match body {
        Value::String(t) => t,
        other => other.to_string(),
    };
    let lines = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    (lines, text)
}

fn of_kind<'a>(lines: &'a [Value], kind: &str) -> Vec<&'a Value> {
    lines.iter().filter(|l| l["kind"] == kind).collect()
}

async fn export_on(s: Server) {
    publish_examples(&s).await;
    let op = s.operator_key.clone();
    let (o, secret_install) = org_with_secret(&s, "acme", "acme-export-canary").await;
    let kv_install = s
        .install(
            &o.admin,
            json!({"plugin": "@examples/kv-counter", "grants": {"kv": true}}),
        )
        .await;
    let (other, _) = org_with_install(&s, "globex", echo_install()).await;
    s.bind(&o, &secret_install).await;
    s.bind(&o, &kv_install).await;
    s.run(&o.member, &secret_install, "check", json!({})).await;
    let counted = s
        .run(
            &o.member,
            &kv_install,
            "increment",
            json!({"name": "visits"}),
        )
        .await;
    assert_eq!(counted["outcome"], "OK", "{counted}");
    // Usage records are written in the background.
    eventually(&s, &o.admin, "/v1/usage", |v| {
        v.as_array().is_some_and(|a| a.len() >= 2)
    })
    .await;

    // Members without the audit permission, and the operator, do not export.
    for key in [&o.member, &o.viewer, &o.agent, &op] {
        let (st, v) = s.call("GET", "/v1/org/export", Some(key), None).await;
        assert_eq!(st, 403, "{v}");
    }

    let (lines, text) = export_lines(&s, &o.admin).await;
    let first = lines.first().expect("lines");
    assert_eq!(first["kind"], "export", "{first}");
    assert_eq!(first["format"], "tenantry-org-export/1");
    assert_eq!(first["org"]["id"], o.id.as_str());
    let end = lines.last().expect("lines");
    assert_eq!(end["kind"], "end", "{end}");
    // The end line counts every line before it.
    for (kind, n) in end["counts"].as_object().expect("counts") {
        assert_eq!(
            of_kind(&lines, kind).len() as u64,
            n.as_u64().expect("count"),
            "{kind}"
        );
    }
    assert_eq!(of_kind(&lines, "user").len(), 4);
    assert_eq!(of_kind(&lines, "agent").len(), 1);
    assert!(of_kind(&lines, "api_key").len() >= 5);
    let installs = of_kind(&lines, "install");
    assert_eq!(installs.len(), 2);
    let with_secret = installs
        .iter()
        .find(|i| i["id"] == secret_install.as_str())
        .expect("the secret-user install");
    assert_eq!(
        with_secret["secrets"][0]["name"], "api_token",
        "{with_secret}"
    );
    assert_eq!(of_kind(&lines, "binding").len(), 2);
    let kv = of_kind(&lines, "kv");
    assert_eq!(kv.len(), 1, "{kv:?}");
    assert_eq!(kv[0]["install_id"], kv_install.as_str());
    assert!(of_kind(&lines, "usage").len() >= 2);
    // No secret value, no key hash, nothing of the other org.
    assert!(!text.contains("acme-export-canary"));
    assert!(!text.contains("\"hash\""), "{text}");
    assert!(!text.contains(&other.id));
    // The audit trail comes whole, oldest first, each entry chained to the one
    // before, ending with this export.
    let audit = of_kind(&lines, "audit");
    for (i, e) in audit.iter().enumerate() {
        assert_eq!(e["seq"], i as u64 + 1, "{e}");
        if i > 0 {
            assert_eq!(e["prev_hash"], audit[i - 1]["row_hash"], "{e}");
        }
        assert!(e["row_hash"].is_string(), "{e}");
    }
    assert!(
        audit.iter().any(|e| e["action"] == "org.export"),
        "the export is audited"
    );

    // An operator exports through a read-only break-glass grant (offboarding).
    let grant = s
        .create(
            &format!("/v1/orgs/{}/breakglass", o.id),
            &op,
            json!({"ticket": "T-7", "reason": "offboarding export", "ttl_seconds": 600}),
        )
        .await;
    let token = grant["token"].as_str().expect("token").to_string();
    let (lines, _) = export_lines(&s, &token).await;
    assert_eq!(lines.last().expect("lines")["kind"], "end");

    // The CLI writes a file and checks it is complete.
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("acme.jsonl");
    cli_ok(
        s.cli(Some(&o.owner))
            .args(["org", "export", "--output"])
            .arg(&file),
    );
    let saved = std::fs::read_to_string(&file).expect("export file");
    assert!(saved.lines().last().is_some_and(|l| l.contains("\"end\"")));
    assert!(!dir.path().join("acme.jsonl.partial").exists());
}
