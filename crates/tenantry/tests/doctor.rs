//! `tenantry doctor` and `serve --production`: a deployment checked against the
//! launch no-go conditions (RLS not strict, the master key inside the data directory
//! or readable by others, a listener beyond loopback without TLS in front, wildcard
//! egress, a pilot without an org cap), each named with what to do.

mod common;

use common::*;
use serde_json::Value;
use std::path::Path;
use std::process::Command;

/// Runs `tenantry doctor --json` with `config` as its tenantry.toml and returns
/// whether it succeeded and the findings by check.
fn doctor(dir: &Path, config: &str, extra: &[&str]) -> (bool, Vec<Value>) {
    let path = dir.join("tenantry.toml");
    std::fs::write(&path, config).expect("write config");
    let out = Command::new(BIN)
        .args(["--json", "doctor", "--config"])
        .arg(&path)
        .arg("--data-dir")
        .arg(dir.join("data"))
        .args(extra)
        .env_remove("TENANTRY_DATABASE_URL")
        .env_remove("TENANTRY_MASTER_KEY")
        .env_remove("TENANTRY_AUDIT_KEY")
        .env_remove("TENANTRY_LISTEN")
        .output()
        .expect("run tenantry doctor");
    let findings = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON finding per line"))
        .collect();
    (out.status.success(), findings)
}

fn level<'a>(findings: &'a [Value], check: &str) -> &'a str {
    findings
        .iter()
        .find(|f| f["check"] == check)
        .and_then(|f| f["level"].as_str())
        .unwrap_or_else(|| panic!("no finding for {check}: {findings:?}"))
}

/// A configuration with every key outside the data directory (and the default,
/// loopback listener).
fn good(dir: &Path) -> String {
    let keys = dir.join("keys");
    std::fs::create_dir_all(&keys).expect("mkdir");
    format!(
        "master_key_file = \"{}\"\naudit_key_file = \"{}\"\n",
        keys.join("master.key").display(),
        keys.join("audit.key").display()
    )
}

#[test]
fn each_no_go_condition_is_found_and_says_what_to_do() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();

    // The defaults keep the master key inside the data directory: no-go.
    let (ok, f) = doctor(d, "", &[]);
    assert!(!ok, "{f:?}");
    assert_eq!(level(&f, "master key"), "no-go");
    let fix = f
        .iter()
        .find(|x| x["check"] == "master key")
        .expect("finding")["fix"]
        .clone();
    assert!(
        fix.as_str().is_some_and(|s| s.contains("master_key_file")),
        "{fix}"
    );
    assert_eq!(level(&f, "audit key"), "warn");
    // The key vault beside the master key, so in the data directory too: a backup
    // made before an org's deletion still opens.
    assert_eq!(level(&f, "crypto-shredding"), "warn");

    // Keys elsewhere, loopback listener: nothing to stop a launch.
    let base = good(d);
    let (ok, f) = doctor(d, &base, &[]);
    assert!(ok, "{f:?}");
    assert!(f.iter().all(|x| x["level"] != "no-go"), "{f:?}");
    assert_eq!(level(&f, "tenant isolation"), "ok");
    assert_eq!(level(&f, "crypto-shredding"), "ok", "{f:?}");

    for (extra, check) in [
        ("listen = \"0.0.0.0:7431\"\n", "listener"),
        ("egress_allow_cidrs = [\"0.0.0.0/0\"]\n", "egress"),
        ("egress_allow_cidrs = [\"169.254.0.0/16\"]\n", "egress"),
        ("[pilot]\nplugins = [\"@examples/*\"]\n", "pilot"),
    ] {
        let config = format!("{base}{extra}");
        let (ok, f) = doctor(d, &config, &[]);
        assert!(!ok, "{extra}: {f:?}");
        assert_eq!(level(&f, check), "no-go", "{extra}: {f:?}");
    }
    let behind = format!("{base}listen = \"0.0.0.0:7431\"\nbehind_tls_proxy = true\n");
    let (ok, f) = doctor(d, &behind, &[]);
    assert!(ok, "{f:?}");
    let capped = format!("{base}[pilot]\nmax_orgs = 5\nplugins = [\"@examples/*\"]\n");
    assert!(doctor(d, &capped, &[]).0);

    // A key file readable by others.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let key = d.join("keys").join("master.key");
        std::fs::write(&key, "AAAA\n").expect("write");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let (ok, f) = doctor(d, &base, &[]);
        assert!(!ok);
        assert_eq!(level(&f, "master key"), "no-go", "{f:?}");
    }
}

#[tokio::test]
async fn rls_that_is_not_strict_is_a_no_go() {
    let db = Server::migrated_db().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let base = good(dir.path());
    let (ok, f) = doctor(dir.path(), &base, &["--database-url", &db.app_url]);
    assert!(ok, "{f:?}");
    assert_eq!(level(&f, "tenant isolation"), "ok");
    // Pooled: no key vault unless one is set, which nodes must share.
    assert_eq!(level(&f, "crypto-shredding"), "warn", "{f:?}");
    let out = Command::new(BIN)
        .args([
            "migrate",
            "--database-url",
            &db.owner_url,
            "--app-role",
            &db.app_role,
            "--to",
            "shadow",
        ])
        .output()
        .expect("migrate");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (ok, f) = doctor(dir.path(), &base, &["--database-url", &db.app_url]);
    assert!(!ok);
    assert_eq!(level(&f, "tenant isolation"), "no-go", "{f:?}");
    // The schema owner connects as a role that could bypass RLS: no-go as well.
    let (ok, f) = doctor(dir.path(), &base, &["--database-url", &db.owner_url]);
    assert!(!ok);
    assert_eq!(level(&f, "tenant isolation"), "no-go", "{f:?}");
}

#[test]
fn serve_production_refuses_to_start_on_a_no_go_and_starts_without_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("tenantry.toml");
    std::fs::write(&path, "").expect("write");
    let out = Command::new(BIN)
        .args(["serve", "--production", "--config"])
        .arg(&path)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(["--listen", "127.0.0.1:0"])
        .env_remove("TENANTRY_DATABASE_URL")
        .env_remove("TENANTRY_MASTER_KEY")
        .output()
        .expect("run tenantry serve");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--production"), "{stderr}");
    assert!(
        !dir.path().join("data").join("master.key").exists(),
        "nothing was created"
    );

    std::fs::write(&path, good(dir.path())).expect("write");
    let s = Server::start_with(
        Launch {
            args: vec![
                "--production".into(),
                "--config".into(),
                path.display().to_string(),
            ],
            ..Launch::default()
        },
        None,
    );
    assert!(!s.operator_key.is_empty());
}
