//! The GitHub-style example connector end to end: the release binary, a plugin
//! calling `https://…` over wasi:http with a granted secret in its `Authorization`
//! header, against a loopback HTTPS server with a test CA that the operator's
//! `tls_ca_file` trusts (`egress_allow_cidrs` lets it reach loopback). Through the
//! API and the CLI; the token never shows in the answer, the server log, the audit
//! trail or the usage records.

mod common;

use common::*;
use serde_json::{Value, json};
use tenantry_test_services::https::{self, Cert, HttpsServer, TestCa};

const TOKEN: &str = "ghp_TESTtokenNeverLogged0123456789abcdef";

fn cli_json(c: &mut std::process::Command) -> Value {
    let out = c.output().expect("run tenantry");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON on stdout")
}

/// A server trusting a new test CA (`tls_ca_file`) and allowed to reach loopback,
/// a GitHub-style HTTPS server with a certificate of that CA, and org `acme` with
/// the GitHub example installed (its `api_base` the test server, `token` granted,
/// egress granted to `egress`) and bound to its agent. The directory holds the
/// config and CA file.
async fn github_installed(egress: &str) -> (Server, HttpsServer, Org, String, tempfile::TempDir) {
    let ca = TestCa::new();
    let config = tempfile::tempdir().expect("tempdir");
    let ca_file = ca.write_pem(config.path());
    let path = config.path().join("tenantry.toml");
    std::fs::write(
        &path,
        format!(
            "egress_allow_cidrs = [\"127.0.0.0/8\", \"::1/128\"]\ntls_ca_file = {:?}\n",
            ca_file.display().to_string()
        ),
    )
    .expect("write config");
    let s = Server::start_configured(&path, false).await;
    let gh = https::serve(&ca, Cert::Valid, &[b"h2", b"http/1.1"], TOKEN).await;
    publish_examples(&s).await;
    let o = org(&s, "acme").await;
    let install = s
        .install(
            &o.admin,
            json!({"plugin": "@examples/github", "config": {"api_base": gh.base()},
                   "grants": {"secrets": ["token"], "egress": [egress]}}),
        )
        .await;
    s.bind(&o, &install).await;
    (s, gh, o, install, config)
}

/// `list-issues` of octo/hello, as the org's agent.
async fn list_issues(s: &Server, o: &Org, install: &str) -> Value {
    s.run(
        &o.agent,
        install,
        "list-issues",
        json!({"owner": "octo", "repo": "hello"}),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_github_example_lists_issues_and_comments_over_https_through_the_api_and_the_cli() {
    let (s, gh, o, install, _config) = github_installed("localhost").await;

    // Without the token: a clear refusal, and no request was sent.
    let r = list_issues(&s, &o, &install).await;
    assert_eq!(r["outcome"], "PERMISSION_DENIED", "{r}");
    assert_eq!(gh.connections(), 0);

    s.set_secret(&o.owner, &install, "token", TOKEN).await;
    let r = list_issues(&s, &o, &install).await;
    assert_eq!(r["outcome"], "OK", "{r}");
    assert_eq!(r["output"]["issues"][0]["number"], 1347, "{r}");
    assert_eq!(r["output"]["issues"][1]["author"], "hubot", "{r}");

    // The CLI, as the agent.
    let v = cli_json(
        s.cli(Some(&o.agent))
            .args([
                "--json",
                "invoke",
                "@examples/github",
                "create-comment",
                "--input",
            ])
            .arg(
                json!({"owner": "octo", "repo": "hello", "number": 1347, "body": "Fixed in #1349"})
                    .to_string(),
            ),
    );
    assert_eq!(v["outcome"], "OK", "{v}");
    assert_eq!(v["output"]["id"], 1, "{v}");
    assert!(
        v["output"]["url"]
            .as_str()
            .unwrap_or_default()
            .ends_with("#issuecomment-1"),
        "{v}"
    );

    // A wrong token is GitHub's 401, told as a permission problem.
    s.set_secret(&o.owner, &install, "token", "ghp_wrong").await;
    let r = list_issues(&s, &o, &install).await;
    assert_eq!(r["outcome"], "PERMISSION_DENIED", "{r}");
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("GitHub refused the token"),
        "{r}"
    );

    // The token is nowhere: server log, audit trail, usage (the export holds both,
    // once the batches of the four invocations are written).
    eventually(&s, &o.admin, "/v1/usage?limit=100", |v| {
        v.as_array().is_some_and(|a| a.len() >= 4)
    })
    .await;
    eventually(&s, &o.admin, "/v1/audit?action=invoke&limit=100", |v| {
        v.as_array().is_some_and(|a| a.len() >= 4)
    })
    .await;
    let (status, export) = s
        .raw(
            "GET",
            "/v1/org/export",
            Some(&o.owner),
            "application/json",
            Vec::new(),
        )
        .await;
    assert_eq!(status, 200);
    let export = export.as_str().unwrap_or_default().to_string();
    assert!(
        export.contains("\"kind\":\"usage\""),
        "the export holds usage records"
    );
    for (what, text) in [("server log", s.logs()), ("org export", export)] {
        assert!(!text.contains(TOKEN), "the token leaked into the {what}");
        assert!(
            !text.contains("ghp_wrong"),
            "the wrong token leaked into the {what}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn egress_outside_the_grants_is_refused_before_any_connection_and_audited() {
    let (s, gh, o, install, _config) = github_installed("api.github.com").await;
    s.set_secret(&o.owner, &install, "token", TOKEN).await;
    let r = list_issues(&s, &o, &install).await;
    assert_eq!(r["outcome"], "EGRESS_DENIED", "{r}");
    assert_eq!(gh.connections(), 0, "refused before any connection");
    // Invocations are audited in batches: wait for the entry.
    let audit = eventually(&s, &o.admin, "/v1/audit?action=invoke&limit=100", |v| {
        v.as_array().is_some_and(|a| !a.is_empty())
    })
    .await;
    let entry = audit
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["details"]["denied"].is_array())
        .unwrap_or_else(|| panic!("no audit entry with denied: {audit}"));
    assert_eq!(
        entry["details"]["denied"],
        json!(["egress:localhost"]),
        "{entry}"
    );
}

/// The CLI reaches an `https://` server (a TLS-terminating proxy in front of
/// Tenantry, here the test server), trusting the CA in `TENANTRY_CA_FILE`; without
/// it, it says the certificate is not trusted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_speaks_https_and_trusts_only_the_bundled_roots_and_tenantry_ca_file() {
    let ca = TestCa::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let ca_file = ca.write_pem(dir.path());
    let server = https::serve(&ca, Cert::Valid, &[b"h2", b"http/1.1"], TOKEN).await;
    let run = |ca: Option<&std::path::Path>| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_tenantry"));
        c.env("TENANTRY_URL", server.base())
            .env("TENANTRY_API_KEY", "tnt_whatever")
            .env("TENANTRY_CONFIG_HOME", dir.path().join("cli"))
            .env_remove("TENANTRY_PROFILE")
            .env_remove("TENANTRY_CONFIG")
            .env_remove("TENANTRY_CA_FILE")
            .args(["--json", "org", "show"]);
        if let Some(ca) = ca {
            c.env("TENANTRY_CA_FILE", ca);
        }
        let out = c.output().expect("run tenantry");
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    };
    let trusted = run(Some(&ca_file));
    assert!(
        !trusted.contains("CONNECTION_FAILED"),
        "the TLS connection worked: {trusted}"
    );
    assert!(server.connections() >= 1);
    let untrusted = run(None);
    assert!(untrusted.contains("CONNECTION_FAILED"), "{untrusted}");
    assert!(
        untrusted.to_lowercase().contains("certificate"),
        "says why: {untrusted}"
    );
}
