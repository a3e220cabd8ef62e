//! `tenantry demo`: a guided, self-checking tour.
//!
//! Starts a server in this process on a fresh data directory, publishes the example
//! plugins (embedded in the binary), creates two orgs that install the same plugins
//! with different config and secrets, invokes as each org's agent, and checks that
//! each org sees only its own config, secrets, kv data, usage and audit, and that an
//! infinite-loop plugin is stopped without disturbing the other org. Exits non-zero
//! if any check fails.

use anyhow::{Context, Result, anyhow, bail};
use serde::de::IgnoredAny;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::Instant;
use tenantry_api_types as w;
use tenantry_crypto::SigningKeyPair;
use tenantry_server::{Config, Server, config::Overrides};

use crate::client::{Client, Reply};
use crate::commands::plugin::{publish_body, sign};

const PLUGINS: &[(&str, &[u8], &[u8])] = &[
    (
        "echo",
        include_bytes!("../../../../examples/plugins/echo/tenantry.json"),
        include_bytes!("../../../../examples/plugins/echo/plugin.wasm"),
    ),
    (
        "kv-counter",
        include_bytes!("../../../../examples/plugins/kv-counter/tenantry.json"),
        include_bytes!("../../../../examples/plugins/kv-counter/plugin.wasm"),
    ),
    (
        "secret-user",
        include_bytes!("../../../../examples/plugins/secret-user/tenantry.json"),
        include_bytes!("../../../../examples/plugins/secret-user/plugin.wasm"),
    ),
    (
        "tool-caller",
        include_bytes!("../../../../examples/plugins/tool-caller/tenantry.json"),
        include_bytes!("../../../../examples/plugins/tool-caller/plugin.wasm"),
    ),
    (
        "http-fetch",
        include_bytes!("../../../../examples/plugins/http-fetch/tenantry.json"),
        include_bytes!("../../../../examples/plugins/http-fetch/plugin.wasm"),
    ),
    (
        "github",
        include_bytes!("../../../../examples/plugins/github/tenantry.json"),
        include_bytes!("../../../../examples/plugins/github/plugin.wasm"),
    ),
    (
        "attacks",
        include_bytes!("../../../../examples/plugins/attacks/tenantry.json"),
        include_bytes!("../../../../examples/plugins/attacks/plugin.wasm"),
    ),
];

struct Checks {
    failed: u32,
}

impl Checks {
    fn check(&mut self, ok: bool, what: &str) {
        if ok {
            println!("  \u{2713} {what}");
        } else {
            println!("  \u{2717} {what}");
            self.failed += 1;
        }
    }
}

/// Quotes a path for a POSIX shell when it holds anything but plain characters.
fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+:,@".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

fn client(url: &str, key: &str) -> Result<Client> {
    Client::new(url, Some(key.to_string()))
}

struct DemoOrg {
    name: &'static str,
    owner: Client,
    agent: Client,
    agent_id: String,
    installs: std::collections::HashMap<&'static str, String>,
}

async fn make_org(
    url: &str,
    op: &Client,
    name: &'static str,
    greeting: &str,
    token: &str,
) -> Result<DemoOrg> {
    let org: w::Org = op
        .post(
            "/v1/orgs",
            &w::CreateOrg {
                name: name.into(),
                tier: Some("starter".into()),
            },
        )
        .await?
        .body;
    let id = org.id;
    let user: w::User = op
        .post(
            &format!("/v1/orgs/{id}/users"),
            &w::ProvisionUser {
                name: format!("owner@{name}"),
                role: w::Role::Owner,
            },
        )
        .await?
        .body;
    let key: w::CreatedKey = op
        .post(
            &format!("/v1/orgs/{id}/keys"),
            &w::ProvisionKey {
                owner: w::KeyOwner::User(user.id),
                name: "demo".into(),
                expires_at: None,
            },
        )
        .await?
        .body;
    let owner = client(url, key.key.expose())?;
    let agent: w::Agent = owner
        .post(
            "/v1/agents",
            &w::CreateAgent {
                name: "assistant".into(),
                on_behalf_of: None,
                grants: [w::Permission::Invoke, w::Permission::ReadOrg].into(),
            },
        )
        .await?
        .body;
    let akey: w::CreatedKey = owner
        .post(
            "/v1/keys",
            &w::CreateKey {
                owner: w::KeyOwner::Agent(agent.id),
                name: "assistant".into(),
                expires_at: None,
            },
        )
        .await?
        .body;
    let agent_id = agent.id.to_string();
    let install = |plugin: &str, config: Value, grants: w::Permissions| w::InstallRequest {
        plugin: plugin.into(),
        version: None,
        config,
        grants,
        enabled: true,
    };
    let mut installs = std::collections::HashMap::new();
    for (plugin, body) in [
        (
            "echo",
            install(
                "@examples/echo",
                json!({"greeting": greeting}),
                w::Permissions::default(),
            ),
        ),
        (
            "kv-counter",
            install(
                "@examples/kv-counter",
                json!({}),
                w::Permissions {
                    kv: true,
                    ..Default::default()
                },
            ),
        ),
        (
            "secret-user",
            install(
                "@examples/secret-user",
                json!({}),
                w::Permissions {
                    secrets: vec!["api_token".into()],
                    ..Default::default()
                },
            ),
        ),
        (
            "tool-caller",
            install(
                "@examples/tool-caller",
                json!({}),
                w::Permissions {
                    tools: vec!["@examples/echo#echo".into()],
                    ..Default::default()
                },
            ),
        ),
        (
            "attacks",
            install("@examples/attacks", json!({}), w::Permissions::default()),
        ),
    ] {
        let i: w::InstallView = owner.post("/v1/installs", &body).await?.body;
        let iid = i.install.id.to_string();
        let _: Reply<IgnoredAny> = owner
            .put_empty(&format!("/v1/agents/{agent_id}/installs/{iid}"))
            .await?;
        installs.insert(plugin, iid);
    }
    let _: Reply<IgnoredAny> = owner
        .put(
            &format!("/v1/installs/{}/secrets/api_token", installs["secret-user"]),
            &w::SetSecret {
                value: w::SecretText::from(token.to_string()),
            },
        )
        .await?;
    Ok(DemoOrg {
        name,
        owner,
        agent: client(url, akey.key.expose())?,
        agent_id,
        installs,
    })
}

async fn invoke(
    o: &DemoOrg,
    plugin: &str,
    action: &str,
    input: Value,
) -> Result<w::InvokeResponse> {
    let body = w::InvokeRequest {
        action: action.into(),
        input,
    };
    Ok(o.agent
        .post(
            &format!("/v1/installs/{}/invoke", o.installs[plugin]),
            &body,
        )
        .await?
        .body)
}

/// A field of an invocation's output (the plugin's own JSON), or `null`.
fn out<'a>(r: &'a w::InvokeResponse, field: &str) -> &'a Value {
    r.output.as_ref().map_or(&Value::Null, |o| &o[field])
}

/// How an outcome is shown: its JSON (a quoted string).
fn outcome(o: w::Outcome) -> String {
    serde_json::to_string(&o).unwrap_or_default()
}

pub async fn run(data_dir: Option<PathBuf>) -> Result<()> {
    let tmp;
    let kept = data_dir.is_some();
    let dir = match data_dir {
        Some(d) => {
            if d.join("control.db").exists() {
                bail!(
                    "{} already holds a Tenantry data directory; the demo needs a fresh one",
                    d.display()
                );
            }
            d
        }
        None => {
            tmp = tempfile::tempdir().context("creating a temporary data directory")?;
            tmp.path().to_path_buf()
        }
    };
    println!(
        "Tenantry demo: a fresh server with data in {}\n",
        dir.display()
    );
    let config = Config::resolve(
        Overrides {
            data_dir: Some(dir.clone()),
            listen: Some("127.0.0.1:0".into()),
            ..Overrides::default()
        },
        false,
    )?;
    let server = Server::open(config).await?;
    let op_key = server
        .bootstrap_operator()
        .await?
        .ok_or_else(|| anyhow!("the data directory already had an operator"))?;
    let listener = server.bind().await?;
    let url = format!("http://{}", listener.local_addr()?);
    let serving = tokio::spawn(server.serve(listener));
    let op = client(&url, &String::from_utf8_lossy(op_key.expose()))?;
    let mut c = Checks { failed: 0 };

    println!("1. A publisher signs and publishes the example plugins");
    let signer = SigningKeyPair::generate();
    let _: Reply<IgnoredAny> = op
        .post(
            "/v1/publishers",
            &w::RegisterPublisher {
                name: "examples".into(),
                key: w::NewPublisherKey {
                    public_key: signer.public_key().to_string(),
                    not_before: None,
                    not_after: None,
                },
            },
        )
        .await?;
    for (_, manifest, wasm) in PLUGINS {
        let sig = sign(manifest, wasm, &signer)?;
        let v: w::Version = op
            .post("/v1/plugins", &publish_body(manifest, wasm, &sig)?)
            .await?
            .body;
        println!(
            "     published {}@{} ({} bytes)",
            v.plugin,
            v.version,
            wasm.len()
        );
    }

    println!("\n2. Two orgs install the same plugins with different config and secrets");
    let acme = make_org(
        &url,
        &op,
        "acme",
        "Hello from Acme",
        "acme-token-1234567890",
    )
    .await?;
    let globex = make_org(&url, &op, "globex", "Bonjour de Globex", "globex-tok").await?;
    for o in [&acme, &globex] {
        println!(
            "     {}: 5 installs, an agent bound to them, a secret set",
            o.name
        );
    }

    println!("\n3. Each org's agent invokes the same plugins");
    let mut c_ok = true;
    for (o, greeting) in [(&acme, "Hello from Acme"), (&globex, "Bonjour de Globex")] {
        let r = invoke(o, "echo", "echo", json!({"from": o.name})).await?;
        c_ok &= out(&r, "greeting") == greeting;
        println!(
            "     {} echo → {}",
            o.name,
            r.output.as_ref().unwrap_or(&Value::Null)
        );
    }
    c.check(c_ok, "each install sees its own config");
    for _ in 0..3 {
        invoke(&acme, "kv-counter", "increment", json!({})).await?;
    }
    invoke(&globex, "kv-counter", "increment", json!({})).await?;
    let a = invoke(&acme, "kv-counter", "get", json!({})).await?;
    let g = invoke(&globex, "kv-counter", "get", json!({})).await?;
    println!(
        "     counters: acme = {}, globex = {}",
        out(&a, "value"),
        out(&g, "value")
    );
    c.check(
        out(&a, "value") == 3 && out(&g, "value") == 1,
        "each install has its own key-value data",
    );
    let a = invoke(&acme, "secret-user", "check", json!({})).await?;
    let g = invoke(&globex, "secret-user", "check", json!({})).await?;
    c.check(
        out(&a, "length") == 21 && out(&g, "length") == 10,
        "each install reads its own secret (lengths 21 and 10)",
    );
    let t = invoke(
        &acme,
        "tool-caller",
        "call",
        json!({"plugin": "@examples/echo", "action": "echo", "input": {"via": "tool"}}),
    )
    .await?;
    c.check(
        out(&t, "output")["greeting"] == "Hello from Acme",
        "a tool call reaches the same org's install",
    );
    let denied = invoke(&acme, "attacks", "secret", json!({"name": "api_token"})).await?;
    c.check(
        denied.outcome == w::Outcome::PermissionDenied,
        "an ungranted secret is refused (PERMISSION_DENIED)",
    );

    println!("\n4. Each org sees only its own data");
    let secret_texts = [
        acme.owner
            .get::<Vec<w::Install>>("/v1/installs")
            .await?
            .json
            .to_string(),
        globex
            .owner
            .get::<Vec<w::Install>>("/v1/installs")
            .await?
            .json
            .to_string(),
    ];
    c.check(
        !secret_texts[0].contains("Bonjour") && !secret_texts[1].contains("Hello from Acme"),
        "install lists and config are per org",
    );
    let cross = acme
        .owner
        .get::<w::InstallView>(&format!("/v1/installs/{}", globex.installs["echo"]))
        .await;
    c.check(
        cross
            .as_ref()
            .err()
            .is_some_and(|e| e.to_string().contains("NOT_FOUND")),
        "another org's install answers NOT_FOUND",
    );
    let cross = acme
        .agent
        .post::<w::InvokeResponse>(
            &format!("/v1/installs/{}/invoke", globex.installs["echo"]),
            &w::InvokeRequest {
                action: "echo".into(),
                input: json!({}),
            },
        )
        .await;
    c.check(
        cross
            .as_ref()
            .err()
            .is_some_and(|e| e.to_string().contains("NOT_FOUND")),
        "an agent cannot invoke another org's install (NOT_FOUND)",
    );
    let all_text = format!(
        "{}{}{}",
        acme.owner
            .get::<Vec<w::AuditEntry>>("/v1/audit?limit=1000")
            .await?
            .json,
        acme.owner
            .get::<Vec<w::UsageEvent>>("/v1/usage?limit=1000")
            .await?
            .json,
        acme.owner
            .get::<Vec<w::SecretMeta>>(&format!(
                "/v1/installs/{}/secrets",
                acme.installs["secret-user"]
            ))
            .await?
            .json
    );
    c.check(
        !all_text.contains(&globex.agent_id)
            && !all_text.contains("globex")
            && !all_text.contains("acme-token-1234567890"),
        "acme's audit, usage and secret list hold nothing of globex's, and no secret value",
    );

    println!("\n5. An infinite loop in acme does not disturb globex");
    let started = Instant::now();
    let (looped, neighbour) = tokio::join!(invoke(&acme, "attacks", "loop", json!({})), async {
        let mut worst = std::time::Duration::ZERO;
        let mut ok = true;
        for _ in 0..20 {
            let t = Instant::now();
            ok &= invoke(&globex, "echo", "echo", json!({}))
                .await
                .is_ok_and(|r| r.outcome == w::Outcome::Ok);
            worst = worst.max(t.elapsed());
        }
        (ok, worst)
    });
    let looped = looped?;
    println!(
        "     acme's loop ended with {} after {:?}",
        outcome(looped.outcome),
        started.elapsed()
    );
    println!(
        "     globex: 20 echo calls meanwhile, slowest {:?}",
        neighbour.1
    );
    c.check(
        matches!(looped.outcome, w::Outcome::OutOfFuel | w::Outcome::Timeout),
        "the loop is stopped (OUT_OF_FUEL or TIMEOUT)",
    );
    c.check(neighbour.0, "globex's invocations all succeeded meanwhile");

    serving.abort();
    println!();
    if c.failed > 0 {
        bail!("{} demo check(s) failed", c.failed);
    }
    if kept {
        let key = String::from_utf8_lossy(op_key.expose());
        println!(
            "All checks passed. The demo's data is kept in {dir}. Explore it with:\n\n    tenantry serve --data-dir {dir}\n\nand, in another terminal, as the operator (this key is shown only now):\n\n    export TENANTRY_API_KEY={key}\n    tenantry org list\n",
            dir = shell_quote(&dir.display().to_string()),
        );
    } else {
        println!(
            "All checks passed. The demo's temporary data is deleted; run `tenantry demo --data-dir DIR` to keep it and explore it with `tenantry serve --data-dir DIR`."
        );
    }
    Ok(())
}
