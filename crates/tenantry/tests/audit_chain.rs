//! The audit trail's hash chain, attacked from the storage side: someone with write
//! access to an org's SQLite file or to the PostgreSQL database edits, deletes,
//! forges, reorders or strips audit rows behind the server's back. `GET
//! /v1/audit/verify` (org admins), `GET /v1/orgs/{org}/audit/verify` (operator) and
//! `tenantry audit verify` find the first bad entry; untouched trails verify.

mod common;

use common::*;
use serde_json::{Value, json};

on_both_stores!(
    a_tampered_audit_row_is_found_at_the_right_entry,
    a_tampered_audit_row_is_found_at_the_right_entry_pooled,
    tampering_on
);

/// What each attack does (statements on the org's rows) and where verify must stop.
const ATTACKS: &[(&str, &[&str], &str)] = &[
    (
        "edit",
        &["UPDATE audit SET target = 'someone-else' WHERE org_id = '{org}' AND seq = 3"],
        "3 CONTENT",
    ),
    (
        "delete",
        &["DELETE FROM audit WHERE org_id = '{org}' AND seq = 2"],
        "3 GAP",
    ),
    (
        // A new last entry that links to the real head but whose hash is made up.
        "forge",
        &[
            "INSERT INTO audit SELECT org_id, seq + 1, at, actor_kind, actor_id, 'secret.read', \
           target, outcome, request_id, details, row_hash, substr(row_hash || row_hash, 2, 32) \
           FROM audit WHERE org_id = '{org}' AND seq = (SELECT MAX(seq) FROM audit \
           WHERE org_id = '{org}')",
        ],
        "LAST+1 CONTENT",
    ),
    (
        "reorder",
        &[
            "UPDATE audit SET seq = 1000000 WHERE org_id = '{org}' AND seq = 2",
            "UPDATE audit SET seq = 2 WHERE org_id = '{org}' AND seq = 3",
            "UPDATE audit SET seq = 3 WHERE org_id = '{org}' AND seq = 1000000",
        ],
        "2 LINK",
    ),
    (
        "strip",
        &["UPDATE audit SET prev_hash = NULL, row_hash = NULL WHERE org_id = '{org}' AND seq = 4"],
        "4 UNCHAINED",
    ),
];

fn first_bad(v: &Value) -> String {
    format!(
        "{} {}",
        v["first_bad"]["seq"],
        v["first_bad"]["code"].as_str().unwrap_or("-")
    )
}

async fn tampering_on(s: Server) {
    let op = s.operator_key.clone();
    let bystander = org(&s, "bystander").await;
    let mut victims = Vec::new();
    for (name, _, _) in ATTACKS {
        victims.push(org(&s, name).await);
    }
    // Untouched: every trail verifies, for its admin and for the operator alike.
    let mut heads = Vec::new();
    for o in victims.iter().chain([&bystander]) {
        let mine = s.get("/v1/audit/verify", &o.admin).await;
        assert_eq!(mine["intact"], true, "{}: {mine}", o.name);
        assert_eq!(mine["legacy"], 0, "{mine}");
        let n = mine["chained"].as_u64().expect("chained");
        assert!(n >= 5, "{}: an org's set-up is audited: {mine}", o.name);
        assert_eq!(mine["head_seq"], n, "{mine}");
        assert_eq!(mine["head_hash"].as_str().map(str::len), Some(64), "{mine}");
        let by_op = s.get(&format!("/v1/orgs/{}/audit/verify", o.id), &op).await;
        assert_eq!(by_op, mine, "the operator sees the same report");
        heads.push(n);
    }
    let out = cli_ok(s.cli(Some(&op)).args(["audit", "verify", "--all-orgs"]));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("bystander"),
        "{out:?}"
    );

    for ((name, statements, want), (o, n)) in ATTACKS.iter().zip(victims.iter().zip(&heads)) {
        s.tamper_with_audit(&o.id, statements).await;
        let v = s.get("/v1/audit/verify", &o.admin).await;
        let want = want.replace("LAST+1", &(n + 1).to_string());
        assert_eq!(v["intact"], false, "{name}: {v}");
        assert_eq!(first_bad(&v), want, "{name}: {v}");
        assert!(
            v["first_bad"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{name}: says what it means: {v}"
        );
    }
    // Another org's trail is untouched by all of it.
    let v = s.get("/v1/audit/verify", &bystander.admin).await;
    assert_eq!(v["intact"], true, "{v}");

    // The CLI names the first bad entry and fails.
    let out = s
        .cli(Some(&op))
        .args(["audit", "verify", "--org", "edit"])
        .output()
        .expect("run tenantry");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(!out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("3 (CONTENT)"), "{stdout}");
    assert!(stderr.contains("edit"), "{stderr}");
    let out = s
        .cli(Some(&op))
        .args(["audit", "verify", "--all-orgs"])
        .output()
        .expect("run tenantry");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    for (name, _, _) in ATTACKS {
        assert!(stderr.contains(name), "{name} named: {stderr}");
    }
    assert!(!stderr.contains("bystander"), "{stderr}");
    cli_ok(s.cli(Some(&bystander.admin)).args(["audit", "verify"]));
}

/// Who may check a trail: org admins and owners for their own org, the operator for
/// any org (a report of counts and hashes, no entry's content); members, viewers and
/// agents may not; an org admin cannot use the operator's route.
#[tokio::test]
async fn audit_verify_is_for_admins_and_the_operator_only() {
    let s = Server::start();
    let o = org(&s, "acme").await;
    let other = org(&s, "globex").await;
    for key in [&o.owner, &o.admin] {
        assert_eq!(s.get_status("/v1/audit/verify", key).await, 200);
    }
    for key in [&o.member, &o.viewer, &o.agent] {
        s.refused(
            "GET",
            "/v1/audit/verify",
            Some(key),
            None,
            (403, "PERMISSION_DENIED"),
        )
        .await;
    }
    s.refused(
        "GET",
        "/v1/audit/verify",
        None,
        None,
        (401, "UNAUTHENTICATED"),
    )
    .await;
    let foreign = format!("/v1/orgs/{}/audit/verify", other.id);
    s.refused(
        "GET",
        &foreign,
        Some(&o.owner),
        None,
        (403, "PERMISSION_DENIED"),
    )
    .await;
    let unknown = format!(
        "/v1/orgs/{}/audit/verify",
        "0190f000-0000-7000-8000-000000000001"
    );
    s.refused(
        "GET",
        &unknown,
        Some(&s.operator_key),
        None,
        (404, "NOT_FOUND"),
    )
    .await;
    let (status, _) = s
        .call(
            "GET",
            "/v1/orgs/not-a-uuid/audit/verify",
            Some(&s.operator_key),
            None,
        )
        .await;
    assert_eq!(
        status, 404,
        "an id that does not parse is not found, like a missing one"
    );
    // The report holds no entry's content.
    let v = s
        .get(&format!("/v1/orgs/{}/audit/verify", o.id), &s.operator_key)
        .await;
    let text = v.to_string();
    assert!(
        !text.contains("user.create") && !text.contains("owner@acme"),
        "{text}"
    );
}

on_both_stores!(
    the_operators_own_trail_records_the_registry_and_org_lifecycle_and_is_chained,
    the_operators_own_trail_records_the_registry_and_org_lifecycle_and_is_chained_pooled,
    operator_trail_on
);

const OPERATOR_LOG: &str = "00000000-0000-0000-0000-000000000000";

async fn operator_trail_on(s: Server) {
    let op = s.operator_key.clone();
    let p = publish_examples(&s).await;
    let o = org(&s, "acme").await;
    s.revoke_publisher_key(&p).await;
    s.ok(
        "POST",
        &format!("/v1/orgs/{}/suspend", o.id),
        Some(&op),
        Some(serde_json::json!({"reason": "T-9"})),
        200,
    )
    .await;
    s.ok(
        "POST",
        &format!("/v1/orgs/{}/resume", o.id),
        Some(&op),
        Some(serde_json::json!({})),
        200,
    )
    .await;
    let grant = serde_json::json!({"ticket": "T-10", "reason": "support"});
    s.create(&format!("/v1/orgs/{}/breakglass", o.id), &op, grant)
        .await;

    let trail = s.get("/v1/operator/audit?limit=1000", &op).await;
    let actions = strs(&trail, "action");
    for want in [
        "publisher.register",
        "plugin.publish",
        "publisher.key_revoke",
        "org.create",
        "org.suspend",
        "org.resume",
        "breakglass.open",
    ] {
        assert!(actions.contains(&want), "{want} in {actions:?}");
    }
    assert!(
        !trail.to_string().contains("tny_"),
        "no token or key in the trail"
    );
    // Nobody but the operator reads it.
    for (_, key) in o.keys() {
        s.refused(
            "GET",
            "/v1/operator/audit",
            Some(key),
            None,
            (403, "PERMISSION_DENIED"),
        )
        .await;
        s.refused(
            "GET",
            "/v1/operator/audit/verify",
            Some(key),
            None,
            (403, "PERMISSION_DENIED"),
        )
        .await;
    }
    // A member's own trail holds none of it.
    let theirs = s.get("/v1/audit?limit=1000", &o.admin).await;
    assert!(!strs(&theirs, "action").contains(&"publisher.register"));

    let v = s.get("/v1/operator/audit/verify", &op).await;
    assert_eq!(v["intact"], true, "{v}");
    assert_eq!(v["chained"].as_u64(), Some(actions.len() as u64), "{v}");
    cli_ok(s.cli(Some(&op)).args(["audit", "verify", "--operator"]));

    s.tamper_with_audit(
        OPERATOR_LOG,
        &["UPDATE audit SET target = 'someone-else' WHERE org_id = '{org}' AND seq = 2"],
    )
    .await;
    let v = s.get("/v1/operator/audit/verify", &op).await;
    assert_eq!(first_bad(&v), "2 CONTENT", "{v}");
    let out = s
        .cli(Some(&op))
        .args(["audit", "verify", "--all-orgs"])
        .output()
        .expect("run tenantry");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("(operator)"));
}

on_both_stores!(
    a_chain_rewritten_and_recomputed_is_caught_by_a_signed_checkpoint,
    a_chain_rewritten_and_recomputed_is_caught_by_a_signed_checkpoint_pooled,
    checkpoint_on
);

/// The entry as the API lists it, back into the record the chain hashes.
fn entry_of(v: &Value) -> tenantry_store::AuditEntry {
    let kind = match v["actor_kind"].as_str() {
        Some("operator") => tenantry_core::PrincipalKind::Operator,
        Some("agent") => tenantry_core::PrincipalKind::Agent,
        _ => tenantry_core::PrincipalKind::User,
    };
    tenantry_store::AuditEntry {
        seq: v["seq"].as_u64().expect("seq"),
        at: time::OffsetDateTime::parse(
            v["at"].as_str().expect("at"),
            &time::format_description::well_known::Rfc3339,
        )
        .expect("at"),
        actor_kind: kind,
        actor_id: v["actor_id"]
            .as_str()
            .expect("actor")
            .parse()
            .expect("uuid"),
        action: v["action"].as_str().expect("action").into(),
        target: v["target"].as_str().expect("target").into(),
        outcome: v["outcome"].as_str().expect("outcome").into(),
        request_id: v["request_id"]
            .as_str()
            .map(|r| r.parse().expect("request id")),
        details: v["details"].clone(),
    }
}

async fn checkpoint_on(s: Server) {
    let op = s.operator_key.clone();
    let o = org(&s, "acme").await;
    let path = format!("/v1/orgs/{}/audit/checkpoint", o.id);
    let first = s.ok("POST", &path, Some(&op), None, 200).await;
    let cp = &first["checkpoint"];
    let pinned = cp["seq"].as_u64().expect("a checkpoint");
    assert!(
        cp["key"]
            .as_str()
            .is_some_and(|k| k.starts_with("ed25519:")),
        "{first}"
    );
    // Nothing new: no second checkpoint.
    let again = s.ok("POST", &path, Some(&op), None, 200).await;
    assert_eq!(again["checkpoint"], Value::Null, "{again}");
    // Admins may checkpoint their own trail; members may not.
    s.create(
        "/v1/users",
        &o.owner,
        serde_json::json!({"name": "late", "role": "viewer"}),
    )
    .await;
    s.ok("POST", "/v1/audit/checkpoint", Some(&o.admin), None, 200)
        .await;
    s.refused(
        "POST",
        "/v1/audit/checkpoint",
        Some(&o.member),
        None,
        (403, "PERMISSION_DENIED"),
    )
    .await;
    s.create(
        "/v1/users",
        &o.owner,
        serde_json::json!({"name": "later", "role": "viewer"}),
    )
    .await;
    let v = s.get("/v1/audit/verify", &o.admin).await;
    assert_eq!(v["intact"], true, "{v}");
    assert_eq!(v["checkpoints"], 2, "{v}");
    assert_eq!(
        v["last_checkpoint"].as_u64(),
        v["head_seq"].as_u64().map(|h| h - 1),
        "{v}"
    );

    // The attacker edits entry 2 and recomputes every hash after it, as the
    // algorithm is public: the chain alone verifies again...
    let listed = s.get("/v1/audit?limit=1000", &o.admin).await;
    let mut entries: Vec<_> = listed
        .as_array()
        .expect("entries")
        .iter()
        .map(entry_of)
        .collect();
    entries.sort_by_key(|e| e.seq);
    entries[1].target = "someone-else".into();
    let org_id: tenantry_core::OrgId = o.id.parse().expect("org id");
    let mut prev = tenantry_store::chain::GENESIS;
    let mut statements = Vec::new();
    let blob = |b: &[u8; 32]| {
        if s.db.is_some() {
            format!("'\\x{}'::bytea", hex::encode(b))
        } else {
            format!("X'{}'", hex::encode(b))
        }
    };
    for e in &entries {
        let row = tenantry_store::chain::link(
            &prev,
            e.seq,
            &tenantry_store::chain::content_hash(org_id, e),
        );
        statements.push(format!(
            "UPDATE audit SET target = '{}', prev_hash = {}, row_hash = {} WHERE org_id = '{{org}}' AND seq = {}",
            e.target.replace('\'', "''"),
            blob(&prev),
            blob(&row),
            e.seq
        ));
        prev = row;
    }
    let statements: Vec<&str> = statements.iter().map(String::as_str).collect();
    s.tamper_with_audit(&o.id, &statements).await;
    // ...but the first signed checkpoint after the edit no longer matches.
    let v = s.get("/v1/audit/verify", &o.admin).await;
    assert_eq!(v["intact"], false, "{v}");
    assert_eq!(first_bad(&v), format!("{} CHECKPOINT", pinned + 1), "{v}");
}

/// The server checkpoints every trail that grew, on its own, at the configured
/// interval (here 1 s): the org's and the operator's.
#[tokio::test]
async fn the_server_checkpoints_grown_trails_periodically() {
    let config = tempfile::tempdir().expect("tempdir");
    let path = config.path().join("tenantry.toml");
    std::fs::write(&path, "audit_checkpoint_seconds = 1\n").expect("config");
    let s = Server::start_configured(&path, false).await;
    let o = org(&s, "acme").await;
    let mut found = false;
    for _ in 0..50 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let cps = s.get("/v1/audit?action=audit.checkpoint", &o.admin).await;
        if cps.as_array().is_some_and(|a| !a.is_empty()) {
            found = true;
            break;
        }
    }
    assert!(found, "a checkpoint within 5 s");
    let ops = s
        .get(
            "/v1/operator/audit?action=audit.checkpoint",
            &s.operator_key,
        )
        .await;
    assert!(ops.as_array().is_some_and(|a| !a.is_empty()), "{ops}");
    let v = s.get("/v1/audit/verify", &o.admin).await;
    assert_eq!(v["intact"], true, "{v}");
    assert!(v["checkpoints"].as_u64() >= Some(1), "{v}");
}

/// Replacing the audit key: checkpoints the old key signed still verify once its
/// public key is listed in `retired_audit_keys`; until then they are refused (an
/// unknown signer proves nothing). New checkpoints are signed by the new key.
#[tokio::test]
async fn checkpoints_of_a_retired_audit_key_verify_once_it_is_listed() {
    let keys = tempfile::tempdir().expect("tempdir");
    let key_file = keys.path().join("audit.key");
    let config = keys.path().join("tenantry.toml");
    let base = format!(
        "audit_checkpoint_seconds = 0\naudit_key_file = {:?}\n",
        key_file.to_string_lossy()
    );
    std::fs::write(&config, &base).expect("config");
    let mut s = Server::start_configured(&config, false).await;
    let o = org(&s, "acme").await;
    let first = s
        .ok("POST", "/v1/audit/checkpoint", Some(&o.admin), None, 200)
        .await;
    let old_key = first["checkpoint"]["key"]
        .as_str()
        .expect("key")
        .to_string();

    // A new audit key (the old file moved away): the old checkpoint's signer is unknown.
    std::fs::rename(&key_file, keys.path().join("audit.key.old")).expect("move");
    s.terminate_and_restart();
    let v = s.get("/v1/audit/verify", &o.admin).await;
    assert_eq!(v["intact"], false, "{v}");
    assert_eq!(v["first_bad"]["code"], "CHECKPOINT", "{v}");

    // Listed as retired, it verifies again; new checkpoints use the new key.
    std::fs::write(
        &config,
        format!("{base}retired_audit_keys = [{old_key:?}]\n"),
    )
    .expect("config");
    s.terminate_and_restart();
    s.create(
        "/v1/users",
        &o.admin,
        json!({"name": "helper", "role": "member"}),
    )
    .await;
    let second = s
        .ok("POST", "/v1/audit/checkpoint", Some(&o.admin), None, 200)
        .await;
    let new_key = second["checkpoint"]["key"].as_str().expect("key");
    assert_ne!(new_key, old_key);
    let v = s.get("/v1/audit/verify", &o.admin).await;
    assert_eq!(v["intact"], true, "{v}");
    assert_eq!(v["checkpoints"], 2, "{v}");

    // A bad entry stops the server at startup, naming the setting.
    std::fs::write(
        &config,
        format!("{base}retired_audit_keys = [\"ed25519:nope\"]\n"),
    )
    .expect("config");
    let out = std::process::Command::new(BIN)
        .args(["doctor", "--config"])
        .arg(&config)
        .output()
        .expect("doctor");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("retired_audit_keys"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
