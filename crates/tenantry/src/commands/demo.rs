//! `tenantry demo`: a guided, self-checking tour.
//!
//! Starts a server in this process on a fresh data directory, publishes the example
//! plugins (embedded in the binary), creates two orgs that install the same plugins
//! with different config and secrets, invokes as each org's agent, and checks that
//! each org sees only its own config, secrets, kv data, usage and audit, and that an
//! infinite-loop plugin is stopped without disturbing the other org. Exits non-zero
//! if any check fails.

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::Instant;
use tenantry_crypto::SigningKeyPair;
use tenantry_server::{Config, Server, config::Overrides};

use crate::client::Client;
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
    let org = op
        .post("/v1/orgs", json!({"name": name, "tier": "starter"}))
        .await?;
    let id = org["id"].as_str().ok_or_else(|| anyhow!("no org id"))?;
    let user = op
        .post(
            &format!("/v1/orgs/{id}/users"),
            json!({"name": format!("owner@{name}"), "role": "owner"}),
        )
        .await?;
    let key = op
        .post(
            &format!("/v1/orgs/{id}/keys"),
            json!({"owner": {"kind": "user", "id": user["id"]}, "name": "demo"}),
        )
        .await?;
    let owner = client(url, key["key"].as_str().unwrap_or_default())?;
    let agent = owner
        .post(
            "/v1/agents",
            json!({"name": "assistant", "grants": ["invoke", "read_org"]}),
        )
        .await?;
    let agent_id = agent["id"].as_str().unwrap_or_default().to_string();
    let akey = owner
        .post(
            "/v1/keys",
            json!({"owner": {"kind": "agent", "id": agent_id}, "name": "assistant"}),
        )
        .await?;
    let mut installs = std::collections::HashMap::new();
    for (plugin, body) in [
        (
            "echo",
            json!({"plugin": "@examples/echo", "config": {"greeting": greeting}}),
        ),
        (
            "kv-counter",
            json!({"plugin": "@examples/kv-counter", "grants": {"kv": true}}),
        ),
        (
            "secret-user",
            json!({"plugin": "@examples/secret-user", "grants": {"secrets": ["api_token"]}}),
        ),
        (
            "tool-caller",
            json!({"plugin": "@examples/tool-caller", "grants": {"tools": ["@examples/echo#echo"]}}),
        ),
        ("attacks", json!({"plugin": "@examples/attacks"})),
    ] {
        let i = owner.post("/v1/installs", body).await?;
        let iid = i["id"].as_str().unwrap_or_default().to_string();
        owner
            .put(&format!("/v1/agents/{agent_id}/installs/{iid}"), None)
            .await?;
        installs.insert(plugin, iid);
    }
    owner
        .put(
            &format!("/v1/installs/{}/secrets/api_token", installs["secret-user"]),
            Some(json!({"value": token})),
        )
        .await?;
    Ok(DemoOrg {
        name,
        owner,
        agent: client(url, akey["key"].as_str().unwrap_or_default())?,
        agent_id,
        installs,
    })
}

async fn invoke(o: &DemoOrg, plugin: &str, action: &str, input: Value) -> Result<Value> {
    o.agent
        .post(
            &format!("/v1/installs/{}/invoke", o.installs[plugin]),
            json!({"action": action, "input": input}),
        )
        .await
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
    op.post(
        "/v1/publishers",
        json!({"name": "examples", "public_key": signer.public_key().to_string()}),
    )
    .await?;
    for (name, manifest, wasm) in PLUGINS {
        let sig = sign(manifest, wasm, &signer)?;
        let v = op
            .post("/v1/plugins", publish_body(manifest, wasm, &sig)?)
            .await?;
        println!(
            "     published {}@{} ({} bytes)",
            v["plugin"].as_str().unwrap_or(name),
            v["version"].as_str().unwrap_or("?"),
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
        c_ok &= r["output"]["greeting"] == greeting;
        println!("     {} echo → {}", o.name, r["output"]);
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
        a["output"]["value"], g["output"]["value"]
    );
    c.check(
        a["output"]["value"] == 3 && g["output"]["value"] == 1,
        "each install has its own key-value data",
    );
    let a = invoke(&acme, "secret-user", "check", json!({})).await?;
    let g = invoke(&globex, "secret-user", "check", json!({})).await?;
    c.check(
        a["output"]["length"] == 21 && g["output"]["length"] == 10,
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
        t["output"]["output"]["greeting"] == "Hello from Acme",
        "a tool call reaches the same org's install",
    );
    let denied = invoke(&acme, "attacks", "secret", json!({"name": "api_token"})).await?;
    c.check(
        denied["outcome"] == "PERMISSION_DENIED",
        "an ungranted secret is refused (PERMISSION_DENIED)",
    );

    println!("\n4. Each org sees only its own data");
    let secret_texts = [
        acme.owner.get("/v1/installs").await?.to_string(),
        globex.owner.get("/v1/installs").await?.to_string(),
    ];
    c.check(
        !secret_texts[0].contains("Bonjour") && !secret_texts[1].contains("Hello from Acme"),
        "install lists and config are per org",
    );
    let cross = acme
        .owner
        .get(&format!("/v1/installs/{}", globex.installs["echo"]))
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
        .post(
            &format!("/v1/installs/{}/invoke", globex.installs["echo"]),
            json!({"action": "echo"}),
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
        acme.owner.get("/v1/audit?limit=1000").await?,
        acme.owner.get("/v1/usage?limit=1000").await?,
        acme.owner
            .get(&format!(
                "/v1/installs/{}/secrets",
                acme.installs["secret-user"]
            ))
            .await?
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
                .is_ok_and(|r| r["outcome"] == "OK");
            worst = worst.max(t.elapsed());
        }
        (ok, worst)
    });
    let looped = looped?;
    println!(
        "     acme's loop ended with {} after {:?}",
        looped["outcome"],
        started.elapsed()
    );
    println!(
        "     globex: 20 echo calls meanwhile, slowest {:?}",
        neighbour.1
    );
    c.check(
        looped["outcome"] == "OUT_OF_FUEL" || looped["outcome"] == "TIMEOUT",
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
