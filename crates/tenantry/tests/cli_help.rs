//! The command helping people along (issue 15): "did you mean" for mistyped names,
//! warnings about secrets an install needs, and `tenantry plugin new`. Every test
//! drives the real binary.

mod common;

use common::*;
use serde_json::Value;
use std::process::{Command, Output};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn run(mut c: Command) -> Output {
    c.output().expect("run tenantry")
}

/// Runs and expects success; returns (stdout, stderr).
fn ok(c: Command) -> (String, String) {
    let out = run(c);
    let (o, e) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "failed: {e}\n{o}");
    (o, e)
}

/// Runs and expects failure; returns stderr.
fn fails(c: Command) -> String {
    let out = run(c);
    let e = text(&out.stderr);
    assert!(
        !out.status.success(),
        "expected a failure: {}",
        text(&out.stdout)
    );
    assert!(!e.contains("panicked"), "{e}");
    e
}

// 1. Did you mean

#[tokio::test]
async fn a_mistyped_install_agent_org_or_plugin_name_suggests_the_closest_existing_names() {
    let s = Server::start();
    publish_examples(&s).await;
    let o = org(&s, "acme").await;
    let key = Some(o.owner.as_str());
    let mut c = s.cli(key);
    c.args(["install", "add", "@examples/echo"]);
    ok(c);

    // An install named by a mistyped plugin name, in every command that takes one.
    for args in [
        vec!["invoke", "@examples/ecko", "echo"],
        vec!["install", "show", "@examples/ecko"],
        vec!["install", "disable", "@examples/ecko"],
        vec!["secret", "list", "@examples/ecko"],
        vec!["agent", "bind", "bot", "@examples/ecko"],
    ] {
        let mut c = s.cli(key);
        c.args(&args);
        let e = fails(c);
        assert!(
            e.contains("no install of @examples/ecko in your org; did you mean @examples/echo?"),
            "{args:?}: {e}"
        );
    }

    // A mistyped agent name (the org's agent is `bot`).
    for args in [
        vec!["agent", "bind", "bott", "@examples/echo"],
        vec!["agent", "delete", "bott"],
    ] {
        let mut c = s.cli(key);
        c.args(&args);
        let e = fails(c);
        assert!(
            e.contains("no agent named bott; did you mean bot?"),
            "{args:?}: {e}"
        );
    }

    // A mistyped org name (operator).
    let mut c = s.cli(Some(&s.operator_key));
    c.args(["org", "set-tier", "acmee", "free"]);
    let e = fails(c);
    assert!(e.contains("no org named acmee; did you mean acme?"), "{e}");

    // A mistyped plugin name when installing, or showing it: from the registry.
    let mut c = s.cli(key);
    c.args(["install", "add", "@examples/kv-countr"]);
    let e = fails(c);
    assert!(e.contains("did you mean @examples/kv-counter?"), "{e}");
    let mut c = s.cli(key);
    c.args(["plugin", "show", "@examples/secret-usr"]);
    let e = fails(c);
    assert!(e.contains("did you mean @examples/secret-user?"), "{e}");

    // Far-off names: no suggestion, the listing command instead.
    for (args, want) in [
        (
            vec!["invoke", "@examples/zzz", "echo"],
            "no install of @examples/zzz in your org; see `tenantry install list`",
        ),
        (
            vec!["agent", "delete", "payroll"],
            "no agent named payroll; see `tenantry agent list`",
        ),
    ] {
        let mut c = s.cli(key);
        c.args(&args);
        let e = fails(c);
        assert!(e.contains(want), "{args:?}: {e}");
        assert!(!e.contains("did you mean"), "{args:?}: {e}");
    }
    let mut c = s.cli(key);
    c.args(["install", "add", "@examples/weather-forecaster"]);
    let e = fails(c);
    assert!(!e.contains("did you mean"), "{e}");
}

// 2. Secrets an install needs

#[tokio::test]
async fn installing_without_a_secret_the_plugin_reads_warns_on_stderr_only() {
    let s = Server::start();
    publish_examples(&s).await;
    let o = org(&s, "acme").await;
    let key = Some(o.owner.as_str());

    // Without the grant: a warning naming the flag, on stderr.
    let mut c = s.cli(key);
    c.args(["install", "add", "@examples/secret-user"]);
    let (out, err) = ok(c);
    assert!(
        err.contains(
            "warning: @examples/secret-user declares secret 'api_token' but this install does not grant it"
        ),
        "{err}"
    );
    assert!(err.contains("--grant-secret api_token"), "{err}");
    assert!(!err.contains("has no value yet"), "{err}");
    assert!(!out.contains("warning"), "{out}");

    // Granting it afterwards: now the value is missing.
    let mut c = s.cli(key);
    c.args([
        "install",
        "grants",
        "@examples/secret-user",
        "--grant-secret",
        "api_token",
    ]);
    let (_, err) = ok(c);
    assert!(!err.contains("does not grant"), "{err}");
    assert!(
        err.contains(
            "secret 'api_token' of @examples/secret-user has no value yet; set it with `tenantry secret set @examples/secret-user api_token`"
        ),
        "{err}"
    );

    // Once set, granting again says nothing.
    let mut c = s.cli(key);
    c.args(["secret", "set", "@examples/secret-user", "api_token"]);
    c.stdin(std::process::Stdio::piped());
    let mut child = c
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(b"tok-123\n").expect("write");
    }
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mut c = s.cli(key);
    c.args([
        "install",
        "grants",
        "@examples/secret-user",
        "--grant-secret",
        "api_token",
    ]);
    let (_, err) = ok(c);
    assert_eq!(err, "", "no warning once the secret is granted and set");

    // A plugin that reads no secret: no warning.
    let mut c = s.cli(key);
    c.args(["install", "add", "@examples/echo"]);
    let (_, err) = ok(c);
    assert_eq!(err, "");

    // Installing with the grant (another org): only "no value yet".
    let o2 = org(&s, "globex").await;
    let mut c = s.cli(Some(&o2.owner));
    c.args([
        "install",
        "add",
        "@examples/secret-user",
        "--grant-secret",
        "api_token",
    ]);
    let (_, err) = ok(c);
    assert!(!err.contains("does not grant"), "{err}");
    assert!(err.contains("has no value yet"), "{err}");

    // --json: standard output is the install alone; warnings are JSON lines on stderr.
    let o3 = org(&s, "initech").await;
    let mut c = s.cli(Some(&o3.owner));
    c.args(["--json", "install", "add", "@examples/secret-user"]);
    let (out, err) = ok(c);
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(v["plugin"], "@examples/secret-user");
    let warnings: Vec<Value> = err
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(warnings.len(), 1, "{err}");
    assert_eq!(warnings[0]["warning"]["code"], "SECRET_NOT_GRANTED");
    assert!(
        warnings[0]["warning"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("--grant-secret api_token")
    );
}
