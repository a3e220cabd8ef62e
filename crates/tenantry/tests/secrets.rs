//! Secrets: never in any response or log line, and ciphertext bound to its row.

mod common;

use common::*;
use serde_json::json;

const CANARY: &str = "CANARY-7f3a9c1e-secret-value";

on_both_stores!(
    secret_canary_never_appears_in_responses_or_logs,
    secret_canary_never_appears_in_responses_or_logs_pooled,
    secret_canary_never_appears_in_responses_or_logs_on
);

async fn secret_canary_never_appears_in_responses_or_logs_on(s: Server) {
    acme_publishes(&s, "tool", "t").await;
    let o = org(&s, "iota").await;
    let id = s
        .install(&o.admin, json!({"plugin": "@acme/tool", "config": {"greeting": "x"}, "grants": {"secrets": ["api_token"]}}))
        .await;
    let secret = |name: &str| format!("/v1/installs/{id}/secrets/{name}");
    let mut bodies = Vec::new();
    bodies.push(
        s.ok(
            "PUT",
            &secret("api_token"),
            Some(&o.owner),
            Some(json!({"value": CANARY})),
            200,
        )
        .await,
    );
    // Error paths that carry the value: wrong name, non-owner, oversized.
    for (name, key, body) in [
        ("nope", &o.owner, json!({"value": CANARY})),
        ("api_token", &o.admin, json!({"value": CANARY})),
        (
            "api_token",
            &o.owner,
            json!({"value": CANARY, "extra": CANARY}),
        ),
    ] {
        bodies.push(s.call("PUT", &secret(name), Some(key), Some(body)).await.1);
    }
    for path in [
        format!("/v1/installs/{id}/secrets"),
        format!("/v1/installs/{id}"),
        "/v1/installs".into(),
        "/v1/audit?limit=1000".into(),
    ] {
        bodies.push(s.get(&path, &o.owner).await);
    }
    for b in &bodies {
        assert!(
            !b.to_string().contains(CANARY),
            "a response contained the secret: {b}"
        );
    }
    let logs = s.logs();
    assert!(
        logs.contains("secret"),
        "expected request logs to be captured"
    );
    assert!(!logs.contains(CANARY), "the log contained the secret");
    // Nor is it stored in clear anywhere under the data directory.
    for entry in walk(s.data_dir()) {
        let bytes = std::fs::read(&entry).unwrap_or_default();
        assert!(
            !bytes.windows(CANARY.len()).any(|w| w == CANARY.as_bytes()),
            "plaintext secret in {}",
            entry.display()
        );
    }
    // Pooled mode: nor in any row of any table.
    assert!(
        !s.database_text().await.contains(CANARY),
        "plaintext secret in the database"
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

on_both_stores!(
    rotating_the_org_key_reseals_every_secret_and_retires_the_old_key,
    rotating_the_org_key_reseals_every_secret_and_retires_the_old_key_pooled,
    rotation_on
);

async fn rotation_on(s: Server) {
    publish_examples(&s).await;
    let pooled = s.db.is_some();
    let (o, install) = org_with_secret(&s, "acme", CANARY).await;
    s.bind(&o, &install).await;
    let before = s.run(&o.member, &install, "check", json!({})).await;
    assert_eq!(before["output"]["set"], true, "{before}");
    assert_eq!(s.get("/v1/org", &o.member).await["key_version"], 1);

    // Only owners rotate.
    for key in [&o.admin, &o.member, &o.agent, &s.operator_key] {
        let (st, v) = s.call("POST", "/v1/org/key/rotate", Some(key), None).await;
        assert_eq!(st, 403, "{v}");
    }
    let r = s
        .ok("POST", "/v1/org/key/rotate", Some(&o.owner), None, 200)
        .await;
    assert_eq!(r["key_version"], 2, "{r}");
    assert_eq!(r["secrets_resealed"], 1, "{r}");
    // Embedded: the vault is on by default; pooled: none unless configured.
    assert_eq!(r["in_vault"], !pooled, "{r}");

    // The value is unchanged, now sealed under version 2; version 1 is gone.
    let after = s.run(&o.member, &install, "check", json!({})).await;
    assert_eq!(after["output"], before["output"], "{after}");
    let listed = s
        .get(&format!("/v1/installs/{install}/secrets"), &o.owner)
        .await;
    assert_eq!(listed[0]["key_version"], 2, "{listed}");
    assert_eq!(s.get("/v1/org", &o.member).await["key_version"], 2);
    assert_eq!(s.rows(Some(&o.id), "org_keys").await, 1);
    // New secrets use the new version; the CLI rotates again.
    s.set_secret(&o.owner, &install, "api_token", "another")
        .await;
    let listed = s
        .get(&format!("/v1/installs/{install}/secrets"), &o.owner)
        .await;
    assert_eq!(listed[0]["key_version"], 2, "{listed}");
    let v = cli_json(s.cli(Some(&o.owner)).args(["--json", "org", "rotate-key"]));
    assert_eq!(v["key_version"], 3, "{v}");
    let r = s.run(&o.member, &install, "check", json!({})).await;
    assert_eq!(r["output"]["length"], "another".len(), "{r}");
    let audit = s.get("/v1/audit?action=org.key_rotate", &o.admin).await;
    assert_eq!(audit.as_array().map(Vec::len), Some(2), "{audit}");
    assert!(!audit.to_string().contains(CANARY));
    assert!(!s.logs().contains(CANARY));
}

/// An org created by a server without a key vault has its keys wrapped by the master
/// key alone: deleting it could not shred a backup. Once a vault is configured, a
/// rotation moves the org's keys under a KEK of its own, and deleting it shreds.
#[tokio::test]
async fn a_rotation_moves_an_org_created_without_a_vault_into_the_vault() {
    let db = Server::migrated_db().await;
    let master = {
        use base64::Engine;
        let mut b = [0u8; 32];
        getrandom::fill(&mut b).expect("random");
        base64::engine::general_purpose::STANDARD.encode(b)
    };
    let env = vec![("TENANTRY_MASTER_KEY".to_string(), master)];
    let without = Server::start_with(
        Launch {
            database_url: Some(db.app_url.clone()),
            env: env.clone(),
            ..Launch::default()
        },
        Some(db),
    );
    publish_examples(&without).await;
    let (o, install) = org_with_secret(&without, "acme", CANARY).await;
    s_check(&without, &o, &install).await;

    // A second node of the same deployment, now with a key vault.
    let vault = tempfile::tempdir().expect("tempdir");
    let config = vault.path().join("tenantry.toml");
    std::fs::write(
        &config,
        format!(
            "key_vault_dir = {:?}\n",
            vault.path().join("org-keys").to_string_lossy()
        ),
    )
    .expect("config");
    let db_url = without.db.as_ref().expect("db").app_url.clone();
    let mut with = Server::start_with(
        Launch {
            database_url: Some(db_url),
            env,
            args: vec!["--config".into(), config.to_string_lossy().into_owned()],
        },
        None,
    );
    with.operator_key = without.operator_key.clone();
    // The org's master-wrapped key still opens through the vault-enabled node.
    s_check(&with, &o, &install).await;
    let r = with
        .ok("POST", "/v1/org/key/rotate", Some(&o.owner), None, 200)
        .await;
    assert_eq!(r["in_vault"], true, "{r}");
    assert!(
        vault
            .path()
            .join("org-keys")
            .join(format!("{}.kek", o.id))
            .exists()
    );
    s_check(&with, &o, &install).await;

    with.ok(
        "POST",
        &format!("/v1/orgs/{}/suspend", o.id),
        Some(&with.operator_key),
        Some(json!({"reason": "offboarding"})),
        200,
    )
    .await;
    let d = with
        .ok(
            "DELETE",
            &format!("/v1/orgs/{}", o.id),
            Some(&with.operator_key),
            None,
            200,
        )
        .await;
    assert_eq!(d["keys_shredded"], true, "{d}");
}

async fn s_check(s: &Server, o: &Org, install: &str) {
    let r = s.run(&o.member, install, "check", json!({})).await;
    assert_eq!(r["output"]["length"], CANARY.len(), "{r}");
}

#[tokio::test]
async fn a_master_key_rotation_interrupted_half_way_resumes_and_loses_nothing() {
    master_rotation_on(false).await;
}

#[tokio::test]
async fn a_master_key_rotation_interrupted_half_way_resumes_and_loses_nothing_pooled() {
    master_rotation_on(true).await;
}

/// Embedded: each org's KEK in the vault is sealed again. Pooled (no vault): each
/// org's key, wrapped by the old master key alone, is rotated.
async fn master_rotation_on(pooled: bool) {
    let keys = tempfile::tempdir().expect("tempdir");
    let (old, new) = (keys.path().join("old.key"), keys.path().join("new.key"));
    let config = keys.path().join("tenantry.toml");
    let write_config = |master: &std::path::Path, previous: Option<&std::path::Path>| {
        let mut text = format!("master_key_file = {:?}\n", master.to_string_lossy());
        if let Some(p) = previous {
            text += &format!("previous_master_key_file = {:?}\n", p.to_string_lossy());
        }
        std::fs::write(&config, text).expect("config");
    };
    write_config(&old, None);
    let mut s = Server::start_configured(&config, pooled).await;
    let op = s.operator_key.clone();
    publish_examples(&s).await;
    let mut orgs = Vec::new();
    for name in ["acme", "globex", "initech"] {
        let (o, install) = org_with_secret(&s, name, &format!("{name}-{CANARY}")).await;
        orgs.push((o, install, format!("{name}-{CANARY}").len()));
    }
    all_open(&s, &orgs).await;

    // Nothing to rotate to yet.
    s.refused(
        "POST",
        "/v1/operator/master-key/rotate",
        Some(&op),
        None,
        (409, "CONFLICT"),
    )
    .await;
    cli_ok(
        s.cli(None)
            .args(["master-key", "new", "--output"])
            .arg(&new),
    );
    let again = s
        .cli(None)
        .args(["master-key", "new", "--output"])
        .arg(&new)
        .output()
        .expect("cli");
    assert!(
        !again.status.success(),
        "an existing key file is never overwritten"
    );

    // Every node: the new key, and the old one as previous.
    write_config(&new, Some(&old));
    s.terminate_and_restart();
    all_open(&s, &orgs).await;
    for key in [&orgs[0].0.owner] {
        let (st, v) = s
            .call("POST", "/v1/operator/master-key/rotate", Some(key), None)
            .await;
        assert_eq!(st, 403, "{v}");
    }
    let step = s
        .ok(
            "POST",
            "/v1/operator/master-key/rotate?limit=1",
            Some(&op),
            None,
            200,
        )
        .await;
    assert_eq!(step["orgs_checked"], 3, "{step}");
    let changed = step["vault_files_resealed"].as_u64().unwrap_or(0)
        + step["org_keys_rotated"].as_u64().unwrap_or(0);
    assert!(changed >= 1, "{step}");
    assert_eq!(step["remaining"], 2, "{step}");
    // Interrupted: the process dies half-way through the deployment's orgs.
    s.crash_and_restart();
    all_open(&s, &orgs).await;
    let done = cli_json(
        s.cli(Some(&op))
            .args(["--json", "master-key", "rotate", "--batch", "1"]),
    );
    assert_eq!(done["remaining"], 0, "{done}");
    let nothing = s
        .ok(
            "POST",
            "/v1/operator/master-key/rotate",
            Some(&op),
            None,
            200,
        )
        .await;
    assert_eq!(nothing["vault_files_resealed"], 0, "{nothing}");
    assert_eq!(nothing["org_keys_rotated"], 0, "{nothing}");
    all_open(&s, &orgs).await;
    let trail = s
        .get("/v1/operator/audit?action=master_key.rotate", &op)
        .await;
    assert!(trail.as_array().is_some_and(|a| a.len() >= 3), "{trail}");

    // The old key alone opens nothing any more...
    write_config(&old, None);
    s.terminate_and_restart();
    let (o, install, _) = &orgs[0];
    let (st, v) = s
        .call(
            "POST",
            &invoke_path(install),
            Some(&o.member),
            Some(json!({"action": "check", "input": {}})),
        )
        .await;
    assert!(
        st >= 500 || v["outcome"] != "OK",
        "the old master key must not open rotated keys: {st} {v}"
    );
    // ...and the new one alone opens everything; the old key can go.
    std::fs::remove_file(&old).expect("remove the old key");
    write_config(&new, None);
    s.terminate_and_restart();
    all_open(&s, &orgs).await;
    let (o, install) = org_with_secret(&s, "hooli", "fresh").await;
    let r = s.run(&o.member, &install, "check", json!({})).await;
    assert_eq!(r["output"]["length"], "fresh".len(), "{r}");
}

/// Every org's secret opens, with its length unchanged.
async fn all_open(s: &Server, orgs: &[(Org, String, usize)]) {
    for (o, install, len) in orgs {
        let r = s.run(&o.member, install, "check", json!({})).await;
        assert_eq!(r["output"]["length"], *len, "{}: {r}", o.name);
    }
}
